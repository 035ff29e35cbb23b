// flashvsr._C.Engine / Stream: the streaming engine. Every compute call releases the GIL; Python callbacks
// re-acquire it.
#include <flashvsr/flashvsr.h>
#include <torch/python.h>

#include "python/csrc/py_engine.h"

namespace py = pybind11;

namespace flashvsr::python {
namespace {

// Wraps a Python progress callable (done, total) -> bool|None for use with the GIL released.
ProgressFn wrap_progress(const py::object& progress) {
    if (progress.is_none()) return {};
    auto fn = std::make_shared<py::object>(progress);
    return [fn](int64_t done, int64_t total) {
        py::gil_scoped_acquire gil;
        const py::object r = (*fn)(done, total);
        return r.is_none() || r.cast<bool>();
    };
}

UpscaleOptions upscale_options(int64_t scale, const std::string& color_fix, double sparse_ratio, double kv_ratio,
                               int64_t local_range, uint64_t seed, int64_t tile_size, int64_t tile_overlap,
                               const std::optional<int64_t>& max_memory, const std::string& park_tile_state) {
    UpscaleOptions o;
    o.scale = scale;
    o.color_fix = color_fix;
    o.sparse_ratio = sparse_ratio;
    o.kv_ratio = kv_ratio;
    o.local_range = local_range;
    o.seed = seed;
    o.tile_size = tile_size;
    o.tile_overlap = tile_overlap;
    o.max_memory = max_memory.value_or(0);
    o.park_tile_state = park_tile_state;
    o.validate();
    return o;
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
            for (const TileRect& t : s.tiles()) l.append(py::make_tuple(t.top, t.left, t.height, t.width));
            return l;
        });

    m.def("memory_report", [] { return memory_dict(memory_report()); });

    py::class_<PyEngine>(m, "Engine")
        .def(py::init([](const std::string& model_dir, const std::optional<std::string>& version,
                         const std::string& mode, const std::string& device, const std::string& dtype,
                         bool legacy_v10_cache_order) {
                 EngineOptions o;
                 o.model_dir = model_dir;
                 o.version = version.value_or("");
                 o.mode = mode;
                 o.device = device;
                 o.dtype = dtype;
                 o.legacy_v10_cache_order = legacy_v10_cache_order;
                 py::gil_scoped_release release;
                 return PyEngine{Engine::load(o)};
             }),
             py::arg("model_dir"), py::arg("version") = py::none(), py::arg("mode") = "tiny",
             py::arg("device") = "auto", py::arg("dtype") = "auto", py::arg("legacy_v10_cache_order") = false)
        .def_property_readonly("info", [](const PyEngine& e) { return info_dict(e.get().info()); })
        .def_property_readonly("closed", [](const PyEngine& e) { return !e.engine; })
        .def("memory", [](const PyEngine& e) { return memory_dict(e.get().memory()); })
        .def("close", [](PyEngine& e) {
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
            [](const PyEngine& e, const at::Tensor& frames, int64_t scale, const std::string& color_fix,
               double sparse_ratio, double kv_ratio, int64_t local_range, uint64_t seed, int64_t tile_size,
               int64_t tile_overlap, const std::optional<int64_t>& max_memory, const std::string& park_tile_state,
               const py::object& progress) {
                const UpscaleOptions o = upscale_options(scale, color_fix, sparse_ratio, kv_ratio, local_range, seed,
                                                         tile_size, tile_overlap, max_memory, park_tile_state);
                const ProgressFn p = wrap_progress(progress);
                Engine& engine = e.get();
                py::gil_scoped_release release;
                return engine.upscale(frames, o, p);
            },
            py::arg("frames"), py::arg("scale") = 4, py::arg("color_fix") = "adain", py::arg("sparse_ratio") = 2.0,
            py::arg("kv_ratio") = 3.0, py::arg("local_range") = 11, py::arg("seed") = 0,
            py::arg("tile_size") = 0, py::arg("tile_overlap") = 0, py::arg("max_memory") = py::none(),
            py::arg("park_tile_state") = "auto", py::arg("progress") = py::none())
        .def(
            "stream",
            [](const PyEngine& e, int64_t scale, const std::string& color_fix, double sparse_ratio, double kv_ratio,
               int64_t local_range, uint64_t seed, int64_t tile_size, int64_t tile_overlap,
               const std::optional<int64_t>& max_memory, const std::string& park_tile_state,
               const py::object& progress, int64_t first_chunk, int64_t end_chunk, int64_t warmup_chunks) {
                Stream s = e.get().stream(upscale_options(scale, color_fix, sparse_ratio, kv_ratio, local_range, seed,
                                                          tile_size, tile_overlap, max_memory, park_tile_state),
                                          SegmentOptions{first_chunk, end_chunk, warmup_chunks});
                s.set_progress(wrap_progress(progress));
                return s;
            },
            py::arg("scale") = 4, py::arg("color_fix") = "adain", py::arg("sparse_ratio") = 2.0,
            py::arg("kv_ratio") = 3.0, py::arg("local_range") = 11, py::arg("seed") = 0,
            py::arg("tile_size") = 0, py::arg("tile_overlap") = 0, py::arg("max_memory") = py::none(),
            py::arg("park_tile_state") = "auto", py::arg("progress") = py::none(), py::kw_only(),
            py::arg("first_chunk") = 0, py::arg("end_chunk") = -1, py::arg("warmup_chunks") = -1);

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
        py::arg("first_chunk"), py::arg("end_chunk") = -1, py::arg("warmup_chunks") = -1, py::arg("kv_ratio") = 3.0,
        "Global frame ranges of the segment [first_chunk, end_chunk) (-1: to the end) with warmup_chunks of warm-up "
        "(-1: the replay depth): warmup_chunk, input_begin/input_end (frames to push), output_begin/output_end "
        "(frames emitted); -1 = to the end of the video.");
}

}  // namespace flashvsr::python
