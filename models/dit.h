// FlashVSR DiT (Wan2.1-1.3B shaped WanModel, streaming variant; MODEL.md §2): weights, model-lifetime
// constants from the prompt tensor, and one-step prediction per streaming chunk with LCSA self-attention.
// The network is stateless: the per-stream K/V windows and chunk counter live in DiTState.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/common/params.h"
#include "models/dit_attention.h"

namespace flashvsr::models {

/// Hyper-parameters, all read from tensor shapes except head_dim (not derivable; 128 in the release).
struct DiTConfig {
    int64_t dim = 1536;
    int64_t ffn_dim = 8960;
    int64_t num_layers = 30;
    int64_t text_dim = 4096;
    int64_t freq_dim = 256;
    int64_t in_dim = 16;
    int64_t out_dim = 16;
    int64_t head_dim = 128;
    int64_t patch_t = 1, patch_h = 2, patch_w = 2;
    double eps = 1e-6;

    int64_t num_heads() const { return dim / head_dim; }

    /// From the shapes of a DiT checkpoint (keys as in MODEL.md §1.2); throws ModelError naming `source`.
    static DiTConfig from_tensors(const TensorMap& tensors, const std::string& source,
                                  int64_t head_dim = 128);
    /// "tiny" {256, 2 layers, ffn 512, text 64}, "small" {512, 4, 1024, 256}, "full" (the release).
    static DiTConfig preset(const std::string& size);
    /// Checkpoint keys and shapes in state-dict order (825 entries for "full"); allocates nothing.
    static std::vector<ParamSpec> manifest(const DiTConfig& cfg);
};

/// Model-lifetime constants computed once from the prompt tensor (MODEL.md §2.2), in the weights' dtype.
struct DiTConstants {
    at::Tensor t;                     ///< [1, dim] time embedding of timestep 1000
    at::Tensor t_mod;                 ///< [1, 6, dim]
    std::vector<at::Tensor> cross_k;  ///< per block [1, L, dim], RMS-normed keys
    std::vector<at::Tensor> cross_v;  ///< per block [1, L, dim]
    int64_t bytes() const;
};

/// Per-stream self-attention state (MODEL.md §8). Window layout [n_slices*S, 128, dim] per block,
/// rotated + RMS-normed keys and raw values; empty (undefined) before chunk 0.
struct DiTState {
    std::vector<at::Tensor> k_cache;  ///< per block
    std::vector<at::Tensor> v_cache;  ///< per block
    /// Chunks processed; sets the RoPE temporal offset. chunk_index > 0 with empty caches is a cold start in
    /// the middle of a stream (replay after re-tiling, docs/TILING.md): that chunk attends to its own slice.
    int64_t chunk_index = 0;
    int64_t grid_h = 0, grid_w = 0;  ///< token grid the caches belong to (0 before chunk 0)

    void reset();
    /// A cold start at global chunk `chunk` (replay after re-tiling, docs/TILING.md): empty windows, the RoPE
    /// offset of that chunk.
    void cold_start(int64_t chunk);
    /// Bytes of the storages the caches hold (trimmed caches never keep a larger buffer alive).
    int64_t bytes() const;
    /// Calls `f` on every cache tensor (e.g. to move them between devices).
    void for_each_tensor(const std::function<void(at::Tensor&)>& f);
};

/// LCSA knobs (MODEL.md §2.6, §2.9).
struct AttentionOptions {
    double sparse_ratio = 2.0;
    double kv_ratio = 3.0;
    int64_t local_range = 11;
    bool dense_oracle = false;  ///< dense masked attention instead of the fast path (tests)
    AttentionKernel kernel = AttentionKernel::kAuto;  ///< which fast path (dit_attention.h)
    /// Not the attention's: tokens per block of the FFN (0 = DiT::kFfnTokens; tests set small blocks).
    int64_t ffn_tokens = 0;
};

class DiT {
  public:
    using Config = DiTConfig;
    /// Tokens per block of the FFN (AttentionOptions::ffn_tokens = 0): one block at 384x256 and in every
    /// steady chunk up to 896x512; the first chunk at 896x512 (10 752 tokens) runs in three.
    static constexpr int64_t kFfnTokens = 4096;

    /// Strict load of every key of `cfg`'s manifest (config from shapes); errors name `source` and key.
    DiT(const TensorMap& tensors, const std::string& source, const LoadOptions& opts = {},
        int64_t head_dim = 128);
    /// Zero weights of `cfg` (tests set weights through params()).
    DiT(const DiTConfig& cfg, const LoadOptions& opts);
    ~DiT();
    DiT(DiT&&) noexcept;
    DiT& operator=(DiT&&) noexcept;

    const DiTConfig& config() const { return cfg_; }
    /// The checkpoint-shaped parameters (after quantize_int8 the quantized linears' weights are undefined).
    const ParamTable& params() const;
    /// Moves every weight to `device` (Engine::to), the int8 weights and scales included.
    void to(at::Device device);
    /// The compute dtype (of the parameters that are not int8).
    at::ScalarType dtype() const;
    at::Device device() const;

    /// Opt-in int8: the weight of every linear layer but the output head becomes int8 per output channel
    /// (symmetric, scale = max|W[o,:]| / 127); at run time activations are quantized per token and multiplied
    /// as int8 (kernels/int8_linear: at::_int_mm, or exact float32 slices where it is slow), then scaled back
    /// in float32. Every other parameter is converted to compute_dtype.
    /// Irreversible; frees the floating-point linear weights.
    void quantize_int8(at::ScalarType compute_dtype);
    bool quantized() const { return quantized_; }
    /// Bytes of every tensor the network holds (int8 weights and their scales included).
    int64_t weight_bytes() const;

    /// Constants from the prompt [1, L, text_dim] (any float dtype; L free, 512 in the release).
    DiTConstants prepare(const at::Tensor& prompt) const;

    /// One streaming chunk. latents [1, in_dim, f, H/8, W/8] (f = 6 for chunk 0, then 2; H, W multiples
    /// of 128), lq_tokens [1, f*(H/16)*(W/16), dim] added before block 0 (undefined = none; taken by value
    /// and released once added, so a caller that moves them in does not hold them under the blocks). Uses,
    /// then updates `state` (K/V windows trimmed per kv_ratio, chunk_index + 1). Returns the predicted
    /// velocity [1, out_dim, f, H/8, W/8] in the weights' dtype (caller: latent = noise - v).
    /// `after_block`, when set, runs after each block, once that block's activations are freed (the tile
    /// runner hands glibc's free heap pages back there on the CPU).
    at::Tensor forward_chunk(const at::Tensor& latents, at::Tensor lq_tokens, const DiTConstants& consts,
                             DiTState& state, const AttentionOptions& opts = {},
                             const std::function<void()>& after_block = {}) const;

    /// Absolute RoPE temporal position of the first latent frame of chunk `chunk_index`
    /// (0 for chunk 0 with frames 0..5; 4 + 2k for chunk k >= 1).
    static int64_t first_frame_position(int64_t chunk_index);

    /// Conv3d(kernel = stride = (1,2,2)) as a matmul: [1, in_dim, f, 2h, 2w] -> [1, f*h*w, dim].
    at::Tensor patchify(const at::Tensor& latents) const;
    /// [1, f*h*w, out_dim*4] (channels (py, px, c), c fastest) -> [1, out_dim, f, 2h, 2w].
    at::Tensor unpatchify(const at::Tensor& tokens, int64_t f, int64_t h, int64_t w) const;

    struct Weights;

  private:
    DiTConfig cfg_;
    std::unique_ptr<Weights> w_;
    bool quantized_ = false;
};

}  // namespace flashvsr::models
