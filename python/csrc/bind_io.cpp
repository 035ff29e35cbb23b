// Media helpers: probing, whole-clip reading, still images, the synthetic test clip.
#include <flashvsr/flashvsr.h>
#include <torch/python.h>

#include "io/image_io.h"
#include "io/probe.h"
#include "io/synth_clip.h"
#include "io/video_read.h"

namespace py = pybind11;

namespace flashvsr::python {

void bind_io(py::module_& m) {
    py::module_ io = m.def_submodule("io", "media input/output helpers");
    io.def(
        "probe",
        [](const std::string& path) {
            const flashvsr::io::MediaInfo info = [&] {
                py::gil_scoped_release release;
                return flashvsr::io::probe(path);
            }();
            py::list streams;
            for (const auto& s : info.streams) {
                py::dict d;
                d["index"] = s.index;
                d["type"] = s.type;
                d["codec"] = s.codec;
                d["width"] = s.width;
                d["height"] = s.height;
                d["pix_fmt"] = s.pix_fmt;
                d["fps"] = py::make_tuple(s.fps_num, s.fps_den);
                d["frames"] = s.frames;
                d["sample_rate"] = s.sample_rate;
                d["channels"] = s.channels;
                d["duration"] = s.duration_s;
                streams.append(d);
            }
            py::dict d;
            d["path"] = info.path;
            d["format"] = info.format;
            d["duration"] = info.duration_s;
            d["streams"] = streams;
            d["best_video"] = info.best_video;
            return d;
        },
        py::arg("path"), "Stream table of a media file (libavformat).");
    io.def("read_video_rgb24", &flashvsr::io::read_video_rgb24, py::arg("path"), py::arg("max_frames") = -1,
           py::call_guard<py::gil_scoped_release>(),
           "Decodes frames of the best video stream to uint8 [F,H,W,3] RGB (whole clip in memory).");
    io.def(
        "read_image",
        [](const std::string& path, int64_t max_pixels) {
            if (max_pixels < 1) throw flashvsr::InputError("max_pixels must be >= 1");
            return flashvsr::io::decode_image(path, nullptr, max_pixels);
        },
        py::arg("path"), py::arg("max_pixels") = flashvsr::io::kDefaultMaxPixels,
        py::call_guard<py::gil_scoped_release>(),
        "Reads an 8/16-bit or float (EXR) image as float32 [H,W,3] RGB in [0,1] (float clamped, grey -> RGB, "
        "alpha dropped). Images of more than max_pixels pixels (default 2**26) are refused before decoding.");
    io.def("write_image", &flashvsr::io::write_image, py::arg("path"), py::arg("rgb"), py::arg("bits") = 8,
           py::call_guard<py::gil_scoped_release>(),
           "Writes float [H,W,3] RGB in [0,1]: PNG/TIFF 8 or 16 bits, EXR 16 (half) or 32 (float).");
    io.def(
        "write_synthetic_clip",
        [](const std::string& path, int width, int height, int frames, int fps_num, int fps_den, bool audio,
           double tone_hz, const std::string& video_encoder) {
            flashvsr::io::SynthClipOptions o;
            o.width = width;
            o.height = height;
            o.frames = frames;
            o.fps_num = fps_num;
            o.fps_den = fps_den;
            o.audio = audio;
            o.tone_hz = tone_hz;
            o.video_encoder = video_encoder;
            py::gil_scoped_release release;
            flashvsr::io::write_synthetic_clip(path, o);
        },
        py::arg("path"), py::arg("width") = 160, py::arg("height") = 96, py::arg("frames") = 24,
        py::arg("fps_num") = 24, py::arg("fps_den") = 1, py::arg("audio") = true, py::arg("tone_hz") = 440.0,
        py::arg("video_encoder") = "libx264",
        "Writes a synthetic clip (moving pattern, optional AAC sine tone).");
}

}  // namespace flashvsr::python
