// flashvsr._C.Engine / Stream: the streaming engine. Every compute call releases the GIL; Python callbacks
// re-acquire it.
#include <flashvsr/flashvsr.h>
#include <torch/python.h>

#include <flashvsr/options.h>

#include <string>

#include "python/csrc/py_engine.h"
#include "python/csrc/py_options.h"

namespace py = pybind11;

namespace flashvsr::python {
namespace {

// Wraps a Python progress callable (done, total) -> bool|None for use with the GIL released.
ProgressFn wrap_progress(const py::object& progress) {
    if (progress.is_none()) {
        return {};
    }
    auto fn = std::make_shared<py::object>(progress);
    return [fn](int64_t done, int64_t total) {
        py::gil_scoped_acquire gil;
        const py::object r = (*fn)(done, total);
        return r.is_none() || r.cast<bool>();
    };
}

// The upscale options from keywords, through the option table (flashvsr/options.h): an unknown name or a
// wrong type is a TypeError naming it, a bad value an InputError from validate().
UpscaleOptions upscale_options(const char* where, const py::kwargs& kwargs) {
    UpscaleOptions o;
    for (const auto& [key, value] : kwargs) {
        const std::string name = py::str(key);
        if (!set_py_option(where, nullptr, &o, name, value)) {
            throw py::type_error(std::string(where) + "() got an unexpected keyword argument '" + name + "'");
        }
    }
    o.validate();
    return o;
}

// "scale: int = 4, color_fix: str = 'adain', ...": the keywords with their types and defaults, from the
// table.
std::string keywords_doc(const std::vector<OptionSpec>& specs) {
    std::string doc;
    for (const OptionSpec& s : specs) {
        const char* type = s.type == OptionType::Int     ? "int"
                           : s.type == OptionType::Float ? "float"
                           : s.type == OptionType::Bool  ? "bool"
                                                         : "str";
        const py::object v = option_to_py(s.default_value);
        doc += (doc.empty() ? "" : ", ") + s.name + ": " + type + " = " + std::string(py::repr(v));
    }
    return doc;
}

py::dict info_dict(const EngineInfo& i) {
    py::dict d;
    d["model_dir"] = i.model_dir;
    d["version"] = i.version;
    d["version_source"] = i.version_source;
    d["mode"] = i.mode;
    d["device"] = i.device;
    d["dtype"] = i.dtype;
    d["files"] = i.files;
    d["warnings"] = i.warnings;
    d["weight_bytes"] = i.weight_bytes;
    d["checkpoint_bytes"] = i.checkpoint_bytes;
    return d;
}

py::dict memory_dict(const MemoryReport& r) {
    py::dict d;
    d["rss_bytes"] = r.rss_bytes;
    d["peak_rss_bytes"] = r.peak_rss_bytes;
    d["cuda"] = r.cuda;
    if (r.cuda) {
        d["cuda_allocated_bytes"] = r.cuda_allocated_bytes;
        d["cuda_reserved_bytes"] = r.cuda_reserved_bytes;
        d["cuda_peak_allocated_bytes"] = r.cuda_peak_allocated_bytes;
    }
    return d;
}

}  // namespace

void bind_engine(py::module_& m) {
    static const std::string upscale_doc =
        "Upscales frames [F,H,W,3] (float in [0,1] or uint8) to float32 [F,H*s,W*s,3] on the CPU. "
        "progress(done, "
        "total) returning False cancels (Cancelled). Keyword options (the upscale option table, as "
        "flashvsr.UpscaleOptions: " +
        keywords_doc(upscale_option_specs()) + ").";
    static const std::string stream_doc =
        "A Stream for one video in bounded memory (push/pull/finish). Keyword options (the upscale option "
        "table, "
        "as flashvsr.UpscaleOptions: " +
        keywords_doc(upscale_option_specs()) +
        "). Scale-out segments (docs/SCALE_OUT.md): first_chunk, end_chunk (-1: to the end), warmup_chunks "
        "(-1: "
        "the replay depth); frames keep their global numbers (see segment_frames).";
    py::class_<Stream>(m, "Stream")
        .def("push", &Stream::push, py::arg("frames"), py::call_guard<py::gil_scoped_release>())
        .def("pull", &Stream::pull, py::call_guard<py::gil_scoped_release>())
        .def("finish", &Stream::finish, py::call_guard<py::gil_scoped_release>())
        .def("set_progress", [](Stream& s, const py::object& p) { s.set_progress(wrap_progress(p)); })
        .def_property_readonly("frames_pushed", &Stream::frames_pushed)
        .def_property_readonly("frames_done", &Stream::frames_done)
        .def_property_readonly("chunks_done", &Stream::chunks_done)
        .def_property_readonly("state_bytes", &Stream::state_bytes)
        .def_property_readonly("tiles", [](const Stream& s) {
            py::list l;
            for (const TileRect& t : s.tiles()) {
                l.append(py::make_tuple(t.top, t.left, t.height, t.width));
            }
            return l;
        });

    m.def("memory_report", [] { return memory_dict(memory_report()); });

    static const std::string init_doc =
        "Loads a model folder. Keyword options (the engine option table, as flashvsr.EngineOptions: " +
        keywords_doc(engine_option_specs()) + ").";
    py::class_<PyEngine>(m, "Engine")
        .def(py::init([](const py::object& model_dir, const py::kwargs& kwargs) {
                 // the engine options from keywords, through the table: an unknown name or a wrong type is
                 // a TypeError naming it, a bad value an InputError from load()
                 EngineOptions o;
                 set_py_option("Engine", &o, nullptr, "model_dir", model_dir);
                 for (const auto& [key, value] : kwargs) {
                     const std::string name = py::str(key);
                     if (!set_py_option("Engine", &o, nullptr, name, value)) {
                         throw py::type_error("Engine() got an unexpected keyword argument '" + name + "'");
                     }
                 }
                 py::gil_scoped_release release;
                 return PyEngine{Engine::load(o)};
             }),
             py::arg("model_dir"), init_doc.c_str())
        .def_property_readonly("info", [](const PyEngine& e) { return info_dict(e.get().info()); })
        .def_property_readonly("closed", [](const PyEngine& e) { return !e.engine; })
        .def("memory", [](const PyEngine& e) { return memory_dict(e.get().memory()); })
        .def("close",
             [](PyEngine& e) {
                 py::gil_scoped_release release;
                 e.engine.reset();
             })
        .def(
            "to",
            [](py::object self, const py::object& device) {
                const std::string d = py::str(device);  // "cuda:0" for torch.device("cuda", 0)
                Engine& engine = self.cast<PyEngine&>().get();
                {
                    py::gil_scoped_release release;
                    engine.to(d);
                }
                return self;
            },
            py::arg("device"))
        .def(
            "upscale",
            [](const PyEngine& e, const at::Tensor& frames, const py::object& progress,
               const py::kwargs& kwargs) {
                const UpscaleOptions o = upscale_options("upscale", kwargs);
                const ProgressFn p = wrap_progress(progress);
                Engine& engine = e.get();
                py::gil_scoped_release release;
                return engine.upscale(frames, o, p);
            },
            py::arg("frames"), py::kw_only(), py::arg("progress") = py::none(), upscale_doc.c_str())
        .def(
            "stream",
            [](const PyEngine& e, const py::object& progress, int64_t first_chunk, int64_t end_chunk,
               int64_t warmup_chunks, const py::kwargs& kwargs) {
                Stream s = e.get().stream(upscale_options("stream", kwargs),
                                          SegmentOptions{first_chunk, end_chunk, warmup_chunks});
                s.set_progress(wrap_progress(progress));
                return s;
            },
            py::kw_only(), py::arg("progress") = py::none(), py::arg("first_chunk") = 0,
            py::arg("end_chunk") = -1, py::arg("warmup_chunks") = -1, stream_doc.c_str());

    // Scale-out (docs/SCALE_OUT.md): the global frame ranges of a segment stream.
    m.def(
        "segment_frames",
        [](int64_t first_chunk, int64_t end_chunk, int64_t warmup_chunks, double kv_ratio) {
            UpscaleOptions o;
            o.kv_ratio = kv_ratio;
            const SegmentFrames f = segment_frames(SegmentOptions{first_chunk, end_chunk, warmup_chunks}, o);
            py::dict d;
            d["warmup_chunk"] = f.warmup_chunk;
            d["input_begin"] = f.input_begin;
            d["input_end"] = f.input_end;
            d["output_begin"] = f.output_begin;
            d["output_end"] = f.output_end;
            return d;
        },
        py::arg("first_chunk"), py::arg("end_chunk") = -1, py::arg("warmup_chunks") = -1,
        py::arg("kv_ratio") = 3.0,
        "Global frame ranges of the segment [first_chunk, end_chunk) (-1: to the end) with warmup_chunks of "
        "warm-up "
        "(-1: the replay depth): warmup_chunk, input_begin/input_end (frames to push), "
        "output_begin/output_end "
        "(frames emitted); -1 = to the end of the video.");
}

}  // namespace flashvsr::python
