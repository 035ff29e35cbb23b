// Media helpers: probing, whole-clip reading, still images, the synthetic test clip.
#include <flashvsr/flashvsr.h>
#include <torch/python.h>

#include "csrc/io/image_io.h"
#include "csrc/io/image_sequence.h"
#include "csrc/io/probe.h"
#include "csrc/io/segment_concat.h"
#include "csrc/io/synth_clip.h"
#include "csrc/io/video_decoder.h"
#include "csrc/io/video_read.h"

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
    py::class_<flashvsr::io::VideoDecoder>(
        io, "VideoReader",
        "Streaming decoder of a file's best video stream: read(n) returns the next frames as float32 "
        "[n,H,W,3] "
        "in [0,1] (the CLI's and upscale_file's conversion: the stream's colour matrix and range, 8/10-bit), "
        "an empty batch at the end; memory is bounded by the batch. start_frame: the first frame read (a "
        "frame-accurate seek to its keyframe, the same frames as a read from the start; where the file "
        "cannot seek it decodes from the start and `notes` says why; past the end: InputError).")
        .def(py::init([](const std::string& path, int64_t max_pixels, int64_t start_frame) {
                 if (max_pixels < 1) {
                     throw flashvsr::InputError("max_pixels must be >= 1");
                 }
                 flashvsr::io::DecoderOptions o;
                 o.max_pixels = max_pixels;
                 o.start_frame = start_frame;
                 py::gil_scoped_release release;
                 return std::make_unique<flashvsr::io::VideoDecoder>(path, o);
             }),
             py::arg("path"), py::arg("max_pixels") = flashvsr::io::kDefaultMaxPixels,
             py::arg("start_frame") = 0)
        .def(
            "read",
            [](flashvsr::io::VideoDecoder& d, int64_t max_frames) {
                if (max_frames < 1) {
                    throw flashvsr::InputError("VideoReader.read: max_frames must be >= 1");
                }
                py::gil_scoped_release release;
                return d.read(max_frames).rgb;
            },
            py::arg("max_frames"))
        .def_property_readonly("frames_read", &flashvsr::io::VideoDecoder::frames_read)
        .def_property_readonly("frames_decoded", &flashvsr::io::VideoDecoder::frames_decoded,
                               "Frames the codec decoded, those dropped before start_frame included.")
        .def_property_readonly("seeked", &flashvsr::io::VideoDecoder::seeked,
                               "Whether start_frame was reached by a seek.")
        .def_property_readonly(
            "notes", [](flashvsr::io::VideoDecoder& d) { return d.take_notes(); },
            "Notes since the last call (a start_frame reached without a seek, and why).")
        .def_property_readonly("width", [](const flashvsr::io::VideoDecoder& d) { return d.info().width; })
        .def_property_readonly("height", [](const flashvsr::io::VideoDecoder& d) { return d.info().height; });
    io.def(
        "read_image",
        [](const std::string& path, int64_t max_pixels) {
            if (max_pixels < 1) {
                throw flashvsr::InputError("max_pixels must be >= 1");
            }
            return flashvsr::io::decode_image(path, nullptr, max_pixels);
        },
        py::arg("path"), py::arg("max_pixels") = flashvsr::io::kDefaultMaxPixels,
        py::call_guard<py::gil_scoped_release>(),
        "Reads an 8/16-bit or float (EXR) image as float32 [H,W,3] RGB in [0,1] (float clamped, grey -> RGB, "
        "alpha dropped). Images of more than max_pixels pixels (default 2**26) are refused before decoding.");
    io.def(
        "image_sequence",
        [](const std::string& spec, int64_t start_number) {
            std::vector<std::string> files;
            flashvsr::io::VideoStreamInfo info;
            {
                py::gil_scoped_release release;
                const flashvsr::io::ImageSequenceReader r(spec, start_number, 25, 1);
                for (int64_t i = 0; i < r.frame_count(); ++i) {
                    files.push_back(r.file(i));
                }
                info = r.info();
            }
            py::dict d;
            d["files"] = files;
            d["width"] = info.width;
            d["height"] = info.height;
            d["bits"] = info.bits;
            return d;
        },
        py::arg("spec"), py::arg("start_number") = -1,
        "The frames of an image-sequence input (a folder or a pattern, as the CLI reads it): {files (in "
        "order), "
        "width, height, bits}; InputError naming the folder or file as the CLI gives it.");
    io.def("is_image_sequence_output", &flashvsr::io::is_image_sequence_output, py::arg("spec"),
           "Whether an output spec names an image sequence (ends with '/', an existing folder, an image "
           "extension).");
    io.def(
        "is_image_sequence_input", &flashvsr::io::is_image_sequence_input, py::arg("spec"),
        "Whether an input spec names an image sequence (a folder, or a %d pattern with an image extension).");
    io.def(
        "concat_segments",
        [](const std::vector<std::string>& segments, const std::string& source, const std::string& output,
           bool copy_audio, bool copy_subtitles, bool overwrite) {
            flashvsr::io::ConcatOptions o;
            o.copy_audio = copy_audio;
            o.copy_subtitles = copy_subtitles;
            o.overwrite = overwrite;
            const flashvsr::io::ConcatResult r = [&] {
                py::gil_scoped_release release;
                return flashvsr::io::concat_segments(segments, source, output, o);
            }();
            py::dict d;
            d["video_packets"] = r.video_packets;
            d["copied_packets"] = r.copied_packets;
            d["warnings"] = r.warnings;
            return d;
        },
        py::arg("segments"), py::arg("source"), py::arg("output"), py::arg("copy_audio") = true,
        py::arg("copy_subtitles") = true, py::arg("overwrite") = false,
        "Joins encoded video segments (same encoder settings, consecutive frames) by stream copy into "
        "output, with "
        "the audio/subtitle streams, chapters and metadata of source ('' = none) copied once; written under "
        "a "
        "temporary name and renamed when complete. Returns {video_packets, copied_packets, warnings}.");
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
