// Random FlashVSR checkpoints in the exact published formats and key names (for tests, demos, benchmarks).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/common/params.h"

namespace flashvsr::models {

/// Keys and shapes of one component at a size, without allocating weights.
/// component: "dit" | "lq_proj" | "tcdecoder" | "vae" (every raw key of Wan2.1_VAE.pth, encoder included);
/// size: "tiny" | "small" | "full" (the published model). Unknown names throw InputError.
std::vector<ParamSpec> parameter_manifest(const std::string& component, const std::string& size = "full");

struct TestWeightsOptions {
    std::string size = "tiny";     // "tiny" | "small" | "full"
    std::string version = "v1.1";  // recorded in the manifest (the files of both versions have the same keys)
    uint64_t seed = 0;
    int64_t prompt_tokens = 512;  // rows of posi_prompt.pth (the release has 512)
    std::string draw_on =
        "cpu";  // "cuda": values drawn on the GPU (fast for "full"; other values than "cpu")
};

/// Writes the five published files and flashvsr_manifest.json into `dir` (created if needed), in the
/// release's containers and dtypes: the DiT as fp32 safetensors, LQ_proj_in.ckpt as a bf16 torch.save
/// state dict, TCDecoder.ckpt and Wan2.1_VAE.pth as fp32 state dicts, posi_prompt.pth as a bare bf16
/// tensor [1, prompt_tokens, text_dim] (its first 32 rows random, the rest zero like a padded prompt).
/// Returns the paths written.
std::vector<std::string> make_test_weights(const std::string& dir, const TestWeightsOptions& options);

}  // namespace flashvsr::models
