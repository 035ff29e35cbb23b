#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

#include "error_test_util.h"
#include "models/lq_proj.h"
#include "random_weights.h"

using namespace flashvsr::models;
using flashvsr::models::testing::random_weights;
using flashvsr::testing::error_of;

namespace {

constexpr int64_t kH = 32, kW = 48;  // token grid 2 x 3

at::Tensor random_video(int64_t frames) {
    return at::rand({1, 3, frames, kH, kW}, at::TensorOptions().dtype(at::kDouble)) * 2.0 - 1.0;
}

/// Streams `video` (8n+1 frames) over the official clip schedule [0:1], [1:5], [5:9], ... and returns
/// the tokens of every latent frame, stacked: [T, h·w, D].
at::Tensor stream_all(const LQProj& proj, const at::Tensor& video, CacheOrder order) {
    LQProjState state;
    EXPECT_FALSE(proj.stream(video.narrow(2, 0, 1), state, order).defined());
    std::vector<at::Tensor> out;
    for (int64_t f = 1; f + 4 <= video.size(2); f += 4) {
        out.push_back(proj.stream(video.narrow(2, f, 4), state, order).squeeze(0));
    }
    return at::stack(out);
}

/// The test's own reference: one causal conv pipeline over the whole video with 3 copies of f0 in front
/// (replicate front pad 2, stride 2), dropping the first conv2 output. Returns [T, h·w, D].
at::Tensor causal_reference(const TensorMap& m, const at::Tensor& video) {
    const at::Tensor s = at::cat({video.narrow(2, 0, 1).expand({-1, -1, 3, -1, -1}), video}, 2);
    // Per-frame unshuffle with torch's own pixel_unshuffle (channel c·256 + dy·16 + dx).
    at::Tensor x = at::pixel_unshuffle(s.squeeze(0).transpose(0, 1), 16).transpose(0, 1).unsqueeze(0);
    auto conv_norm = [&](const at::Tensor& in, const std::string& conv, const std::string& norm) {
        const at::Tensor p = at::pad(in, {1, 1, 1, 1, 2, 0}, "replicate");
        const at::Tensor y = at::conv3d(p, m.at(conv + ".weight"), m.at(conv + ".bias"), {2, 1, 1});
        const at::Tensor n = at::linalg_vector_norm(y, 2, {1}, true).clamp_min(1e-12);
        return at::silu(y / n * std::sqrt(static_cast<double>(y.size(1))) * m.at(norm + ".gamma"));
    };
    const at::Tensor y = conv_norm(x, "conv1", "norm1");
    const at::Tensor z = conv_norm(y, "conv2", "norm2");
    std::vector<at::Tensor> out;
    for (int64_t j = 1; j < z.size(2); ++j) {  // z_0 (the all-f0 window) is never produced by the stream
        const at::Tensor tok = z.select(2, j).flatten(2).transpose(1, 2);  // [1,C2,h,w] -> [1,h·w,C2]
        out.push_back(
            at::linear(tok, m.at("linear_layers.0.weight"), m.at("linear_layers.0.bias")).squeeze(0));
    }
    return at::stack(out);
}

/// Tiny-preset random weights, drawn once per test binary.
const TensorMap& tiny_weights() {
    static const TensorMap m = [] {
        at::manual_seed(7);
        return random_weights(LQProj::manifest(LQProjConfig::preset("tiny")));
    }();
    return m;
}

struct TinyProj {
    const TensorMap& weights = tiny_weights();
    LQProj proj{weights, "lq.ckpt", LoadOptions{at::kDouble}};
};

}  // namespace

TEST(LqProj, ManifestOfPresets) {
    const auto full = LQProj::manifest(LQProjConfig::preset("full"));
    EXPECT_EQ(full.size(), 8u);
    EXPECT_EQ(manifest_numel(full), 287845888);
    const std::vector<std::string> keys{"conv1.weight",           "conv1.bias",          "norm1.gamma",
                                        "conv2.weight",           "conv2.bias",          "norm2.gamma",
                                        "linear_layers.0.weight", "linear_layers.0.bias"};
    for (size_t i = 0; i < keys.size(); ++i) {
        EXPECT_EQ(full[i].name, keys[i]);
    }
    EXPECT_EQ(full[3].shape, (std::vector<int64_t>{3072, 2048, 4, 3, 3}));
    EXPECT_EQ(full[2].shape, (std::vector<int64_t>{2048, 1, 1, 1}));
    EXPECT_EQ(manifest_numel(LQProj::manifest(LQProjConfig::preset("small"))),
              256 * 768 * 36 + 256 + 256 + 384 * 256 * 36 + 384 + 384 + 512 * 384 + 512);
    EXPECT_THROW(LQProjConfig::preset("huge"), flashvsr::InputError);
}

TEST(LqProj, ConfigFromShapes) {
    TinyProj t;
    const auto c = t.proj.config();
    EXPECT_EQ(c.in_channels, 768);
    EXPECT_EQ(c.conv1_channels, 64);
    EXPECT_EQ(c.conv2_channels, 96);
    EXPECT_EQ(c.out_dim, 256);
}

TEST(LqProj, StrictLoadingNamesFileAndKey) {
    TinyProj t;
    TensorMap m = t.weights;
    m.erase("norm2.gamma");
    EXPECT_EQ(error_of([&] { LQProj p(m, "lq.ckpt", LoadOptions{at::kDouble}); }),
              "lq.ckpt: missing key 'norm2.gamma' (expected shape [96, 1, 1, 1])");
    m = t.weights;
    m["linear_layers.1.weight"] = at::zeros({256, 96});
    EXPECT_EQ(error_of([&] { LQProj p(m, "lq.ckpt"); }),
              "lq.ckpt: unexpected key 'linear_layers.1.weight' with shape [256, 96]");
    m = t.weights;
    m["conv2.bias"] = at::zeros({95});
    EXPECT_EQ(error_of([&] { LQProj p(m, "lq.ckpt"); }),
              "lq.ckpt: key 'conv2.bias' has shape [95], expected [96]");
    m = t.weights;
    m["conv1.weight"] = at::zeros({64, 96, 4, 3, 3});
    EXPECT_EQ(error_of([&] { LQProj p(m, "lq.ckpt"); }),
              "lq.ckpt: key 'conv1.weight' has 96 input channels, expected 768 (3 x 16 x 16)");
    m.erase("conv1.weight");
    EXPECT_EQ(error_of([&] { LQProj p(m, "lq.ckpt"); }), "lq.ckpt: missing key 'conv1.weight'");
}

TEST(LqProj, PixelUnshuffleOneHot) {
    // Invariant 9: pixel (c, 16·y + dy, 16·x + dx) lands at channel c·256 + dy·16 + dx, token (y, x).
    const int64_t cases[][4] = {{0, 0, 0, 0}, {2, 21, 41, 1}, {1, 15, 16, 2}, {2, 31, 47, 0}};
    for (const auto& k : cases) {
        const int64_t c = k[0], py = k[1], px = k[2], f = k[3];
        at::Tensor v = at::zeros({1, 3, 3, kH, kW}, at::kDouble);
        v[0][c][f][py][px] = 1.0;
        const at::Tensor u = lq_pixel_unshuffle(v);
        ASSERT_EQ(u.sizes(), (at::IntArrayRef{1, 768, 3, 2, 3}));
        EXPECT_EQ(u.sum().item<double>(), 1.0);
        EXPECT_EQ(u[0][c * 256 + (py % 16) * 16 + px % 16][f][py / 16][px / 16].item<double>(), 1.0);
    }
}

TEST(LqProj, StreamEqualsOneCausalConv) {
    // Invariant 1 (UseThenUpdate): streamed tokens == one causal conv over [f0,f0,f0] ++ video. In float64
    // up to rounding: ATen may pick another convolution algorithm for a 4-frame clip than for the whole
    // video (1.6e-15 on this machine's CPU, 0 on another); a cache mistake is O(1).
    TinyProj t;
    at::manual_seed(11);
    const at::Tensor video = random_video(25);
    const at::Tensor streamed = stream_all(t.proj, video, CacheOrder::UseThenUpdate);
    const at::Tensor ref = causal_reference(t.weights, video);
    ASSERT_EQ(streamed.sizes(), (at::IntArrayRef{6, 6, 256}));
    ASSERT_EQ(ref.sizes(), streamed.sizes());
    EXPECT_LE((streamed - ref).abs().max().item<double>(), 1e-12);
    EXPECT_GT(streamed.abs().max().item<double>(), 1e-3);  // not trivially zero
}

TEST(LqProj, CacheOrderLocality) {
    // Invariant 2: perturbing frames 4j+1..4j+4 changes latent j only (AssignThenUse) or latents j..j+2
    // (UseThenUpdate); every other latent is bit-identical.
    TinyProj t;
    at::manual_seed(12);
    const at::Tensor video = random_video(25);
    const int64_t j = 1;
    at::Tensor bumped = video.clone();
    bumped.narrow(2, 4 * j + 1, 4).add_(0.25 * at::randn({1, 3, 4, kH, kW}, at::kDouble));
    at::Tensor base[2];
    for (const auto order : {CacheOrder::AssignThenUse, CacheOrder::UseThenUpdate}) {
        const at::Tensor out = stream_all(t.proj, video, order);
        const at::Tensor d = (out - stream_all(t.proj, bumped, order)).abs();
        const int64_t last_changed = order == CacheOrder::AssignThenUse ? j : j + 2;
        for (int64_t l = 0; l < d.size(0); ++l) {
            const double m = d[l].max().item<double>();
            if (l >= j && l <= last_changed) {
                EXPECT_GT(m, 1e-6) << "latent " << l;
            } else {
                EXPECT_EQ(m, 0.0) << "latent " << l;
            }
        }
        base[order == CacheOrder::UseThenUpdate] = out;
    }
    // Same weights, different order: different tokens (guards against "fixing" v1.0 or breaking v1.1).
    EXPECT_GT((base[0] - base[1]).abs().max().item<double>(), 1e-3);
}

TEST(LqProj, StateIsFlatAndIndependent) {
    TinyProj t;
    at::manual_seed(13);
    const at::Tensor a = random_video(17), b = random_video(17);
    LQProjState sa, sb;
    EXPECT_EQ(sa.bytes(), 0);
    t.proj.stream(a.narrow(2, 0, 1), sa);
    t.proj.stream(b.narrow(2, 0, 1), sb);
    const int64_t expected = (768 + 64) * 2 * 2 * 3 * 8;  // conv1 + conv2 caches, 2 frames of 2x3, fp64
    EXPECT_EQ(sa.bytes(), expected);
    std::vector<at::Tensor> ta;
    for (int64_t f = 1; f + 4 <= 17; f += 4) {  // interleave two streams on one network
        ta.push_back(t.proj.stream(a.narrow(2, f, 4), sa));
        t.proj.stream(b.narrow(2, f, 4), sb);
        EXPECT_EQ(sa.bytes(), expected);
        EXPECT_EQ(sa.clip_index, 1 + (f + 3) / 4);
    }
    EXPECT_EQ(
        (at::cat(ta).squeeze() - stream_all(t.proj, a, CacheOrder::UseThenUpdate)).abs().max().item<double>(),
        0.0);
    sa.reset();
    EXPECT_EQ(sa.bytes(), 0);
    EXPECT_EQ(sa.clip_index, 0);
}

TEST(LqProj, RejectsBadClips) {
    TinyProj t;
    LQProjState s;
    const at::Tensor v = random_video(9);
    EXPECT_THROW(t.proj.stream(v.narrow(2, 0, 4), s), c10::Error);  // priming takes one frame
    t.proj.stream(v.narrow(2, 0, 1), s);
    EXPECT_THROW(t.proj.stream(v.narrow(2, 1, 3), s), c10::Error);                 // later clips take 4
    EXPECT_THROW(t.proj.stream(v.narrow(2, 1, 4).to(at::kFloat), s), c10::Error);  // dtype mismatch
    EXPECT_THROW(t.proj.stream(at::zeros({1, 3, 4, 48, 48}, at::kDouble), s), c10::Error);  // size change
    EXPECT_THROW(t.proj.stream(at::zeros({1, 3, 4, 40, 48}, at::kDouble), s), c10::Error);  // not /16
}

TEST(LqProj, WinogradFormEqualsTheDirectConvolution) {
    // On the CPU in float32/float64 conv1/conv2 run in F(2x2, 3x3) form and the tokens equal the direct
    // convolution's to rounding; the transformed weights are made per call, so both hold the checkpoint's
    // bytes and no more.
    for (const at::ScalarType dt : {at::kDouble, at::kFloat}) {
        const TensorMap& w = tiny_weights();
        LQProj wino{w, "lq.ckpt", LoadOptions{dt}};
        LQProj direct{w, "lq.ckpt", LoadOptions{dt, at::kCPU, /*winograd=*/false}};
        at::manual_seed(12);
        const at::Tensor video = random_video(17).to(dt);
        const at::Tensor a = stream_all(wino, video, CacheOrder::UseThenUpdate);
        const at::Tensor b = stream_all(direct, video, CacheOrder::UseThenUpdate);
        const double rel = ((a - b).abs().max() / b.abs().max()).item<double>();
        EXPECT_LE(rel, dt == at::kDouble ? 1e-13 : 1e-5) << c10::toString(dt);
        EXPECT_GT(b.abs().max().item<double>(), 1e-3);
        const int64_t elem = dt == at::kDouble ? 8 : 4;
        int64_t numel = 0;
        for (const auto& [key, t] : w) {
            numel += t.numel();
        }
        EXPECT_EQ(wino.weight_bytes(), numel * elem) << c10::toString(dt);
        EXPECT_EQ(direct.weight_bytes(), numel * elem) << c10::toString(dt);
    }
}
