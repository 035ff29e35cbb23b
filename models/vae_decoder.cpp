#include "models/vae_decoder.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "models/common/rms_norm.h"

namespace flashvsr::models {
namespace {

using Shape = std::vector<int64_t>;

// Channels of one decoder level: ResidualBlock k of level i maps in (k == 0) or out (k > 0) to out.
struct LevelPlan {
    int64_t in = 0;
    int64_t out = 0;
};

std::vector<LevelPlan> decoder_levels(const VAEDecoderConfig& cfg) {
    TORCH_CHECK(
        !cfg.dim_mult.empty() && cfg.temporal_upsample.size() + 1 == cfg.dim_mult.size(),
        "vae_decoder: config needs dim_mult of L >= 1 entries and L - 1 temporal_upsample flags, got ",
        cfg.dim_mult.size(), " and ", cfg.temporal_upsample.size());
    TORCH_CHECK(cfg.dim > 0 && cfg.z_dim > 0 && cfg.num_res_blocks >= 0, "vae_decoder: invalid config");
    const size_t n = cfg.dim_mult.size();
    std::vector<LevelPlan> levels(n);
    for (size_t i = 0; i < n; ++i) {
        levels[i].out = cfg.dim * cfg.dim_mult[n - 1 - i];
        // Level 0 reads conv1's width; later levels read the halved output of the previous Resample.
        levels[i].in = i == 0 ? cfg.dim * cfg.dim_mult.back() : levels[i - 1].out / 2;
        TORCH_CHECK(i + 1 == n || levels[i].out % 2 == 0, "vae_decoder: Resample width must be even");
    }
    return levels;
}

void add_conv(ParamTable& t, const std::string& name, at::Tensor* w, at::Tensor* b, Shape shape) {
    const int64_t out = shape[0];
    t.add(name + ".weight", w, std::move(shape));
    t.add(name + ".bias", b, {out});
}

// Causal conv with temporal kernel 3: output frame t sees input frames t-2..t, frames before the stream
// start being zeros; `spatial_pad` zeros on each side of H and W. `cache` holds the last <= 2 input
// frames of the previous step: used first, then replaced by the last 2 frames of [cache, x] (upstream keeps
// a single frame when x is the very first frame; `zero_fill` stores [0, x] instead, as upsample3d does).
at::Tensor causal_conv3(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                        int64_t spatial_pad, at::Tensor& cache, bool zero_fill) {
    const int64_t t = x.size(2);
    at::Tensor next = x.narrow(2, std::max<int64_t>(t - 2, 0), std::min<int64_t>(t, 2));
    if (next.size(2) == 2) {
        next = next.clone();  // own storage: do not keep the whole step's activation alive
    } else if (cache.defined()) {
        next = at::cat({cache.narrow(2, cache.size(2) - 1, 1), next}, 2);
    } else {
        next = zero_fill ? at::cat({at::zeros_like(next), next}, 2) : next.clone();
    }
    const int64_t have = cache.defined() ? cache.size(2) : 0;
    at::Tensor in = have > 0 ? at::cat({cache, x}, 2) : x;
    if (have < 2) {
        in = at::constant_pad_nd(in, {0, 0, 0, 0, 2 - have, 0});  // zero frames in front
    }
    at::Tensor y = at::conv3d(in, weight, bias, {1, 1, 1}, {0, spatial_pad, spatial_pad});
    cache = std::move(next);
    return y;
}

}  // namespace

// ---- config --------------------------------------------------------------------------------------

VAEDecoderConfig VAEDecoderConfig::from_tensors(const TensorMap& tensors, const std::string& source) {
    const Shape conv1 = require_shape(tensors, "decoder.conv1.weight", source);  // [top, z_dim, 3, 3, 3]
    if (conv1.size() != 5) {
        throw ModelError(source + ": decoder.conv1.weight is not a 3-D convolution weight");
    }
    VAEDecoderConfig cfg;
    cfg.z_dim = conv1[1];
    cfg.temporal_upsample.clear();
    // Walk decoder.upsamples.{i}: runs of ResidualBlocks (residual.6) closed by a Resample (resample.1).
    std::vector<int64_t> level_out;
    std::vector<int64_t> blocks;
    int64_t run = 0;
    for (int64_t i = 0;; ++i) {
        const std::string p = "decoder.upsamples." + std::to_string(i) + ".";
        if (tensors.count(p + "residual.6.weight")) {
            const int64_t out = require_shape(tensors, p + "residual.6.weight", source)[0];
            if (run == 0) {
                level_out.push_back(out);
            } else if (out != level_out.back()) {
                throw ModelError(source + ": " + p + "residual.6.weight has " + std::to_string(out) +
                                 " output channels, its level has " + std::to_string(level_out.back()));
            }
            ++run;
        } else if (tensors.count(p + "resample.1.weight")) {
            if (run == 0) {
                throw ModelError(source + ": " + p + "resample.1.weight: a Resample without ResidualBlocks");
            }
            cfg.temporal_upsample.push_back(tensors.count(p + "time_conv.weight") > 0);
            blocks.push_back(run);
            run = 0;
        } else {
            break;
        }
    }
    if (run == 0) {
        throw ModelError(source + ": decoder.upsamples must end with ResidualBlocks (no level found)");
    }
    blocks.push_back(run);
    for (int64_t b : blocks) {
        if (b != blocks[0]) {
            throw ModelError(source + ": decoder levels have different ResidualBlock counts");
        }
    }
    cfg.num_res_blocks = blocks[0] - 1;
    cfg.dim = level_out.back();
    const size_t n = level_out.size();
    cfg.dim_mult.assign(n, 1);
    for (size_t j = 0; j < n; ++j) {
        const int64_t out = level_out[n - 1 - j];
        if (out % cfg.dim != 0) {
            throw ModelError(source + ": decoder level widths are not multiples of the head width " +
                             std::to_string(cfg.dim));
        }
        cfg.dim_mult[j] = out / cfg.dim;
    }
    if (conv1[0] != cfg.dim * cfg.dim_mult.back()) {
        throw ModelError(source + ": decoder.conv1.weight has " + std::to_string(conv1[0]) +
                         " output channels, level 0 has " + std::to_string(level_out[0]));
    }
    return cfg;
}

VAEDecoderConfig VAEDecoderConfig::preset(const std::string& size) {
    VAEDecoderConfig cfg;  // Wan2.1 layout; only the width changes
    if (size == "tiny") {
        cfg.dim = 16;
    } else if (size == "small") {
        cfg.dim = 32;
    } else if (size == "full") {
        cfg.dim = 96;
    } else {
        throw InputError("vae_decoder: unknown preset '" + size + "' (tiny, small, full)");
    }
    return cfg;
}

int64_t VAEDecoderConfig::spatial_factor() const { return int64_t{1} << temporal_upsample.size(); }

int64_t VAEDecoderConfig::temporal_factor() const {
    return int64_t{1} << std::count(temporal_upsample.begin(), temporal_upsample.end(), true);
}

// ---- state ---------------------------------------------------------------------------------------

void VAEDecodeState::reset() { *this = VAEDecodeState{}; }

void VAEDecodeState::cold_start() {
    reset();
    mid_stream = true;
}

void VAEDecodeState::for_each_tensor(const std::function<void(at::Tensor&)>& f) {
    f(conv1);
    for (VAEResidualCache* r : {&middle0, &middle2}) {
        f(r->residual2);
        f(r->residual6);
    }
    for (VAEUpsampleCache& u : upsamples) {
        f(u.residual.residual2);
        f(u.residual.residual6);
        f(u.time_conv);
    }
    f(head2);
}

int64_t VAEDecodeState::bytes() const {
    auto nb = [](const at::Tensor& t) { return t.defined() ? static_cast<int64_t>(t.nbytes()) : int64_t{0}; };
    int64_t n = nb(conv1) + nb(middle0.residual2) + nb(middle0.residual6) + nb(middle2.residual2) +
                nb(middle2.residual6) + nb(head2);
    for (const auto& u : upsamples) {
        n += nb(u.residual.residual2) + nb(u.residual.residual6) + nb(u.time_conv);
    }
    return n;
}

// ---- parameters ----------------------------------------------------------------------------------

namespace {

template <class Res>
void add_residual(ParamTable& t, const std::string& p, int64_t in, int64_t out, Res& r) {
    t.add(p + "residual.0.gamma", &r.gamma0, {in, 1, 1, 1});
    add_conv(t, p + "residual.2", &r.conv2.weight, &r.conv2.bias, {out, in, 3, 3, 3});
    t.add(p + "residual.3.gamma", &r.gamma3, {out, 1, 1, 1});
    add_conv(t, p + "residual.6", &r.conv6.weight, &r.conv6.bias, {out, out, 3, 3, 3});
    if (in != out) {
        add_conv(t, p + "shortcut", &r.shortcut.weight, &r.shortcut.bias, {out, in, 1, 1, 1});
    }
}

template <class Attn>
void add_attention(ParamTable& t, const std::string& p, int64_t c, Attn& a) {
    t.add(p + "norm.gamma", &a.norm_gamma, {c, 1, 1});
    add_conv(t, p + "to_qkv", &a.to_qkv.weight, &a.to_qkv.bias, {3 * c, c, 1, 1});
    add_conv(t, p + "proj", &a.proj.weight, &a.proj.bias, {c, c, 1, 1});
}

// Throwaway member layout for keys no network keeps (the encoder of file_manifest).
struct SinkConv {
    at::Tensor weight, bias;
};
struct SinkRes {
    at::Tensor gamma0, gamma3;
    SinkConv conv2, conv6, shortcut;
};
struct SinkAttn {
    at::Tensor norm_gamma;
    SinkConv to_qkv, proj;
};

}  // namespace

void VAEDecoder::register_params(const Config& cfg, Weights& w, ParamTable& t) {
    const std::vector<LevelPlan> levels = decoder_levels(cfg);
    const int64_t top = levels[0].in;
    add_conv(t, "conv2", &w.conv2.weight, &w.conv2.bias, {cfg.z_dim, cfg.z_dim, 1, 1, 1});
    add_conv(t, "decoder.conv1", &w.conv1.weight, &w.conv1.bias, {top, cfg.z_dim, 3, 3, 3});
    add_residual(t, "decoder.middle.0.", top, top, w.middle0);
    add_attention(t, "decoder.middle.1.", top, w.middle1);
    add_residual(t, "decoder.middle.2.", top, top, w.middle2);
    // The vector is sized before any slot is registered: the table keeps pointers into it.
    w.upsamples.assign(levels.size() * (cfg.num_res_blocks + 1) + cfg.temporal_upsample.size(), Upsample{});
    size_t k = 0;
    for (size_t i = 0; i < levels.size(); ++i) {
        int64_t in = levels[i].in;
        for (int64_t r = 0; r <= cfg.num_res_blocks; ++r, ++k) {
            add_residual(t, "decoder.upsamples." + std::to_string(k) + ".", in, levels[i].out,
                         w.upsamples[k].res);
            in = levels[i].out;
        }
        if (i + 1 < levels.size()) {
            const int64_t c = levels[i].out;
            Upsample& u = w.upsamples[k];
            const std::string p = "decoder.upsamples." + std::to_string(k) + ".";
            u.is_resample = true;
            u.temporal = cfg.temporal_upsample[i];
            add_conv(t, p + "resample.1", &u.resample1.weight, &u.resample1.bias, {c / 2, c, 3, 3});
            if (u.temporal) {
                add_conv(t, p + "time_conv", &u.time_conv.weight, &u.time_conv.bias, {2 * c, c, 3, 1, 1});
            }
            ++k;
        }
    }
    const int64_t head = levels.back().out;
    t.add("decoder.head.0.gamma", &w.head_gamma, {head, 1, 1, 1});
    add_conv(t, "decoder.head.2", &w.head2.weight, &w.head2.bias, {3, head, 3, 3, 3});
}

std::vector<ParamSpec> VAEDecoder::manifest(const Config& cfg) {
    Weights w;  // slots stay undefined: nothing is allocated
    ParamTable t;
    register_params(cfg, w, t);
    return t.specs();
}

std::vector<ParamSpec> VAEDecoder::file_manifest(const Config& cfg) {
    // Encoder3d mirrors the decoder: widths dim * [1, dim_mult...], num_res_blocks blocks per level, a
    // downsample Resample (time_conv when temporal) after every level but the last, head to 2 * z_dim.
    (void)decoder_levels(cfg);  // validates cfg
    const size_t n = cfg.dim_mult.size();
    std::vector<int64_t> dims{cfg.dim};
    for (int64_t m : cfg.dim_mult) {
        dims.push_back(cfg.dim * m);
    }
    std::vector<std::unique_ptr<SinkRes>> res;
    std::vector<std::unique_ptr<SinkConv>> convs;
    auto conv = [&]() -> SinkConv& { return *convs.emplace_back(std::make_unique<SinkConv>()); };
    auto block = [&]() -> SinkRes& { return *res.emplace_back(std::make_unique<SinkRes>()); };
    ParamTable t;
    SinkConv& c0 = conv();
    add_conv(t, "encoder.conv1", &c0.weight, &c0.bias, {dims[0], 3, 3, 3, 3});
    size_t k = 0;
    for (size_t i = 0; i < n; ++i) {
        int64_t in = dims[i];
        const int64_t out = dims[i + 1];
        for (int64_t r = 0; r < cfg.num_res_blocks; ++r, ++k) {
            add_residual(t, "encoder.downsamples." + std::to_string(k) + ".", in, out, block());
            in = out;
        }
        if (i + 1 < n) {
            const std::string p = "encoder.downsamples." + std::to_string(k) + ".";
            SinkConv& rs = conv();
            add_conv(t, p + "resample.1", &rs.weight, &rs.bias, {out, out, 3, 3});
            if (cfg.temporal_upsample[n - 2 - i]) {  // temporal_downsample = reversed temporal_upsample
                SinkConv& tc = conv();
                add_conv(t, p + "time_conv", &tc.weight, &tc.bias, {out, out, 3, 1, 1});
            }
            ++k;
        }
    }
    const int64_t top = dims.back();
    add_residual(t, "encoder.middle.0.", top, top, block());
    SinkAttn attn;
    add_attention(t, "encoder.middle.1.", top, attn);
    add_residual(t, "encoder.middle.2.", top, top, block());
    at::Tensor head_gamma;
    t.add("encoder.head.0.gamma", &head_gamma, {top, 1, 1, 1});
    SinkConv& head = conv();
    add_conv(t, "encoder.head.2", &head.weight, &head.bias, {2 * cfg.z_dim, top, 3, 3, 3});
    SinkConv& q = conv();
    add_conv(t, "conv1", &q.weight, &q.bias, {2 * cfg.z_dim, 2 * cfg.z_dim, 1, 1, 1});
    std::vector<ParamSpec> specs = t.specs();
    const std::vector<ParamSpec> decoder = manifest(cfg);
    specs.insert(specs.end(), decoder.begin(), decoder.end());
    return specs;
}

const std::array<float, 16>& VAEDecoder::latent_mean() {
    static const std::array<float, 16> mean{-0.7571f, -0.7089f, -0.9113f, 0.1075f,  -0.1745f, 0.9653f,
                                            -0.1517f, 1.5508f,  0.4134f,  -0.0715f, 0.5517f,  -0.3632f,
                                            -0.1922f, -0.9497f, 0.2503f,  -0.2921f};
    return mean;
}

const std::array<float, 16>& VAEDecoder::latent_std() {
    static const std::array<float, 16> std{2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f,
                                           2.6052f, 2.0743f, 3.2687f, 2.1526f, 2.8652f, 1.5579f,
                                           1.6382f, 1.1253f, 2.8251f, 1.9160f};
    return std;
}

// ---- network -------------------------------------------------------------------------------------

VAEDecoder::VAEDecoder(const TensorMap& tensors, const std::string& source, const LoadOptions& opts)
    : cfg_(Config::from_tensors(tensors, source)) {
    if (cfg_.z_dim != static_cast<int64_t>(latent_mean().size())) {
        throw ModelError(source + ": decoder.conv1.weight reads " + std::to_string(cfg_.z_dim) +
                         " latent channels; the Wan2.1 latent statistics have 16");
    }
    ParamTable table;
    register_params(cfg_, w_, table);
    auto encoder_side = [](const std::string& key) {
        return key.rfind("encoder.", 0) == 0 || key.rfind("conv1.", 0) == 0;
    };
    table.load(tensors, source, opts, "", encoder_side);
    auto vec = [&](const std::array<float, 16>& a) {
        return at::from_blob(const_cast<float*>(a.data()), {16}, at::kFloat).clone();
    };
    // Upstream keeps scale = [mean, 1/std] in float32 and computes z / (1/std) + mean in the latent dtype.
    mean_ = vec(latent_mean()).to(opts.device, opts.dtype);
    inv_std_ = vec(latent_std()).reciprocal().to(opts.device, opts.dtype);
}

void VAEDecoder::to(at::Device device) {
    // Every tensor of Weights (register_params cannot be reused: it re-creates the upsample slots).
    auto move = [&](at::Tensor& t) {
        if (t.defined() && t.device() != device) {
            t = t.to(device);
        }
    };
    auto conv = [&](Conv& c) {
        move(c.weight);
        move(c.bias);
    };
    auto residual = [&](ResidualBlock& r) {
        move(r.gamma0);
        conv(r.conv2);
        move(r.gamma3);
        conv(r.conv6);
        conv(r.shortcut);
    };
    conv(w_.conv2);
    conv(w_.conv1);
    residual(w_.middle0);
    move(w_.middle1.norm_gamma);
    conv(w_.middle1.to_qkv);
    conv(w_.middle1.proj);
    residual(w_.middle2);
    for (Upsample& u : w_.upsamples) {
        residual(u.res);
        conv(u.resample1);
        conv(u.time_conv);
    }
    move(w_.head_gamma);
    conv(w_.head2);
    move(mean_);
    move(inv_std_);
}

namespace {

template <class Res>
at::Tensor residual_block(const at::Tensor& x, const Res& b, VAEResidualCache& c) {
    const at::Tensor h = b.shortcut.weight.defined() ? at::conv3d(x, b.shortcut.weight, b.shortcut.bias) : x;
    at::Tensor y = at::silu(channel_rms_norm(x, b.gamma0));
    y = causal_conv3(y, b.conv2.weight, b.conv2.bias, 1, c.residual2, false);
    y = at::silu(channel_rms_norm(y, b.gamma3));  // residual.5 (Dropout 0) is the identity
    y = causal_conv3(y, b.conv6.weight, b.conv6.bias, 1, c.residual6, false);
    return y + h;
}

// Single-head self-attention over the h*w positions of each frame separately.
template <class Attn>
at::Tensor attention_block(const at::Tensor& x, const Attn& a) {
    const int64_t b = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
    at::Tensor y = x.permute({0, 2, 1, 3, 4}).reshape({b * t, c, h, w});  // [B,C,T,H,W] -> [BT,C,H,W]
    y = channel_rms_norm(y, a.norm_gamma);
    at::Tensor qkv = at::conv2d(y, a.to_qkv.weight, a.to_qkv.bias)
                         .reshape({b * t, 1, 3 * c, h * w})  // [BT,3C,H,W] -> [BT,1,3C,HW]
                         .permute({0, 1, 3, 2})              // [BT,1,3C,HW] -> [BT,1,HW,3C]
                         .contiguous();
    const auto qkv3 = qkv.chunk(3, -1);                                          // q, k, v: [BT,1,HW,C] each
    at::Tensor o = at::scaled_dot_product_attention(qkv3[0], qkv3[1], qkv3[2]);  // scale 1/sqrt(C)
    o = o.squeeze(1).permute({0, 2, 1}).reshape({b * t, c, h, w});  // [BT,1,HW,C] -> [BT,C,HW] -> [BT,C,H,W]
    o = at::conv2d(o, a.proj.weight, a.proj.bias);
    o = o.reshape({b, t, c, h, w}).permute({0, 2, 1, 3, 4});  // [BT,C,H,W] -> [B,C,T,H,W]
    return o + x;
}

}  // namespace

at::Tensor VAEDecoder::decode_step(const at::Tensor& x_in, VAEDecodeState& st) const {
    at::Tensor x = causal_conv3(x_in, w_.conv1.weight, w_.conv1.bias, 1, st.conv1, false);
    x = residual_block(x, w_.middle0, st.middle0);
    x = attention_block(x, w_.middle1);
    x = residual_block(x, w_.middle2, st.middle2);
    for (size_t i = 0; i < w_.upsamples.size(); ++i) {
        const Upsample& u = w_.upsamples[i];
        VAEUpsampleCache& c = st.upsamples[i];
        if (!u.is_resample) {
            x = residual_block(x, u.res, c.residual);
            continue;
        }
        const int64_t b = x.size(0), ch = x.size(1);
        if (u.temporal && !c.time_conv_started) {
            c.time_conv_started = true;  // first step of the stream: no time_conv, the frame stays single
        } else if (u.temporal) {
            const int64_t t = x.size(2), h = x.size(3), w = x.size(4);
            x = causal_conv3(x, u.time_conv.weight, u.time_conv.bias, 0, c.time_conv, true);  // [B,2C,T,H,W]
            // Channel half 0 becomes frame 2i, half 1 frame 2i+1.
            x = x.reshape({b, 2, ch, t, h, w})       // [B,2C,T,H,W] -> [B,2,C,T,H,W]
                    .permute({0, 2, 3, 1, 4, 5})     // -> [B,C,T,2,H,W]
                    .reshape({b, ch, 2 * t, h, w});  // -> [B,C,2T,H,W]
        }
        const int64_t t = x.size(2), h = x.size(3), w = x.size(4);
        at::Tensor y = x.permute({0, 2, 1, 3, 4}).reshape({b * t, ch, h, w});     // [B,C,T,H,W] -> [BT,C,H,W]
        y = at::_upsample_nearest_exact2d(y, {2 * h, 2 * w}, 2.0, 2.0);           // resample.0
        y = at::conv2d(y, u.resample1.weight, u.resample1.bias, {1, 1}, {1, 1});  // [BT,C/2,2H,2W]
        x = y.reshape({b, t, ch / 2, 2 * h, 2 * w}).permute({0, 2, 1, 3, 4});     // -> [B,C/2,T,2H,2W]
    }
    x = at::silu(channel_rms_norm(x, w_.head_gamma));
    return causal_conv3(x, w_.head2.weight, w_.head2.bias, 1, st.head2, false);
}

at::Tensor VAEDecoder::decode(const at::Tensor& z, VAEDecodeState& st) const {
    TORCH_CHECK(z.dim() == 5 && z.size(1) == cfg_.z_dim, "vae_decoder: expected z [B, ", cfg_.z_dim,
                ", T, h, w], got ", z.sizes());
    const at::Tensor& w0 = w_.conv2.weight;
    TORCH_CHECK(z.scalar_type() == w0.scalar_type() && z.device() == w0.device(), "vae_decoder: z is ",
                z.scalar_type(), " on ", z.device(), ", the weights are ", w0.scalar_type(), " on ",
                w0.device());
    if (st.upsamples.size() != w_.upsamples.size()) {
        TORCH_CHECK(!st.started, "vae_decoder: the state was started by another decoder; reset() it");
        st.upsamples.assign(w_.upsamples.size(), VAEUpsampleCache{});
        for (VAEUpsampleCache& c : st.upsamples) {
            c.time_conv_started = st.mid_stream;  // read by upsample3d entries only
        }
    }
    const int64_t b = z.size(0), t = z.size(2), h = z.size(3), w = z.size(4);
    if (st.started) {
        const at::Tensor& c = st.conv1;
        TORCH_CHECK(c.size(0) == b && c.size(3) == h && c.size(4) == w &&
                        c.scalar_type() == z.scalar_type() && c.device() == z.device(),
                    "vae_decoder: the stream was started with latents [", c.size(0), ", ", cfg_.z_dim,
                    ", T, ", c.size(3), ", ", c.size(4), "] ", c.scalar_type(), ", got ", z.sizes(), " ",
                    z.scalar_type(), "; reset() the state first");
    }
    const int64_t f = cfg_.spatial_factor();
    if (t == 0) {
        return at::empty({b, 3, 0, h * f, w * f}, z.options());
    }
    const at::Tensor inv_std = inv_std_.view({1, -1, 1, 1, 1});
    const at::Tensor mean = mean_.view({1, -1, 1, 1, 1});
    std::vector<at::Tensor> frames;
    frames.reserve(t);
    for (int64_t i = 0; i < t; ++i) {
        // Frame by frame from the start (also conv2), so any chunking runs the very same kernels.
        at::Tensor x = z.narrow(2, i, 1) / inv_std + mean;  // un-normalise: z * std + mean
        x = at::conv3d(x, w_.conv2.weight, w_.conv2.bias);  // conv2, 1x1x1, uncached
        frames.push_back(decode_step(x, st));               // [B,3,1|tf,H,W]
        st.started = true;
    }
    return at::cat(frames, 2).clamp_(-1.0, 1.0);  // [B,3,n,h*f,w*f]
}

}  // namespace flashvsr::models
