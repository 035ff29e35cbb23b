#include "models/tc_decoder.h"

#include <flashvsr/flashvsr.h>

#include <ATen/ATen.h>

#include <utility>

namespace flashvsr::models {
namespace {

constexpr int64_t kCondT = 4;   // LQ frames per latent frame in the condition unshuffle
constexpr int64_t kCondXY = 8;  // LQ pixels per latent pixel
constexpr int64_t kRgb = 3;

at::Tensor conv3x3(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = at::Tensor()) {
    return at::conv2d(x, w, b, /*stride=*/1, /*padding=*/1);
}

/// nn.Upsample(scale_factor=2), nearest.
at::Tensor upsample2(const at::Tensor& x) {
    return at::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2});  // [n,C,H,W] -> [n,C,2H,2W]
}

/// TGrow: 1x1 conv C -> s·C, then each step's channel groups become s consecutive steps.
at::Tensor tgrow(const at::Tensor& x, const at::Tensor& w) {
    const int64_t c = x.size(1), stride = w.size(0) / c;
    const at::Tensor y = at::conv2d(x, w);                            // [n, C, H, W] -> [n, s·C, H, W]
    return y.reshape({x.size(0) * stride, c, x.size(2), x.size(3)});  // [n, s·C, H, W] -> [n·s, C, H, W]
}

}  // namespace

TCDecoderConfig TCDecoderConfig::from_tensors(const TensorMap& tensors, const std::string& source) {
    TCDecoderConfig c;
    const char* keys[4] = {"decoder.1.weight", "decoder.10.weight", "decoder.16.weight", "decoder.22.weight"};
    for (int i = 0; i < 4; ++i) {
        const auto s = require_shape(tensors, keys[i], source);
        if (s.size() != 4) {
            throw ModelError(source + ": key '" + keys[i] + "' is not a 4-D conv weight");
        }
        c.channels[i] = s[0];
        if (i == 0) {
            c.latent_channels = s[1] - c.cond_channels;
            if (c.latent_channels <= 0) {
                throw ModelError(source + ": key 'decoder.1.weight' has " + std::to_string(s[1]) +
                                 " input channels, expected 768 condition channels plus the latent channels");
            }
        }
    }
    return c;
}

TCDecoderConfig TCDecoderConfig::preset(const std::string& size) {
    TCDecoderConfig c;
    if (size == "tiny") {
        c.channels = {64, 32, 16, 16};
    } else if (size == "small") {
        c.channels = {128, 64, 32, 32};
    } else if (size == "full") {
        c.channels = {512, 256, 128, 128};
    } else {
        throw InputError("tc_decoder: unknown preset '" + size + "' (expected tiny, small or full)");
    }
    return c;
}

namespace {

/// The nine memory slots of TCDecoderState by MemBlock checkpoint index.
constexpr std::pair<int, at::Tensor TCDecoderState::*> kMemSlots[] = {
    {5, &TCDecoderState::mem_5},   {6, &TCDecoderState::mem_6},   {7, &TCDecoderState::mem_7},
    {11, &TCDecoderState::mem_11}, {12, &TCDecoderState::mem_12}, {13, &TCDecoderState::mem_13},
    {17, &TCDecoderState::mem_17}, {18, &TCDecoderState::mem_18}, {19, &TCDecoderState::mem_19},
};

}  // namespace

at::Tensor& TCDecoderState::memory(int layer) {
    for (const auto& [index, slot] : kMemSlots) {
        if (index == layer) {
            return this->*slot;
        }
    }
    TORCH_CHECK(false, "tc_decoder: layer ", layer, " is not a MemBlock");
}

void TCDecoderState::reset() {
    for (const auto& [index, slot] : kMemSlots) {
        (this->*slot) = at::Tensor();
    }
    started = false;
}

int64_t TCDecoderState::bytes() const {
    int64_t n = 0;
    for (const auto& [index, slot] : kMemSlots) {
        const at::Tensor& t = this->*slot;
        n += t.defined() ? static_cast<int64_t>(t.nbytes()) : 0;
    }
    return n;
}

at::Tensor tc_condition(const at::Tensor& cond) {
    TORCH_CHECK(cond.dim() == 5 && cond.size(1) == kRgb && cond.size(2) > 0,
                "tc_decoder: expected cond [B,3,Fc,H,W], got ", cond.sizes());
    TORCH_CHECK(cond.size(3) % kCondXY == 0 && cond.size(4) % kCondXY == 0,
                "tc_decoder: cond H and W must be multiples of 8, got ", cond.sizes());
    at::Tensor x = cond;
    const int64_t pad = (kCondT - cond.size(2) % kCondT) % kCondT;
    if (pad > 0) {
        const at::Tensor first = cond.narrow(2, 0, 1).expand({-1, -1, pad, -1, -1});
        x = at::cat({first, cond}, 2);  // [B,3,Fc,H,W] -> [B,3,Fc+pad,H,W]
    }
    const int64_t b = x.size(0), t = x.size(2) / kCondT;
    const int64_t h = x.size(3) / kCondXY, w = x.size(4) / kCondXY;
    return x
        .reshape({b, kRgb, t, kCondT, h, kCondXY, w, kCondXY})      // -> [B,c,T,dt,h,dy,w,dx]
        .permute({0, 2, 1, 3, 5, 7, 4, 6})                          // -> [B,T,c,dt,dy,dx,h,w]
        .reshape({b, t, kRgb * kCondT * kCondXY * kCondXY, h, w});  // -> [B,T,768,h,w]
}

TCDecoder::TCDecoder(const TensorMap& tensors, const std::string& source, const LoadOptions& opts)
    : config_(TCDecoderConfig::from_tensors(tensors, source)) {
    table().load(tensors, source, opts);
}

ParamTable TCDecoder::table() {
    const auto& n = config_.channels;
    ParamTable t;
    auto key = [](int idx, const char* rest) { return "decoder." + std::to_string(idx) + rest; };
    auto mem_block = [&](int idx, MemBlockWeights& m, int64_t c) {
        t.add(key(idx, ".conv.0.weight"), &m.w0, {c, 2 * c, 3, 3});
        t.add(key(idx, ".conv.0.bias"), &m.b0, {c});
        t.add(key(idx, ".conv.2.weight"), &m.w2, {c, c, 3, 3});
        t.add(key(idx, ".conv.2.bias"), &m.b2, {c});
        t.add(key(idx, ".conv.4.weight"), &m.w4, {c, c, 3, 3});
        t.add(key(idx, ".conv.4.bias"), &m.b4, {c});
    };
    t.add(key(1, ".weight"), &conv1_weight_, {n[0], config_.cond_channels + config_.latent_channels, 3, 3});
    t.add(key(1, ".bias"), &conv1_bias_, {n[0]});
    t.add(key(3, ".weight"), &conv3_weight_, {n[0], n[0], 3, 3});
    for (int i = 0; i < 3; ++i) {
        mem_block(5 + i, stage0_[i], n[0]);
    }
    t.add(key(9, ".conv.weight"), &tgrow9_weight_, {n[0], n[0], 1, 1});
    t.add(key(10, ".weight"), &conv10_weight_, {n[1], n[0], 3, 3});
    for (int i = 0; i < 3; ++i) {
        mem_block(11 + i, stage1_[i], n[1]);
    }
    t.add(key(15, ".conv.weight"), &tgrow15_weight_, {2 * n[1], n[1], 1, 1});
    t.add(key(16, ".weight"), &conv16_weight_, {n[2], n[1], 3, 3});
    for (int i = 0; i < 3; ++i) {
        mem_block(17 + i, stage2_[i], n[2]);
    }
    t.add(key(21, ".conv.weight"), &tgrow21_weight_, {2 * n[2], n[2], 1, 1});
    t.add(key(22, ".weight"), &conv22_weight_, {n[3], n[2], 3, 3});
    t.add(key(24, ".weight"), &conv24_weight_, {n[3], n[3], 3, 3});
    t.add(key(26, ".weight"), &conv26_weight_, {kRgb, n[3], 3, 3});
    t.add(key(26, ".bias"), &conv26_bias_, {kRgb});
    return t;
}

std::vector<ParamSpec> TCDecoder::manifest(const Config& config) {
    TCDecoder d;
    d.config_ = config;
    return d.table().specs();
}

at::Tensor TCDecoder::mem_block(const at::Tensor& x, const MemBlockWeights& m, at::Tensor& memory) const {
    // x: [n, C, H, W], one row per time step. past_t = x_{t-1}; past_0 = memory (zeros after a reset).
    const int64_t n = x.size(0);
    const at::Tensor prev = memory.defined() ? memory : at::zeros_like(x.narrow(0, 0, 1));
    const at::Tensor past = at::cat({prev, x.narrow(0, 0, n - 1)}, 0);    // [1 + (n-1), C, H, W]
    memory = x.narrow(0, n - 1, 1).clone(at::MemoryFormat::Contiguous);   // used above, updated now
    at::Tensor y = at::relu(conv3x3(at::cat({x, past}, 1), m.w0, m.b0));  // [n, 2C, H, W] -> [n, C, H, W]
    y = at::relu(conv3x3(y, m.w2, m.b2));
    y = conv3x3(y, m.w4, m.b4);
    return at::relu(y + x);  // identity skip (in == out channels)
}

at::Tensor TCDecoder::decode(const at::Tensor& latents, const at::Tensor& cond, TCDecoderState& state) const {
    TORCH_CHECK(latents.dim() == 5 && latents.size(0) == 1 && latents.size(1) == config_.latent_channels &&
                    latents.size(2) > 0,
                "tc_decoder: expected latents [1,", config_.latent_channels, ",T,h,w], got ",
                latents.sizes());
    const int64_t t = latents.size(2), h = latents.size(3), w = latents.size(4);
    TORCH_CHECK(cond.dim() == 5 && cond.size(0) == 1 && cond.size(3) == h * kSpaceUpscale &&
                    cond.size(4) == w * kSpaceUpscale && (cond.size(2) + kCondT - 1) / kCondT == t,
                "tc_decoder: cond ", cond.sizes(), " does not match latents ", latents.sizes(),
                " (expected [1,3,Fc,8h,8w] with ceil(Fc/4) == T)");
    for (const at::Tensor* x : {&latents, &cond}) {
        TORCH_CHECK(x->scalar_type() == conv1_weight_.scalar_type() && x->device() == conv1_weight_.device(),
                    "tc_decoder: input is ", x->scalar_type(), " on ", x->device(), ", weights are ",
                    conv1_weight_.scalar_type(), " on ", conv1_weight_.device());
    }
    TORCH_CHECK(
        !state.started || !state.mem_5.defined() || (state.mem_5.size(2) == h && state.mem_5.size(3) == w),
        "tc_decoder: latents ", latents.sizes(), " differ in size from the stream's (reset the state first)");
    const int64_t trim = state.started ? 0 : kFramesToTrim;

    const at::Tensor c = tc_condition(cond).squeeze(0);       // [1,T,768,h,w] -> [T,768,h,w]
    const at::Tensor z = latents.squeeze(0).transpose(0, 1);  // [1,16,T,h,w] -> [T,16,h,w]
    at::Tensor x = at::cat({c, z}, 1);                        // -> [T, 784, h, w], condition first
    x = at::tanh(x / 3.0) * 3.0;                              // 0: Clamp
    x = at::relu(conv3x3(x, conv1_weight_, conv1_bias_));     // 1, 2
    x = at::relu(conv3x3(x, conv3_weight_));                  // 3, 4
    for (int i = 0; i < 3; ++i) {
        x = mem_block(x, stage0_[i], state.memory(5 + i));  // 5, 6, 7
    }
    x = tgrow(upsample2(x), tgrow9_weight_);  // 8, 9: [T, c0, 2h, 2w]
    x = conv3x3(x, conv10_weight_);           // 10
    for (int i = 0; i < 3; ++i) {
        x = mem_block(x, stage1_[i], state.memory(11 + i));  // 11, 12, 13
    }
    x = tgrow(upsample2(x), tgrow15_weight_);  // 14, 15: [2T, c1, 4h, 4w]
    x = conv3x3(x, conv16_weight_);            // 16
    for (int i = 0; i < 3; ++i) {
        x = mem_block(x, stage2_[i], state.memory(17 + i));  // 17, 18, 19
    }
    state.started = true;

    // 20-26 act on each time step alone: run them one step (2 output frames) at a time so the peak
    // holds 2 full-resolution activations instead of 4T (bit-identical: conv rows are independent).
    const int64_t height = h * kSpaceUpscale, width = w * kSpaceUpscale;
    at::Tensor out = at::empty({1, kRgb, kTimeUpscale * t - trim, height, width}, x.options());
    for (int64_t step = 0; step < x.size(0); ++step) {
        at::Tensor y = tgrow(upsample2(x.narrow(0, step, 1)), tgrow21_weight_);  // 20, 21: [2, c2, H, W]
        y = at::relu(conv3x3(y, conv22_weight_));                                // 22, 23
        y = at::relu(conv3x3(y, conv24_weight_));                                // 24, 25
        y = conv3x3(y, conv26_weight_, conv26_bias_);                            // 26: [2, 3, H, W]
        for (int64_t r = 0; r < y.size(0); ++r) {
            const int64_t frame = step * y.size(0) + r - trim;  // the first `trim` frames are dropped
            if (frame >= 0) {
                out.select(2, frame).copy_(y.narrow(0, r, 1));  // [1, 3, H, W] -> out[:, :, frame]
            }
        }
    }
    return out;
}

}  // namespace flashvsr::models
