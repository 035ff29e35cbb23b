#include "models/lq_proj.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>

#include <cmath>

#include "models/common/linear.h"
#include "models/common/rms_norm.h"
#include "models/common/winograd_conv.h"

namespace flashvsr::models {
namespace {

constexpr int64_t kUnshuffle = 16;  // spatial pixel-unshuffle factor (tokens are 16x16 LQ pixels)
constexpr int64_t kCacheT = 2;      // CACHE_T: frames each causal conv keeps = its temporal front pad
constexpr int64_t kKernelT = 4;     // causal conv kernel (4, 3, 3), stride (2, 1, 1)
constexpr int64_t kStrideT = 2;
constexpr int64_t kClipFrames = 4;  // frames per clip = one latent frame

/// Causal 3D conv: `cache` (may be undefined) replaces the temporal front padding; the rest of the
/// front padding and the 1-px spatial padding replicate the edge. x: [1, C, T, h, w]. With `winograd` (and x
/// on the CPU) the F(2x2, 3x3) form, the weight transformed a block at a time; else at::conv3d.
at::Tensor causal_conv(const at::Tensor& x, const at::Tensor& cache, const at::Tensor& weight,
                       const at::Tensor& bias, bool winograd) {
    at::Tensor in = x;
    int64_t front = kCacheT;
    if (cache.defined()) {
        in = at::cat({cache, x}, 2);  // [1, C, 2, h, w] ++ [1, C, T, h, w] -> [1, C, T+2, h, w]
        front -= cache.size(2);
    }
    in = at::pad(in, {1, 1, 1, 1, front, 0}, "replicate");  // [1, C, T', h, w] -> [1, C, T'+front, h+2, w+2]
    if (winograd && in.device().is_cpu()) {
        return winograd_conv3d(in, weight, bias, kStrideT);
    }
    return at::conv3d(in, weight, bias, {kStrideT, 1, 1});
}

/// RMS_norm over channels (dim 1), then SiLU; gamma [C, 1, 1, 1] broadcasts over [1, C, T, h, w].
at::Tensor rms_norm_silu(const at::Tensor& x, const at::Tensor& gamma) {
    return at::silu(channel_rms_norm(x, gamma));
}

/// The last kCacheT frames of x as an owned, contiguous tensor (never a view of the whole clip).
at::Tensor tail_frames(const at::Tensor& x) {
    return x.narrow(2, x.size(2) - kCacheT, kCacheT).clone(at::MemoryFormat::Contiguous);
}

}  // namespace

LQProjConfig LQProjConfig::from_tensors(const TensorMap& tensors, const std::string& source) {
    const auto c1 = require_shape(tensors, "conv1.weight", source);
    const auto c2 = require_shape(tensors, "conv2.weight", source);
    const auto lin = require_shape(tensors, "linear_layers.0.weight", source);
    if (c1.size() != 5 || c2.size() != 5 || lin.size() != 2) {
        throw ModelError(source +
                         ": LQ projector expects 5-D conv1/conv2 weights and a 2-D linear_layers.0.weight");
    }
    LQProjConfig c;
    c.in_channels = c1[1];
    c.conv1_channels = c1[0];
    c.conv2_channels = c2[0];
    c.out_dim = lin[0];
    if (c.in_channels != 3 * kUnshuffle * kUnshuffle) {
        throw ModelError(source + ": key 'conv1.weight' has " + std::to_string(c.in_channels) +
                         " input channels, expected 768 (3 x 16 x 16)");
    }
    return c;
}

LQProjConfig LQProjConfig::preset(const std::string& size) {
    if (size == "tiny") {
        return {768, 64, 96, 256};
    }
    if (size == "small") {
        return {768, 256, 384, 512};
    }
    if (size == "full") {
        return {768, 2048, 3072, 1536};
    }
    throw InputError("lq_proj: unknown preset '" + size + "' (expected tiny, small or full)");
}

void LQProjState::reset() {
    conv1_cache = at::Tensor();
    conv2_cache = at::Tensor();
    clip_index = 0;
}

int64_t LQProjState::bytes() const {
    int64_t n = 0;
    for (const at::Tensor* t : {&conv1_cache, &conv2_cache}) {
        if (t->defined()) {
            n += static_cast<int64_t>(t->nbytes());
        }
    }
    return n;
}

void LQProjState::for_each_tensor(const std::function<void(at::Tensor&)>& f) {
    f(conv1_cache);
    f(conv2_cache);
}

at::Tensor lq_pixel_unshuffle(const at::Tensor& video) {
    TORCH_CHECK(video.dim() == 5, "lq_pixel_unshuffle: expected [B,C,F,H,W], got ", video.sizes());
    const int64_t b = video.size(0), c = video.size(1), f = video.size(2);
    const int64_t h = video.size(3) / kUnshuffle, w = video.size(4) / kUnshuffle;
    TORCH_CHECK(video.size(3) % kUnshuffle == 0 && video.size(4) % kUnshuffle == 0,
                "lq_pixel_unshuffle: H and W must be multiples of 16, got ", video.sizes());
    return video
        .reshape({b, c, f, h, kUnshuffle, w, kUnshuffle})     // [B,C,F,H,W] -> [B,C,F,h,dy,w,dx]
        .permute({0, 1, 4, 6, 2, 3, 5})                       // -> [B,C,dy,dx,F,h,w]
        .reshape({b, c * kUnshuffle * kUnshuffle, f, h, w});  // -> [B, C·256, F, h, w]
}

LQProj::LQProj(const TensorMap& tensors, const std::string& source, const LoadOptions& opts)
    : config_(LQProjConfig::from_tensors(tensors, source)) {
    table().load(tensors, source, opts);
    const bool exact_float = opts.dtype == at::kFloat || opts.dtype == at::kDouble;
    winograd_ = opts.winograd && opts.device.is_cpu() && exact_float;
    if (winograd_) {  // the same values and bytes, input channels innermost (the transform's fastest layout)
        conv1_weight_ = winograd_weight_layout(conv1_weight_);
        conv2_weight_ = winograd_weight_layout(conv2_weight_);
    }
}

ParamTable LQProj::table() {
    const Config& c = config_;
    ParamTable t;
    t.add("conv1.weight", &conv1_weight_, {c.conv1_channels, c.in_channels, kKernelT, 3, 3});
    t.add("conv1.bias", &conv1_bias_, {c.conv1_channels});
    t.add("norm1.gamma", &norm1_gamma_, {c.conv1_channels, 1, 1, 1});
    t.add("conv2.weight", &conv2_weight_, {c.conv2_channels, c.conv1_channels, kKernelT, 3, 3});
    t.add("conv2.bias", &conv2_bias_, {c.conv2_channels});
    t.add("norm2.gamma", &norm2_gamma_, {c.conv2_channels, 1, 1, 1});
    // pixel_shuffle (the unshuffle) has no parameters; linear_layers holds one Linear (layer_num = 1).
    t.add("linear_layers.0.weight", &linear_weight_, {c.out_dim, c.conv2_channels});
    t.add("linear_layers.0.bias", &linear_bias_, {c.out_dim});
    return t;
}

std::vector<ParamSpec> LQProj::manifest(const Config& config) {
    LQProj p;
    p.config_ = config;
    return p.table().specs();
}

at::Tensor LQProj::stream(const at::Tensor& clip, LQProjState& state, CacheOrder order) const {
    TORCH_CHECK(clip.dim() == 5 && clip.size(0) == 1 && clip.size(1) == 3,
                "lq_proj: expected a clip [1,3,Fc,H,W], got ", clip.sizes());
    TORCH_CHECK(clip.size(3) % kUnshuffle == 0 && clip.size(4) % kUnshuffle == 0,
                "lq_proj: H and W must be multiples of 16, got ", clip.sizes());
    TORCH_CHECK(clip.scalar_type() == conv1_bias_.scalar_type() && clip.device() == conv1_bias_.device(),
                "lq_proj: clip is ", clip.scalar_type(), " on ", clip.device(), ", weights are ",
                conv1_bias_.scalar_type(), " on ", conv1_bias_.device());

    if (state.clip_index == 0) {
        // Priming: [f0] -> [f0, f0, f0, f0]; conv1 with its own front padding, conv2 does not run.
        TORCH_CHECK(clip.size(2) == 1, "lq_proj: the first clip after reset must be one frame, got ",
                    clip.sizes());
        const at::Tensor x = lq_pixel_unshuffle(clip.expand({1, 3, kClipFrames, clip.size(3), clip.size(4)}));
        const at::Tensor y =
            rms_norm_silu(causal_conv(x, at::Tensor(), conv1_weight_, conv1_bias_, winograd_), norm1_gamma_);
        state.conv1_cache = tail_frames(x);
        state.conv2_cache = tail_frames(y);
        state.clip_index = 1;
        return at::Tensor();
    }

    TORCH_CHECK(clip.size(2) == kClipFrames, "lq_proj: expected a clip of 4 frames, got ", clip.sizes());
    const at::Tensor x = lq_pixel_unshuffle(clip);  // [1, 3, 4, H, W] -> [1, 768, 4, h, w]
    TORCH_CHECK(state.conv1_cache.defined() && state.conv1_cache.size(3) == x.size(3) &&
                    state.conv1_cache.size(4) == x.size(4),
                "lq_proj: the clip size ", clip.sizes(),
                " differs from the stream's (reset the state first)");

    at::Tensor y, z;
    if (order == CacheOrder::UseThenUpdate) {
        y = rms_norm_silu(causal_conv(x, state.conv1_cache, conv1_weight_, conv1_bias_, winograd_),
                          norm1_gamma_);
        state.conv1_cache = tail_frames(x);
        z = rms_norm_silu(causal_conv(y, state.conv2_cache, conv2_weight_, conv2_bias_, winograd_),
                          norm2_gamma_);
        state.conv2_cache = tail_frames(y);
    } else {
        // legacy_v10_cache_order: the cache is replaced by this clip's own tail before the conv reads it.
        state.conv1_cache = tail_frames(x);
        y = rms_norm_silu(causal_conv(x, state.conv1_cache, conv1_weight_, conv1_bias_, winograd_),
                          norm1_gamma_);
        state.conv2_cache = tail_frames(y);
        z = rms_norm_silu(causal_conv(y, state.conv2_cache, conv2_weight_, conv2_bias_, winograd_),
                          norm2_gamma_);
    }
    ++state.clip_index;

    // z: [1, C2, 1, h, w] -> tokens [1, h·w, C2] in (t, y, x) order.
    const at::Tensor tokens = z.flatten(2).transpose(1, 2);     // [1, C2, 1, h, w] -> [1, h·w, C2]
    return dense_linear(tokens, linear_weight_, linear_bias_);  // [1, h·w, C2] -> [1, h·w, D]
}

}  // namespace flashvsr::models
