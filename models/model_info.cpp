#include "models/model_info.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "models/checkpoint/load.h"
#include "models/checkpoint/torch_file.h"
#include "models/dit.h"
#include "models/lq_proj.h"
#include "models/tc_decoder.h"
#include "models/vae_decoder.h"

namespace flashvsr::models {
namespace fs = std::filesystem;
namespace {

std::string dtype_short(at::ScalarType t) {
    switch (t) {
        case at::kFloat:
            return "fp32";
        case at::kHalf:
            return "fp16";
        case at::kBFloat16:
            return "bf16";
        case at::kDouble:
            return "fp64";
        default:
            return c10::toString(t);
    }
}

void count(const TensorMap& m, FileInfo& f) {
    for (const auto& [k, t] : m) {
        ++f.tensors;
        f.parameters += t.numel();
        const std::string d = dtype_short(t.scalar_type());
        if (std::find(f.dtypes.begin(), f.dtypes.end(), d) == f.dtypes.end()) {
            f.dtypes.push_back(d);
        }
    }
}

std::vector<ParamSpec> specs_of(const TensorMap& m) {
    std::vector<ParamSpec> s;
    for (const auto& [k, t] : m) {
        s.push_back(ParamSpec{k, t.sizes().vec()});
    }
    return s;
}

}  // namespace

ModelInfo inspect_model_dir(const std::string& dir, const std::optional<ModelVersion>& version) {
    ModelInfo info;
    info.dir = resolve_model_dir(dir, version, {});
    using F = ModelFiles;
    for (const char* name : {F::kDiT, F::kLQProj, F::kTCDecoder, F::kVAE, F::kPrompt}) {
        if (!info.dir.has(name)) {
            info.missing.push_back(name);
            continue;
        }
        FileInfo f;
        f.name = name;
        f.path = info.dir.path(name);
        f.bytes = static_cast<int64_t>(fs::file_size(f.path));
        std::ostringstream cfg;
        if (std::string(name) == F::kPrompt) {
            const TorchFile p = read_torch_file(f.path);
            if (!p.tensor) {
                throw ModelError(f.path + ": expected a single tensor, found a dict");
            }
            count(TensorMap{{"prompt", *p.tensor}}, f);
            cfg << "shape=" << p.tensor->sizes();
        } else {
            const TensorMap m = load_tensors(f.path);
            count(m, f);
            if (std::string(name) == F::kDiT) {
                const DiTConfig c = DiTConfig::from_tensors(m, f.path);
                cfg << "dim=" << c.dim << " layers=" << c.num_layers << " ffn=" << c.ffn_dim
                    << " heads=" << c.num_heads() << " text_dim=" << c.text_dim;
                f.key_hash = key_hash(specs_of(m));
            } else if (std::string(name) == F::kLQProj) {
                const LQProjConfig c = LQProjConfig::from_tensors(m, f.path);
                cfg << "conv1=" << c.conv1_channels << " conv2=" << c.conv2_channels
                    << " out_dim=" << c.out_dim;
            } else if (std::string(name) == F::kTCDecoder) {
                const TCDecoderConfig c = TCDecoderConfig::from_tensors(m, f.path);
                cfg << "channels=[" << c.channels[0] << "," << c.channels[1] << "," << c.channels[2] << ","
                    << c.channels[3] << "]";
            } else {
                const VAEDecoderConfig c = VAEDecoderConfig::from_tensors(m, f.path);
                cfg << "dim=" << c.dim << " z_dim=" << c.z_dim;
                f.key_hash = key_hash(specs_of(m));
            }
        }
        f.config = cfg.str();
        info.files.push_back(std::move(f));
    }
    return info;
}

std::string to_text(const ModelInfo& info) {
    std::ostringstream os;
    os << "model folder: " << info.dir.dir << "\n"
       << "version:      " << to_string(info.dir.version) << " (from the " << info.dir.version_source
       << ")\n";
    for (const auto& f : info.files) {
        os << "  " << f.name << "\n"
           << "      " << f.bytes << " bytes, " << f.tensors << " tensors, " << f.parameters
           << " parameters, ";
        for (size_t i = 0; i < f.dtypes.size(); ++i) {
            os << (i ? "/" : "") << f.dtypes[i];
        }
        os << "\n      " << f.config << "\n";
        if (!f.key_hash.empty()) {
            os << "      key hash " << f.key_hash << "\n";
        }
    }
    for (const auto& m : info.missing) {
        os << "  " << m << ": missing\n";
    }
    for (const auto& w : info.dir.warnings) {
        os << "warning: " << w << "\n";
    }
    return os.str();
}

std::string to_json(const ModelInfo& info, int indent) {
    nlohmann::ordered_json j;
    j["dir"] = info.dir.dir;
    j["version"] = to_string(info.dir.version);
    j["version_source"] = info.dir.version_source;
    j["files"] = nlohmann::ordered_json::array();
    for (const auto& f : info.files) {
        j["files"].push_back({{"name", f.name},
                              {"path", f.path},
                              {"bytes", f.bytes},
                              {"tensors", f.tensors},
                              {"parameters", f.parameters},
                              {"dtypes", f.dtypes},
                              {"config", f.config},
                              {"key_hash", f.key_hash}});
    }
    j["missing"] = info.missing;
    j["warnings"] = info.dir.warnings;
    return j.dump(indent);
}

}  // namespace flashvsr::models
