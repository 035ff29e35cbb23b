#include "models/test_weights.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>

#include "models/checkpoint/safetensors.h"
#include "models/checkpoint/torch_file.h"
#include "models/common/random_weights.h"
#include "models/dit.h"
#include "models/lq_proj.h"
#include "models/model_dir.h"
#include "models/tc_decoder.h"
#include "models/vae_decoder.h"

namespace flashvsr::models {
namespace fs = std::filesystem;

std::vector<ParamSpec> parameter_manifest(const std::string& component, const std::string& size) {
    if (component == "dit") {
        return DiTConfig::manifest(DiTConfig::preset(size));
    }
    if (component == "lq_proj") {
        return LQProj::manifest(LQProj::Config::preset(size));
    }
    if (component == "tcdecoder") {
        return TCDecoder::manifest(TCDecoder::Config::preset(size));
    }
    if (component == "vae") {
        return VAEDecoder::file_manifest(VAEDecoder::Config::preset(size));
    }
    throw InputError("component must be 'dit', 'lq_proj', 'tcdecoder' or 'vae', got '" + component + "'");
}

std::vector<std::string> make_test_weights(const std::string& dir, const TestWeightsOptions& o) {
    const ModelVersion version = parse_model_version(o.version);
    if (o.prompt_tokens < 1) {
        throw InputError("prompt_tokens must be >= 1, got " + std::to_string(o.prompt_tokens));
    }
    parameter_manifest("dit", o.size);  // validates the size before anything is written
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec || !fs::is_directory(dir)) {
        throw InputError("cannot create the folder '" + dir + "': " + ec.message());
    }
    using F = ModelFiles;
    const at::Device draw_on(o.draw_on);
    const auto path = [&](const char* name) { return (fs::path(dir) / name).string(); };
    std::vector<std::string> written;

    write_safetensors(path(F::kDiT), random_weights(parameter_manifest("dit", o.size), o.seed * 16 + 1,
                                                    at::kFloat, draw_on));
    written.push_back(path(F::kDiT));
    write_torch_file(path(F::kLQProj), random_weights(parameter_manifest("lq_proj", o.size), o.seed * 16 + 2,
                                                      at::kBFloat16, draw_on));
    written.push_back(path(F::kLQProj));
    write_torch_file(path(F::kTCDecoder), random_weights(parameter_manifest("tcdecoder", o.size),
                                                         o.seed * 16 + 3, at::kFloat, draw_on));
    written.push_back(path(F::kTCDecoder));
    write_torch_file(path(F::kVAE),
                     random_weights(parameter_manifest("vae", o.size), o.seed * 16 + 4, at::kFloat, draw_on));
    written.push_back(path(F::kVAE));

    const int64_t text_dim = DiTConfig::preset(o.size).text_dim;
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed * 16 + 5);
    at::Tensor prompt = at::zeros({1, o.prompt_tokens, text_dim}, at::kFloat);
    const int64_t used = std::min<int64_t>(32, o.prompt_tokens);
    prompt.narrow(1, 0, used)
        .copy_(at::randn({1, used, text_dim}, gen, at::TensorOptions().dtype(at::kFloat)) * 0.5);
    write_torch_tensor(path(F::kPrompt), prompt.to(at::kBFloat16));
    written.push_back(path(F::kPrompt));

    Manifest m;
    m.version = to_string(version);
    m.origin = "make-test-weights size=" + o.size + " seed=" + std::to_string(o.seed) +
               " (random weights: no real detail)";
    for (const auto& p : written) {
        m.files[fs::path(p).filename().string()] =
            ManifestEntry{m.version, static_cast<int64_t>(fs::file_size(p)), ""};
    }
    write_manifest(dir, m);
    written.push_back(path(F::kManifest));
    return written;
}

}  // namespace flashvsr::models
