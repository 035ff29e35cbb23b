#include <flashvsr/flashvsr.h>
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace flashvsr::python {

void bind_build_info(py::module_& m) {
    m.def("version", &flashvsr::version, "The library version string.");
    m.def(
        "build_info",
        [] {
            const BuildInfo i = flashvsr::build_info();
            py::dict ffmpeg;
            ffmpeg["libavcodec"] = i.libavcodec;
            ffmpeg["libavformat"] = i.libavformat;
            ffmpeg["libavutil"] = i.libavutil;
            ffmpeg["libswscale"] = i.libswscale;
            ffmpeg["libswresample"] = i.libswresample;
            py::dict d;
            d["version"] = i.version;
            d["torch"] = i.torch;
            d["cuda_compiled"] = i.cuda_compiled;
            d["cuda_archs"] = i.cuda_archs;
            d["cuda_available"] = i.cuda_available;
            d["cuda_device_count"] = i.cuda_device_count;
            d["ffmpeg"] = ffmpeg;
            d["opencv"] = i.opencv;
            d["compiler"] = i.compiler;
            return d;
        },
        "What this build was compiled with and what the machine offers, as a dict.");
}

}  // namespace flashvsr::python
