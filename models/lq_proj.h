// The LQ projector (MODEL.md §3): low-quality frames -> DiT conditioning tokens, one latent frame per 4-frame
// clip, through two causal 3D convolutions whose temporal caches live in LQProjState. One class serves
// v1.0 (`Buffer_LQ4x_Proj`) and v1.1 (`Causal_LQ4x_Proj`): the parameters are identical, only the cache
// order differs (CacheOrder).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models/common/params.h"

namespace flashvsr::models {

/// Widths of the LQ projector, read from the checkpoint shapes (MODEL.md §1.3).
struct LQProjConfig {
    int64_t in_channels = 768;      ///< 3·16·16: the (1,16,16) pixel-unshuffle of RGB
    int64_t conv1_channels = 2048;  ///< conv1 / norm1 width
    int64_t conv2_channels = 3072;  ///< conv2 / norm2 width
    int64_t out_dim = 1536;         ///< the DiT width (linear_layers.0 output)

    /// From `conv1.weight` [C1, 768, 4, 3, 3], `conv2.weight` [C2, C1, 4, 3, 3] and
    /// `linear_layers.0.weight` [D, C2]; a missing key or a wrong rank/kernel throws ModelError naming
    /// `source`.
    static LQProjConfig from_tensors(const TensorMap& tensors, const std::string& source);
    /// "tiny" {64, 96, 256}, "small" {256, 384, 512}, "full" {2048, 3072, 1536}; anything else throws
    /// InputError.
    static LQProjConfig preset(const std::string& size);
};

/// Order of cache use and update inside each causal conv (MODEL.md §3.2, MODEL.md §0 item 1).
enum class CacheOrder {
    UseThenUpdate,  ///< default for every version: the stream equals one causal conv over the whole video
    AssignThenUse,  ///< `legacy_v10_cache_order`: official v1.0 scripts; each clip sees only its own 4 frames
};

/// Streaming state of one LQ projector stream (MODEL.md §8). Fixed size after the first call.
struct LQProjState {
    at::Tensor conv1_cache;  ///< [1, 768, 2, h, w]: the last 2 pixel-unshuffled frames (conv1 input)
    at::Tensor conv2_cache;  ///< [1, C1, 2, h, w]: the last 2 post-SiLU conv1 outputs (conv2 input)
    int64_t clip_index = 0;  ///< 0 => the next call is the priming call

    /// Drops both caches and sets clip_index to 0 (new video or tile).
    void reset();
    /// A cold start in the middle of a stream (replay after re-tiling, docs/TILING.md) is a reset: the next
    /// call primes the convs on one frame, the one before the first clip.
    void cold_start() { reset(); }
    /// Bytes held by the caches.
    int64_t bytes() const;
    /// Calls `f` on every cache tensor (e.g. to move them between devices).
    void for_each_tensor(const std::function<void(at::Tensor&)>& f);
};

/// (1,16,16) pixel-unshuffle: [B, 3, F, H, W] -> [B, 768, F, H/16, W/16], channel c·256 + dy·16 + dx.
at::Tensor lq_pixel_unshuffle(const at::Tensor& video);

/// The projector's weights (stateless; every cache lives in LQProjState).
class LQProj {
  public:
    using Config = LQProjConfig;

    /// Strict load from a checkpoint's tensors (errors name `source` and the key).
    LQProj(const TensorMap& tensors, const std::string& source, const LoadOptions& opts = {});

    /// Checkpoint keys and shapes in checkpoint order (no tensor is allocated).
    static std::vector<ParamSpec> manifest(const Config& config);

    const Config& config() const { return config_; }
    /// Moves every weight to `device` (Engine::to); a tensor member outside table() must move here too.
    void to(at::Device device) { table().move_to(device); }

    /// Bytes of the weights held: the checkpoint's (the Winograd form is made per call, a block at a time).
    int64_t weight_bytes() { return table().bytes(); }

    /// One streaming step. `clip`: [1, 3, Fc, H, W] in [-1, 1], the weights' dtype and device, H and W
    /// multiples of 16. The first call after state.reset() takes the single frame f0 (Fc == 1), runs conv1
    /// on 4 copies of it to prime the caches and returns an undefined tensor. Every later call takes exactly
    /// 4 new frames and returns the tokens of one latent frame: [1, h·w, out_dim] in (y, x) order,
    /// h = H/16, w = W/16.
    at::Tensor stream(const at::Tensor& clip, LQProjState& state,
                      CacheOrder order = CacheOrder::UseThenUpdate) const;

  private:
    LQProj() = default;  // manifest(): a weightless instance to enumerate the table
    ParamTable table();

    Config config_;
    at::Tensor conv1_weight_, conv1_bias_;  // conv1: CausalConv3d 768 -> C1, kernel (4,3,3), stride (2,1,1)
    at::Tensor norm1_gamma_;                // norm1: RMS_norm(C1), no bias; then SiLU (parameterless)
    at::Tensor conv2_weight_, conv2_bias_;  // conv2: CausalConv3d C1 -> C2
    // Loaded on the CPU in float32/float64 with LoadOptions::winograd: conv1/conv2 run in F(2x2, 3x3) form
    // (models/common/winograd_conv.h), their weights held in winograd_weight_layout (same values and bytes).
    bool winograd_ = false;
    at::Tensor norm2_gamma_;                  // norm2: RMS_norm(C2); then SiLU
    at::Tensor linear_weight_, linear_bias_;  // linear_layers.0: Linear C2 -> D (layer_num = 1)
};

}  // namespace flashvsr::models
