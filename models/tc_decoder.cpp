#include "models/tc_decoder.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <utility>

namespace flashvsr::models {
namespace {

constexpr int64_t kCondT = 4;   // LQ frames per latent frame in the condition unshuffle
constexpr int64_t kCondXY = 8;  // LQ pixels per latent pixel
constexpr int64_t kRgb = 3;

at::Tensor conv3x3(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = at::Tensor()) {
    return at::conv2d(x, w, b, /*stride=*/1, /*padding=*/1);
}

/// Time step `k` of TGrow(stride s): its 1x1 conv C -> s·C turns channel group k into time step k.
at::Tensor tgrow_step(const at::Tensor& x, const at::Tensor& w, int64_t k) {
    const int64_t c = x.size(1);
    return at::conv2d(x, w.narrow(0, k * c, c));  // [1, C, H, W] -> [1, C, H, W]
}

}  // namespace

at::Tensor upsample2_conv3x3_weights(const at::Tensor& w) {
    TORCH_CHECK(w.dim() == 4 && w.size(2) == 3 && w.size(3) == 3,
                "upsample2_conv3x3_weights: expected [O, I, 3, 3], got ", w.sizes());
    // Along one axis, output phase 0 (even rows) sees input rows (i-1, i, i) through taps (0, 1, 2), phase 1
    // (odd rows) sees (i, i, i+1): two distinct rows with summed taps.
    auto fold = [](const at::Tensor& t, int64_t dim, int64_t phase) {  // 3 taps -> 2 along `dim`
        const at::Tensor a = t.narrow(dim, 0, 1), b = t.narrow(dim, 1, 1), c = t.narrow(dim, 2, 1);
        return phase == 0 ? at::cat({a, b + c}, dim) : at::cat({a + b, c}, dim);
    };
    std::vector<at::Tensor> phases;
    for (int64_t py = 0; py < 2; ++py) {
        for (int64_t px = 0; px < 2; ++px) {
            phases.push_back(fold(fold(w, 2, py), 3, px));  // [O, I, 2, 2]
        }
    }
    return at::cat(phases, 0).contiguous(at::MemoryFormat::ChannelsLast);  // [4·O, I, 2, 2], phase 2·py + px
}

at::Tensor upsample2_conv3x3(const at::Tensor& x, const at::Tensor& phase_weights) {
    TORCH_CHECK(x.dim() == 4 && phase_weights.dim() == 4 && phase_weights.size(0) % 4 == 0 &&
                    phase_weights.size(1) == x.size(1) && phase_weights.size(2) == 2 &&
                    phase_weights.size(3) == 2,
                "upsample2_conv3x3: input ", x.sizes(), " and phase weights ", phase_weights.sizes(),
                " do not match");
    const int64_t n = x.size(0), o = phase_weights.size(0) / 4, h = x.size(2), w = x.size(3);
    // One 2x2 conv with padding 1 computes all four phases at the (h+1) x (w+1) positions; phase (py, px)
    // of output pixel (i, j) sits at position (i + py, j + px).
    const at::Tensor y = at::conv2d(x, phase_weights, {}, /*stride=*/1, /*padding=*/1);  // [n, 4·O, h+1, w+1]
    const at::Tensor out =
        at::empty({n, o, 2 * h, 2 * w}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
    for (int64_t py = 0; py < 2; ++py) {
        for (int64_t px = 0; px < 2; ++px) {
            out.slice(2, py, 2 * h, 2)
                .slice(3, px, 2 * w, 2)
                .copy_(y.narrow(1, (2 * py + px) * o, o).narrow(2, py, h).narrow(3, px, w));
        }
    }
    return out;
}

namespace {}  // namespace

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

void TCDecoderState::cold_start() {
    reset();
    started = true;
}

void TCDecoderState::for_each_tensor(const std::function<void(at::Tensor&)>& f) {
    for (const auto& [index, slot] : kMemSlots) {
        f(this->*slot);
    }
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
    // Activations run channels-last (the layout oneDNN convolves without reordering them); the weights
    // are put in the matching layout once here rather than at every call.
    std::vector<at::Tensor*> weights = {&conv1_weight_,   &conv3_weight_,  &tgrow9_weight_,  &conv10_weight_,
                                        &tgrow15_weight_, &conv16_weight_, &tgrow21_weight_, &conv22_weight_,
                                        &conv24_weight_,  &conv26_weight_};
    for (auto* stage : {&stage0_, &stage1_, &stage2_}) {
        for (MemBlockWeights& m : *stage) {
            weights.insert(weights.end(), {&m.w0, &m.w2, &m.w4});
        }
    }
    for (at::Tensor* w : weights) {
        *w = w->contiguous(at::MemoryFormat::ChannelsLast);
    }
    conv10_phases_ = upsample2_conv3x3_weights(conv10_weight_);
    conv16_phases_ = upsample2_conv3x3_weights(conv16_weight_);
    conv22_phases_ = upsample2_conv3x3_weights(conv22_weight_);
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
    for (at::Tensor* p : {&conv10_phases_, &conv16_phases_, &conv22_phases_}) {
        t.add_derived(p);  // made from conv10/16/22 at load
    }
    return t;
}

std::vector<ParamSpec> TCDecoder::manifest(const Config& config) {
    TCDecoder d;
    d.config_ = config;
    return d.table().specs();
}

at::Tensor TCDecoder::mem_block(const at::Tensor& x, const MemBlockWeights& m, at::Tensor& memory,
                                int64_t band_rows) const {
    // x: [1, C, H, W], one time step; past = the previous step's input (zeros after a reset).
    const int64_t height = x.size(2);
    if (band_rows >= height) {
        const at::Tensor past = memory.defined() ? memory : at::zeros_like(x);
        at::Tensor y = conv3x3(at::cat({x, past}, 1), m.w0, m.b0).relu_();  // [1, 2C, H, W] -> [1, C, H, W]
        memory = x;  // used above, updated now (x is an activation of its own, never written in place)
        y = conv3x3(y, m.w2, m.b2).relu_();
        y = conv3x3(y, m.w4, m.b4);
        return y.add_(x).relu_();  // identity skip (in == out channels)
    }
    // In bands of rows, as the output layers (output_stage): band [r0, r1) of the output needs rows [c0, c1)
    // of conv 2's output, rows [u0, u1) of conv 0's, input rows [i0, i1); each band's first and last
    // computed rows border another band (the padding stands in for real rows there) and are cut. Only the
    // output and one band of the 2C-channel concatenation and of the activations exist besides x and past.
    const at::Tensor y = at::empty_like(x);  // channels-last like x
    for (int64_t r0 = 0; r0 < height; r0 += band_rows) {
        const int64_t r1 = std::min(height, r0 + band_rows);
        const int64_t c0 = std::max<int64_t>(r0 - 1, 0), c1 = std::min(height, r1 + 1);
        const int64_t u0 = std::max<int64_t>(c0 - 1, 0), u1 = std::min(height, c1 + 1);
        const int64_t i0 = std::max<int64_t>(u0 - 1, 0), i1 = std::min(height, u1 + 1);
        const at::Tensor xb = x.narrow(2, i0, i1 - i0);
        const at::Tensor in =
            at::cat({xb, memory.defined() ? memory.narrow(2, i0, i1 - i0) : at::zeros_like(xb)}, 1);
        const at::Tensor u = conv3x3(in, m.w0, m.b0).narrow(2, u0 - i0, u1 - u0).relu_();
        const at::Tensor c = conv3x3(u, m.w2, m.b2).narrow(2, c0 - u0, c1 - c0).relu_();
        const at::Tensor o = conv3x3(c, m.w4, m.b4).narrow(2, r0 - c0, r1 - r0);
        y.narrow(2, r0, r1 - r0).copy_(o.add_(x.narrow(2, r0, r1 - r0)).relu_());
    }
    memory = x;  // used by every band above, updated now
    return y;
}

int64_t TCDecoder::mem_block_band_rows(const at::Tensor& x) {
    const int64_t row_bytes =
        std::max<int64_t>(1, x.size(1) * x.size(3) * static_cast<int64_t>(x.element_size()));
    if (row_bytes * x.size(2) <= kMemBlockWholeBytes) {
        return x.size(2);  // whole
    }
    return std::max<int64_t>(1, kMemBlockBandBytes / row_bytes);
}

int64_t TCDecoder::output_band_rows(int64_t width) const {
    // Full-resolution activations of about kOutputBandBytes each, an even number of rows (at least 2).
    const int64_t row_bytes = std::max<int64_t>(
        1, config_.channels[3] * width * static_cast<int64_t>(conv24_weight_.element_size()));
    return std::max<int64_t>(2, kOutputBandBytes / row_bytes / 2 * 2);
}

void TCDecoder::output_stage(const at::Tensor& b, int64_t k2, const at::Tensor& frame,
                             int64_t band_rows) const {
    // b: [1, c2, H/2, W/2] (MemBlock 19's output); frame: [1, 3, H, W] (a view of the output). TGrow 21's
    // step k2 is a 1x1 conv, so it runs on each band's input rows (never a whole [1, c2, H/2, W/2] of it).
    // Band [r0, r1) of the frame needs rows [c0, c1) of conv 24's output, which need rows [u0, u1) of conv
    // 22's, which need input rows [i0, i1); a convolution of a band with padding 1 is exact except in its
    // first and last row where they border another band (there the padding stands in for real rows): those
    // rows are computed and cut. Rows outside the frame are the real zero padding. One band = the whole
    // frame, as before.
    const int64_t hh = b.size(2), height = 2 * hh;
    const int64_t rows = band_rows > 0 ? band_rows : output_band_rows(2 * b.size(3));
    for (int64_t r0 = 0; r0 < height; r0 += rows) {
        const int64_t r1 = std::min(height, r0 + rows);
        const int64_t c0 = std::max<int64_t>(r0 - 1, 0), c1 = std::min(height, r1 + 1);
        const int64_t u0 = std::max<int64_t>(c0 - 1, 0), u1 = std::min(height, c1 + 1);
        const int64_t i0 = std::max<int64_t>(u0 / 2 - 1, 0), i1 = std::min(hh, (u1 - 1) / 2 + 2);
        // 20 Upsample + 22 Conv as its four phases, 23 ReLU: rows [u0, u1)
        const at::Tensor x = tgrow_step(b.narrow(2, i0, i1 - i0), tgrow21_weight_, k2);  // 21: rows [i0, i1)
        const at::Tensor u = upsample2_conv3x3(x, conv22_phases_).narrow(2, u0 - 2 * i0, u1 - u0).relu_();
        const at::Tensor c = conv3x3(u, conv24_weight_).narrow(2, c0 - u0, c1 - c0).relu_();        // 24, 25
        const at::Tensor y = conv3x3(c, conv26_weight_, conv26_bias_).narrow(2, r0 - c0, r1 - r0);  // 26
        frame.narrow(2, r0, r1 - r0).copy_(y);
    }
}

at::Tensor TCDecoder::decode(const at::Tensor& latents, const at::Tensor& cond, TCDecoderState& state,
                             int64_t band_rows, const std::function<void()>& after_step) const {
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
    const int64_t c1 = config_.channels[1], c2 = config_.channels[2];

    // The decoder input of one step [1, 784, h, w], condition first, written in channels-last memory: the
    // only layout change of the chunk (everything after it, the output included, stays channels-last). One
    // step at a time: the whole chunk's input and unshuffled condition are 2 x 135 MB at 896x512.
    const int64_t cc = config_.cond_channels, lc = config_.latent_channels;
    const int64_t pad = (kCondT - cond.size(2) % kCondT) % kCondT;  // tc_condition's copies of frame 0
    const auto step_input = [&](int64_t step) {
        const at::Tensor clip =  // frames [4·step, 4·step + 4) of the padded condition
            step == 0 && pad > 0 ? at::cat({cond.narrow(2, 0, 1).expand({-1, -1, pad, -1, -1}),
                                            cond.narrow(2, 0, kCondT - pad)},
                                           2)
                                 : cond.narrow(2, kCondT * step - pad, kCondT);
        at::Tensor x =
            at::empty({1, cc + lc, h, w}, latents.options().memory_format(at::MemoryFormat::ChannelsLast));
        x.narrow(1, 0, cc).copy_(tc_condition(clip).select(1, 0));  // [1,1,768,h,w] -> [1,768,h,w]
        x.narrow(1, cc, lc).copy_(latents.select(2, step));         // [1,16,T,h,w] -> [1,16,h,w]
        return x.div_(3.0).tanh_().mul_(3.0);                       // 0: Clamp
    };

    // Frames [1, 3, 4T - trim, 8h, 8w] whose memory is [4T - trim, 8h, 8w, 3] (frame-major, channels last).
    const int64_t height = h * kSpaceUpscale, width = w * kSpaceUpscale;
    const at::Tensor out = at::empty({1, kTimeUpscale * t - trim, height, width, kRgb}, latents.options())
                               .permute({0, 4, 1, 2, 3});

    // Depth-first, one time step at a time (as the official decode_video(parallel=False)): each MemBlock
    // sees its previous step's input from `state` and every activation is one frame, so the working set
    // stays in cache-sized pieces instead of T-frame batches (same values: convolution rows are independent).
    const auto mem_rows = [&](const at::Tensor& x) {
        return band_rows > 0 ? band_rows : mem_block_band_rows(x);
    };
    int64_t frame = -trim;  // output index of the next decoded frame; the first `trim` are dropped
    for (int64_t step = 0; step < t; ++step) {
        {  // one step; its activations die at the end of this scope, before after_step
            at::Tensor a =
                conv3x3(step_input(step), conv1_weight_, conv1_bias_).relu_();  // 1, 2: [1, c0, h, w]
            a = conv3x3(a, conv3_weight_).relu_();                              // 3, 4
            for (int i = 0; i < 3; ++i) {
                a = mem_block(a, stage0_[i], state.memory(5 + i), mem_rows(a));  // 5, 6, 7
            }
            // 8 Upsample, 9 TGrow (stride 1), 10 Conv: the 1x1 conv runs before the nearest upsample (they
            // commute: the same dot product per pixel) and the upsample + 3x3 conv runs as its four phases.
            a = upsample2_conv3x3(tgrow_step(a, tgrow9_weight_, 0), conv10_phases_);  // [1, c1, 2h, 2w]
            for (int i = 0; i < 3; ++i) {
                a = mem_block(a, stage1_[i], state.memory(11 + i), mem_rows(a));  // 11, 12, 13
            }
            TORCH_INTERNAL_ASSERT(a.size(1) == c1 && tgrow15_weight_.size(0) == 2 * c1);
            for (int64_t k1 = 0; k1 < 2; ++k1) {
                // 14 Upsample, 15 TGrow (stride 2: step k1), 16 Conv
                at::Tensor b =
                    upsample2_conv3x3(tgrow_step(a, tgrow15_weight_, k1), conv16_phases_);  // [1, c2, 4h, 4w]
                for (int i = 0; i < 3; ++i) {
                    b = mem_block(b, stage2_[i], state.memory(17 + i), mem_rows(b));  // 17, 18, 19
                }
                TORCH_INTERNAL_ASSERT(b.size(1) == c2 && tgrow21_weight_.size(0) == 2 * c2);
                for (int64_t k2 = 0; k2 < 2; ++k2, ++frame) {
                    // 20 Upsample, 21 TGrow (stride 2: step k2), 22-26: stateless from here on, so the frames
                    // the first call trims are not computed at all.
                    if (frame >= 0) {
                        output_stage(b, k2, out.select(2, frame), band_rows);
                    }
                }
            }
        }
        if (after_step) {
            after_step();
        }
    }
    state.started = true;
    return out;
}

}  // namespace flashvsr::models
