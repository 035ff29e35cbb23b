// Maps library errors to Python exceptions: flashvsr.Error (RuntimeError) and its subclasses.
#include <c10/util/Exception.h>
#include <flashvsr/flashvsr.h>
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace flashvsr::python {

void bind_errors(py::module_& m) {
    // The exception types live as long as the process: allocated once and never destroyed, so no
    // Python object is released after the interpreter has shut down.
    static auto* error = new py::exception<Error>(m, "Error", PyExc_RuntimeError);
    static auto* input_error = new py::exception<InputError>(m, "InputError", error->ptr());
    static auto* model_error = new py::exception<ModelError>(m, "ModelError", error->ptr());
    static auto* cancelled = new py::exception<Cancelled>(m, "Cancelled", error->ptr());
    static auto* out_of_memory = new py::exception<OutOfMemory>(m, "OutOfMemory", error->ptr());
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) {
                std::rethrow_exception(p);
            }
        } catch (const Cancelled& e) {
            py::set_error(*cancelled, e.what());
        } catch (const OutOfMemory& e) {
            py::set_error(*out_of_memory, e.what());
        } catch (const InputError& e) {
            py::set_error(*input_error, e.what());
        } catch (const ModelError& e) {
            py::set_error(*model_error, e.what());
        } catch (const Error& e) {
            py::set_error(*error, e.what());
        } catch (const c10::Error& e) {
            // Tensor-contract violations (TORCH_CHECK): the message without the C++ backtrace.
            PyErr_SetString(PyExc_RuntimeError, e.what_without_backtrace());
        }
    });
}

}  // namespace flashvsr::python
