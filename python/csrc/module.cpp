// flashvsr._C — the compiled module. One bind_<thing>() per file; no logic lives here.
#include <torch/python.h>

namespace flashvsr::python {
void bind_errors(pybind11::module_& m);
void bind_build_info(pybind11::module_& m);
void bind_io(pybind11::module_& m);
void bind_models(pybind11::module_& m);
void bind_engine(pybind11::module_& m);
void bind_nn(pybind11::module_& m);
void bind_pipeline(pybind11::module_& m);
}  // namespace flashvsr::python

PYBIND11_MODULE(_C, m) {
    m.doc() = "flashvsr native module (C++/LibTorch engine)";
    m.attr("__version__") = FLASHVSR_VERSION;
    flashvsr::python::bind_errors(m);
    flashvsr::python::bind_build_info(m);
    flashvsr::python::bind_io(m);
    flashvsr::python::bind_models(m);
    flashvsr::python::bind_engine(m);
    flashvsr::python::bind_nn(m);
    flashvsr::python::bind_pipeline(m);
}
