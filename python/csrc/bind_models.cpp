// flashvsr._C.models: manifests, key hashes, folder inspection and test checkpoints (no logic here).
#include <torch/python.h>

#include "models/checkpoint/load.h"
#include "models/common/params.h"
#include "models/model_dir.h"
#include "models/model_info.h"
#include "models/test_weights.h"

namespace py = pybind11;

namespace flashvsr::python {
namespace {

std::optional<models::ModelVersion> version_arg(const std::optional<std::string>& v) {
    if (!v || v->empty()) {
        return std::nullopt;
    }
    return models::parse_model_version(*v);
}

}  // namespace

void bind_models(py::module_& m) {
    py::module_ mm = m.def_submodule("models", "checkpoint contracts of the four networks");
    // The published file names of a model folder (the one list; the ComfyUI layer reads it from here).
    py::dict files;
    files["dit"] = models::ModelFiles::kDiT;
    files["lq_proj"] = models::ModelFiles::kLQProj;
    files["tcdecoder"] = models::ModelFiles::kTCDecoder;
    files["vae"] = models::ModelFiles::kVAE;
    files["prompt"] = models::ModelFiles::kPrompt;
    mm.attr("FILES") = files;
    mm.def(
        "parameter_manifest",
        [](const std::string& component, const std::string& size) {
            py::list out;
            for (const auto& s : models::parameter_manifest(component, size)) {
                out.append(py::make_tuple(s.name, py::tuple(py::cast(s.shape))));
            }
            return out;
        },
        py::arg("component"), py::arg("size") = "full");
    mm.def(
        "key_hash",
        [](const std::vector<std::pair<std::string, std::vector<int64_t>>>& entries) {
            std::vector<models::ParamSpec> specs;
            for (const auto& [name, shape] : entries) {
                specs.push_back(models::ParamSpec{name, shape});
            }
            return models::key_hash(specs);
        },
        py::arg("manifest"));
    mm.def(
        "inspect_json",
        [](const std::string& dir, const std::optional<std::string>& version) {
            const auto v = version_arg(version);
            py::gil_scoped_release release;
            return models::to_json(models::inspect_model_dir(dir, v));
        },
        py::arg("dir"), py::arg("version") = py::none());
    mm.def("load_tensors", &models::load_tensors, py::arg("path"), py::call_guard<py::gil_scoped_release>(),
           "Tensors of a .safetensors or torch.save file (no code from the file is executed).");
    mm.def(
        "make_test_weights",
        [](const std::string& dir, const std::string& size, const std::string& version, uint64_t seed,
           int64_t prompt_tokens) {
            models::TestWeightsOptions o;
            o.size = size;
            o.version = version;
            o.seed = seed;
            o.prompt_tokens = prompt_tokens;
            py::gil_scoped_release release;
            return models::make_test_weights(dir, o);
        },
        py::arg("dir"), py::arg("size") = "tiny", py::arg("version") = "v1.1", py::arg("seed") = 0,
        py::arg("prompt_tokens") = 512);
}

}  // namespace flashvsr::python
