// flashvsr._C.nn: the four networks with explicit state objects, for tests and research (module-by-module
// parity with other implementations). Weights come from a checkpoint path or a dict of tensors.
#include <pybind11/stl.h>
#include <torch/python.h>

#include "csrc/engine/engine_impl.h"
#include "models/checkpoint/load.h"
#include "models/dit.h"
#include "models/lq_proj.h"
#include "models/tc_decoder.h"
#include "models/vae_decoder.h"

namespace py = pybind11;

namespace flashvsr::python {
namespace {

struct Weights {
    models::TensorMap tensors;
    std::string source;
};

Weights weights_arg(const py::object& w) {
    if (py::isinstance<py::str>(w) || py::hasattr(w, "__fspath__")) {
        const std::string path = py::str(w);
        py::gil_scoped_release release;
        return Weights{models::load_tensors(path), path};
    }
    return Weights{w.cast<models::TensorMap>(), "<dict>"};
}

models::LoadOptions load_options(const std::string& dtype, const std::string& device) {
    const at::Device d = engine::resolve_device(device);
    return models::LoadOptions{engine::resolve_dtype(dtype, d), d};
}

}  // namespace

void bind_nn(py::module_& m) {
    py::module_ nn = m.def_submodule("nn", "the FlashVSR networks with explicit per-stream state");

    py::class_<models::LQProjState>(nn, "LQProjState")
        .def(py::init<>())
        .def("reset", &models::LQProjState::reset)
        .def_property_readonly("bytes", &models::LQProjState::bytes)
        .def_readonly("clip_index", &models::LQProjState::clip_index);
    py::class_<models::LQProj>(nn, "LQProjector")
        .def(py::init([](const py::object& w, const std::string& dtype, const std::string& device) {
                 Weights x = weights_arg(w);
                 return models::LQProj(x.tensors, x.source, load_options(dtype, device));
             }),
             py::arg("weights"), py::arg("dtype") = "fp32", py::arg("device") = "cpu")
        .def(
            "stream",
            [](const models::LQProj& p, const at::Tensor& clip, models::LQProjState& state,
               bool legacy) -> py::object {
                at::Tensor out;
                {
                    py::gil_scoped_release release;
                    out = p.stream(
                        clip, state,
                        legacy ? models::CacheOrder::AssignThenUse : models::CacheOrder::UseThenUpdate);
                }
                return out.defined() ? py::cast(out) : py::none();
            },
            py::arg("clip"), py::arg("state"), py::arg("legacy_v10_cache_order") = false,
            "clip [1,3,Fc,H,W] in [-1,1]: the first call (1 frame) primes and returns None, later calls (4 "
            "frames) "
            "return the tokens [1, H/16*W/16, dim] of one latent frame.");

    py::class_<models::TCDecoderState>(nn, "TCDecoderState")
        .def(py::init<>())
        .def("reset", &models::TCDecoderState::reset)
        .def_property_readonly("bytes", &models::TCDecoderState::bytes);
    py::class_<models::TCDecoder>(nn, "TCDecoder")
        .def(py::init([](const py::object& w, const std::string& dtype, const std::string& device) {
                 Weights x = weights_arg(w);
                 return models::TCDecoder(x.tensors, x.source, load_options(dtype, device));
             }),
             py::arg("weights"), py::arg("dtype") = "fp32", py::arg("device") = "cpu")
        .def(
            "decode",
            [](const models::TCDecoder& d, const at::Tensor& latents, const at::Tensor& cond,
               models::TCDecoderState& state,
               int64_t band_rows) { return d.decode(latents, cond, state, band_rows); },
            py::arg("latents"), py::arg("cond"), py::arg("state"), py::arg("band_rows") = 0,
            py::call_guard<py::gil_scoped_release>(),
            "latents [1,16,T,h,w], cond [1,3,Fc,8h,8w] in [-1,1] -> frames [1,3,4T-trim,8h,8w] (~[0,1]); the "
            "output layers run in bands of band_rows rows (0: about 32 MiB per activation).");

    py::class_<models::VAEDecodeState>(nn, "VAEDecodeState")
        .def(py::init<>())
        .def("reset", &models::VAEDecodeState::reset)
        .def_property_readonly("bytes", &models::VAEDecodeState::bytes);
    py::class_<models::VAEDecoder>(nn, "VAEDecoder")
        .def(py::init([](const py::object& w, const std::string& dtype, const std::string& device) {
                 Weights x = weights_arg(w);
                 return models::VAEDecoder(x.tensors, x.source, load_options(dtype, device));
             }),
             py::arg("weights"), py::arg("dtype") = "fp32", py::arg("device") = "cpu")
        .def(
            "decode", &models::VAEDecoder::decode, py::arg("z"), py::arg("state"),
            py::call_guard<py::gil_scoped_release>(),
            "z [1,16,T,h,w] normalised latents -> frames [1,3,F,8h,8w] in [-1,1] (F = 4T-3 first, then 4T).");

    py::class_<models::DiTConstants>(nn, "DiTConstants")
        .def_property_readonly("bytes", &models::DiTConstants::bytes);
    py::class_<models::DiTState>(nn, "DiTState")
        .def(py::init<>())
        .def("reset", &models::DiTState::reset)
        .def_property_readonly("bytes", &models::DiTState::bytes)
        .def_readonly("chunk_index", &models::DiTState::chunk_index);
    py::class_<models::DiT>(nn, "DiT")
        .def(py::init([](const py::object& w, const std::string& dtype, const std::string& device,
                         int64_t head_dim) {
                 Weights x = weights_arg(w);
                 return std::make_unique<models::DiT>(x.tensors, x.source, load_options(dtype, device),
                                                      head_dim);
             }),
             py::arg("weights"), py::arg("dtype") = "fp32", py::arg("device") = "cpu",
             py::arg("head_dim") = 128)
        .def("prepare", &models::DiT::prepare, py::arg("prompt"), py::call_guard<py::gil_scoped_release>(),
             "Model-lifetime constants (t, t_mod, cross-attention K/V) from the prompt tensor [1, L, "
             "text_dim].")
        .def(
            "forward_chunk",
            [](const models::DiT& d, const at::Tensor& latents, const std::optional<at::Tensor>& lq_tokens,
               const models::DiTConstants& c, models::DiTState& state, double sparse_ratio, double kv_ratio,
               int64_t local_range, bool dense_oracle) {
                models::AttentionOptions o;
                o.sparse_ratio = sparse_ratio;
                o.kv_ratio = kv_ratio;
                o.local_range = local_range;
                o.dense_oracle = dense_oracle;
                py::gil_scoped_release release;
                return d.forward_chunk(latents, lq_tokens.value_or(at::Tensor()), c, state, o);
            },
            py::arg("latents"), py::arg("lq_tokens"), py::arg("constants"), py::arg("state"),
            py::arg("sparse_ratio") = 2.0, py::arg("kv_ratio") = 3.0, py::arg("local_range") = 11,
            py::arg("dense_oracle") = false,
            "One streaming chunk: latents [1,16,f,H/8,W/8] -> predicted velocity (latent = noise - v).");
}

}  // namespace flashvsr::python
