#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <map>
#include <vector>

#include "counting_allocator.h"
#include "error_test_util.h"
#include "models/tc_decoder.h"
#include "random_weights.h"

using namespace flashvsr::models;
using flashvsr::models::testing::random_weights;
using flashvsr::testing::error_of;

namespace {

constexpr int64_t kH = 32, kW = 48;  // output frames; latents are 4 x 6
const auto kF64 = at::TensorOptions().dtype(at::kDouble);

/// Tiny-preset random weights, drawn once per test binary.
const TensorMap& tiny_weights() {
    static const TensorMap m = [] {
        at::manual_seed(21);
        return random_weights(TCDecoder::manifest(TCDecoderConfig::preset("tiny")));
    }();
    return m;
}

struct TinyDecoder {
    const TensorMap& weights = tiny_weights();
    TCDecoder dec{weights, "tc.ckpt", LoadOptions{at::kDouble}};
};

at::Tensor random_latents(int64_t t) { return at::randn({1, 16, t, kH / 8, kW / 8}, kF64); }
at::Tensor random_lq(int64_t f) { return at::rand({1, 3, f, kH, kW}, kF64) * 2.0 - 1.0; }

/// The test's own reference: upstream's sequential (depth-first) mode, one time step at a time through
/// the layer list, a TGrow(2) turning one step into two consecutive ones. Frames are [1, C, H, W].
struct SequentialReference {
    const TensorMap& m;
    std::map<int, at::Tensor> mem;
    std::vector<at::Tensor> frames;

    at::Tensor w(int i, const std::string& rest = ".weight") const {
        return m.at("decoder." + std::to_string(i) + rest);
    }
    at::Tensor conv(const at::Tensor& x, int i, bool bias) const {
        return at::conv2d(x, w(i), bias ? w(i, ".bias") : at::Tensor(), 1, 1);
    }

    void run(int first, at::Tensor x) {
        for (int i = first; i <= 26; ++i) {
            if (i == 0) {
                x = 3.0 * at::tanh(x / 3.0);
            } else if (i == 1 || i == 26) {
                x = conv(x, i, true);
            } else if (i == 3 || i == 10 || i == 16 || i == 22 || i == 24) {
                x = conv(x, i, false);
            } else if (i == 2 || i == 4 || i == 23 || i == 25) {
                x = at::relu(x);
            } else if (i == 8 || i == 14 || i == 20) {
                x = x.repeat_interleave(2, 2).repeat_interleave(2, 3);
            } else if (i == 9) {
                x = at::conv2d(x, w(9, ".conv.weight"));
            } else if (i == 15 || i == 21) {
                const int64_t c = x.size(1);
                const at::Tensor y = at::conv2d(x, w(i, ".conv.weight"));
                run(i + 1, y.narrow(1, 0, c));
                run(i + 1, y.narrow(1, c, c));
                return;
            } else {  // MemBlock 5-7, 11-13, 17-19
                const at::Tensor past = mem.count(i) ? mem[i] : at::zeros_like(x);
                mem[i] = x;
                const std::string p = "decoder." + std::to_string(i) + ".conv.";
                at::Tensor y = at::relu(
                    at::conv2d(at::cat({x, past}, 1), m.at(p + "0.weight"), m.at(p + "0.bias"), 1, 1));
                y = at::relu(at::conv2d(y, m.at(p + "2.weight"), m.at(p + "2.bias"), 1, 1));
                y = at::conv2d(y, m.at(p + "4.weight"), m.at(p + "4.bias"), 1, 1);
                x = at::relu(y + x);
            }
        }
        frames.push_back(x);
    }

    /// Decodes all latents (first call semantics: trims 3 frames) -> [1, 3, 4T-3, H, W].
    at::Tensor decode(const at::Tensor& latents, const at::Tensor& cond) {
        const at::Tensor c = tc_condition(cond);
        for (int64_t t = 0; t < latents.size(2); ++t) {
            run(0, at::cat({c.select(1, t), latents.select(2, t)}, 1));
        }
        return at::cat(frames, 0).narrow(0, 3, frames.size() - 3).transpose(0, 1).unsqueeze(0);
    }
};

}  // namespace

TEST(TcDecoder, ManifestOfPresets) {
    const auto full = TCDecoder::manifest(TCDecoderConfig::preset("full"));
    EXPECT_EQ(full.size(), 66u);
    EXPECT_EQ(manifest_numel(full), 45338371);
    EXPECT_EQ(full.front().name, "decoder.1.weight");
    EXPECT_EQ(full.front().shape, (std::vector<int64_t>{512, 784, 3, 3}));
    EXPECT_EQ(full[3].name, "decoder.5.conv.0.weight");
    EXPECT_EQ(full[3].shape, (std::vector<int64_t>{512, 1024, 3, 3}));
    EXPECT_EQ(full.back().name, "decoder.26.bias");
    for (const auto& s : full) {
        if (s.name == "decoder.15.conv.weight") {
            EXPECT_EQ(s.shape, (std::vector<int64_t>{512, 256, 1, 1}));
        }
        if (s.name == "decoder.9.conv.weight") {
            EXPECT_EQ(s.shape, (std::vector<int64_t>{512, 512, 1, 1}));
        }
    }
    EXPECT_EQ(TCDecoder::manifest(TCDecoderConfig::preset("small")).size(), 66u);
    EXPECT_THROW(TCDecoderConfig::preset("base"), flashvsr::InputError);
}

TEST(TcDecoder, ConfigFromShapesAndStrictLoading) {
    TinyDecoder t;
    EXPECT_EQ(t.dec.config().channels, (std::array<int64_t, 4>{64, 32, 16, 16}));
    EXPECT_EQ(t.dec.config().latent_channels, 16);
    EXPECT_EQ(t.dec.config().cond_channels, 768);
    TensorMap m = t.weights;
    m.erase("decoder.18.conv.2.bias");
    EXPECT_EQ(error_of([&] { TCDecoder d(m, "tc.ckpt"); }),
              "tc.ckpt: missing key 'decoder.18.conv.2.bias' (expected shape [16])");
    m = t.weights;
    m["decoder.15.conv.weight"] = at::zeros({32, 32, 1, 1});
    EXPECT_EQ(error_of([&] { TCDecoder d(m, "tc.ckpt"); }),
              "tc.ckpt: key 'decoder.15.conv.weight' has shape [32, 32, 1, 1], expected [64, 32, 1, 1]");
    m = t.weights;
    m["decoder.23.weight"] = at::zeros({1});
    EXPECT_EQ(error_of([&] { TCDecoder d(m, "tc.ckpt"); }),
              "tc.ckpt: unexpected key 'decoder.23.weight' with shape [1]");
    m = t.weights;
    m.erase("decoder.16.weight");
    EXPECT_EQ(error_of([&] { TCDecoder d(m, "tc.ckpt"); }), "tc.ckpt: missing key 'decoder.16.weight'");
}

TEST(TcDecoder, ConditionUnshuffleOneHot) {
    // Invariant 9: LQ pixel (c, frame 4t + dt, 8y + dy, 8x + dx) -> step t, channel c·256 + dt·64 + dy·8 +
    // dx.
    const int64_t cases[][4] = {
        {0, 0, 0, 0}, {1, 7, 10, 23}, {2, 5, 31, 47}, {2, 2, 9, 8}};  // c, frame, py, px
    for (const auto& k : cases) {
        const int64_t c = k[0], f = k[1], py = k[2], px = k[3];
        at::Tensor v = at::zeros({1, 3, 8, kH, kW}, kF64);
        v[0][c][f][py][px] = 1.0;
        const at::Tensor u = tc_condition(v);
        ASSERT_EQ(u.sizes(), (at::IntArrayRef{1, 2, 768, 4, 6}));
        EXPECT_EQ(u.sum().item<double>(), 1.0);
        EXPECT_EQ(u[0][f / 4][c * 256 + (f % 4) * 64 + (py % 8) * 8 + px % 8][py / 8][px / 8].item<double>(),
                  1.0);
    }
    // Fc = 5: three copies of frame 0 are prepended, so frame 0 fills all of group 0 (dt = 0..3).
    at::Tensor v = at::zeros({1, 3, 5, kH, kW}, kF64);
    v[0][1][0][3][4] = 1.0;
    const at::Tensor u = tc_condition(v);
    ASSERT_EQ(u.size(1), 2);
    EXPECT_EQ(u.sum().item<double>(), 4.0);
    for (int64_t dt = 0; dt < 4; ++dt) {
        EXPECT_EQ(u[0][0][256 + dt * 64 + 3 * 8 + 4][0][0].item<double>(), 1.0);
    }
}

TEST(TcDecoder, ChunkedEqualsOneCallAndSequential) {
    // Invariant 3: chunks (6, 2, 2) with cond [0,21), [21,29), [29,37) and carried memory == one call
    // with cond [0, 4T-3), bit-exact; both == the sequential reference within 1e-9.
    TinyDecoder t;
    at::manual_seed(22);
    const int64_t T = 10;
    const at::Tensor z = random_latents(T), lq = random_lq(4 * T - 3);

    TCDecoderState whole;
    const at::Tensor one = t.dec.decode(z, lq, whole);
    ASSERT_EQ(one.sizes(), (at::IntArrayRef{1, 3, 4 * T - 3, kH, kW}));

    TCDecoderState s;
    std::vector<at::Tensor> parts;
    parts.push_back(t.dec.decode(z.narrow(2, 0, 6), lq.narrow(2, 0, 21), s));
    EXPECT_EQ(parts.back().size(2), 21);  // 24 - 3 trimmed
    const int64_t bytes = s.bytes();
    EXPECT_EQ(bytes, (64 * 4 * 6 + 32 * 8 * 12 + 16 * 16 * 24) * 3 * 8);
    for (int64_t k = 0; k < 2; ++k) {
        parts.push_back(t.dec.decode(z.narrow(2, 6 + 2 * k, 2), lq.narrow(2, 21 + 8 * k, 8), s));
        EXPECT_EQ(parts.back().size(2), 8);  // no trim after the first call
        EXPECT_EQ(s.bytes(), bytes);         // flat memory
    }
    const at::Tensor chunked = at::cat(parts, 2);
    EXPECT_EQ((chunked - one).abs().max().item<double>(), 0.0);

    SequentialReference ref{t.weights};
    const at::Tensor seq = ref.decode(z, lq);
    ASSERT_EQ(seq.sizes(), one.sizes());
    EXPECT_LT((seq - one).abs().max().item<double>(), 1e-9);
    EXPECT_GT(one.std().item<double>(), 1e-3);  // not a constant output
}

TEST(TcDecoder, StateResetAndIndependence) {
    TinyDecoder t;
    at::manual_seed(23);
    const at::Tensor za = random_latents(3), la = random_lq(9);
    const at::Tensor zb = random_latents(3), lb = random_lq(9);
    TCDecoderState s;
    const at::Tensor a1 = t.dec.decode(za, la, s);
    EXPECT_TRUE(s.started);
    t.dec.decode(zb, lb, s);  // a second call continues the stream
    s.reset();
    EXPECT_EQ(s.bytes(), 0);
    EXPECT_FALSE(s.started);
    const at::Tensor a2 = t.dec.decode(za, la, s);
    EXPECT_EQ((a1 - a2).abs().max().item<double>(), 0.0);
    EXPECT_EQ(a2.size(2), 9);
    EXPECT_TRUE(s.memory(19).is_same(s.mem_19));
    EXPECT_EQ(s.mem_19.sizes(), (at::IntArrayRef{1, 16, 16, 24}));
    EXPECT_THROW(s.memory(8), c10::Error);
    // Different memory gives a different continuation (the memory is actually used).
    TCDecoderState s2;
    t.dec.decode(zb, lb, s2);
    const at::Tensor c1 = t.dec.decode(za.narrow(2, 0, 1), la.narrow(2, 0, 4), s);
    const at::Tensor c2 = t.dec.decode(za.narrow(2, 0, 1), la.narrow(2, 0, 4), s2);
    EXPECT_GT((c1 - c2).abs().max().item<double>(), 1e-6);
}

TEST(TcDecoder, RejectsBadInputs) {
    TinyDecoder t;
    TCDecoderState s;
    const at::Tensor z = random_latents(2);
    EXPECT_THROW(t.dec.decode(z, random_lq(9), s), c10::Error);                        // ceil(9/4) = 3 != 2
    EXPECT_THROW(t.dec.decode(z, at::zeros({1, 3, 8, 40, 48}, kF64), s), c10::Error);  // wrong size
    EXPECT_THROW(t.dec.decode(z.to(at::kFloat), random_lq(8).to(at::kFloat), s), c10::Error);   // dtype
    EXPECT_THROW(t.dec.decode(at::zeros({1, 8, 2, 4, 6}, kF64), random_lq(8), s), c10::Error);  // channels
    EXPECT_FALSE(s.started);
    t.dec.decode(z, random_lq(5), s);
    EXPECT_THROW(t.dec.decode(at::zeros({1, 16, 1, 8, 8}, kF64), at::zeros({1, 3, 4, 64, 64}, kF64), s),
                 c10::Error);  // size change without reset
}

TEST(TcDecoder, UpsampleConvPhasesEqualUpsampleThenConv) {
    // The fast path (four 2x2 phase convs on the low-resolution input) against its oracle, nearest x2
    // upsample then a 3x3 conv with zero padding: float64 to rounding, float32 within a few ulps of the
    // result scale; odd sizes and a batch of 2 included, and the output is channels-last.
    at::manual_seed(24);
    for (const auto dtype : {at::kDouble, at::kFloat}) {
        for (const auto& [h, w] : std::vector<std::pair<int64_t, int64_t>>{{4, 6}, {5, 3}, {1, 1}}) {
            const auto o = at::TensorOptions().dtype(dtype);
            const at::Tensor x = at::randn({2, 8, h, w}, o), wt = at::randn({5, 8, 3, 3}, o);
            const at::Tensor ref = at::conv2d(at::upsample_nearest2d(x, {2 * h, 2 * w}), wt, {}, 1, 1);
            const at::Tensor got = upsample2_conv3x3(x, upsample2_conv3x3_weights(wt));
            ASSERT_EQ(got.sizes(), ref.sizes());
            EXPECT_TRUE(got.is_contiguous(at::MemoryFormat::ChannelsLast));
            const double err = ((got - ref).abs().max() / ref.abs().max()).item<double>();
            EXPECT_LT(err, dtype == at::kDouble ? 1e-14 : 1e-6) << h << "x" << w;
        }
    }
    // A wrong tap is visible: the phases really carry the 3x3 kernel (not, e.g., only its centre).
    const at::Tensor x = at::randn({1, 4, 3, 3}, kF64), wt = at::randn({2, 4, 3, 3}, kF64);
    at::Tensor bad = wt.clone();
    bad[0][0][0][0] += 1e-3;
    const at::Tensor ref = at::conv2d(at::upsample_nearest2d(x, {6, 6}), wt, {}, 1, 1);
    EXPECT_GT((upsample2_conv3x3(x, upsample2_conv3x3_weights(bad)) - ref).abs().max().item<double>(), 1e-5);
    EXPECT_THROW(upsample2_conv3x3(x, upsample2_conv3x3_weights(at::randn({2, 3, 3, 3}, kF64))), c10::Error);
}

TEST(TcDecoder, AfterStepRunsOncePerLatentStepAndChangesNothing) {
    // The hook (where the tile runner trims the host heap) runs after each latent step, over a stream of
    // two calls (the first trims 3 frames); the frames are the same.
    TinyDecoder t;
    at::manual_seed(29);
    const at::Tensor z0 = random_latents(3), lq0 = random_lq(9), z1 = random_latents(2), lq1 = random_lq(8);
    TCDecoderState a, b;
    int64_t calls = 0;
    const auto hook = [&] { ++calls; };
    const at::Tensor a0 = t.dec.decode(z0, lq0, a), b0 = t.dec.decode(z0, lq0, b, 0, hook);
    EXPECT_EQ(calls, 3);
    const at::Tensor a1 = t.dec.decode(z1, lq1, a), b1 = t.dec.decode(z1, lq1, b, 0, hook);
    EXPECT_EQ(calls, 3 + 2);
    EXPECT_TRUE(at::equal(a0, b0));
    EXPECT_TRUE(at::equal(a1, b1));
    EXPECT_EQ(b1.size(2), 8);
}

TEST(TcDecoder, OutputLayersAndMemBlocksInBandsOfRowsEqualTheWholeFrame) {
    // Layers 20-26 and the MemBlocks run in bands of rows (no whole full-resolution activation, no whole
    // 2C-channel concatenation): every band height, odd or even, and ones that leave a short last band (the
    // MemBlocks' heights here are 4, 8 and 16 rows), gives the frames of one whole-frame band; float64, so
    // the only difference allowed is the rounding of a convolution computed over fewer rows.
    TinyDecoder t;
    at::manual_seed(23);
    const at::Tensor z = random_latents(3), lq = random_lq(9);
    TCDecoderState whole_state;
    const at::Tensor whole = t.dec.decode(z, lq, whole_state, /*band_rows=*/kH);
    ASSERT_EQ(whole.sizes(), (at::IntArrayRef{1, 3, 9, kH, kW}));
    for (const int64_t rows : {2, 3, 4, 6, 7, 10, 30}) {
        TCDecoderState s;
        const at::Tensor banded = t.dec.decode(z, lq, s, rows);
        EXPECT_LT((banded - whole).abs().max().item<double>(), 1e-12) << rows << " rows per band";
    }
    // The automatic height: about kOutputBandBytes per activation, even, at least 2; the tiny frames fit in
    // one band, so the default path above is the whole frame.
    const TCDecoder small32{random_weights(TCDecoder::manifest(TCDecoderConfig::preset("small"))), "tc.ckpt",
                            LoadOptions{at::kFloat}};
    EXPECT_EQ(small32.output_band_rows(896), 292);    // 32 MiB / (32 channels x 896 px x 4 B) = 292.6
    EXPECT_EQ(small32.output_band_rows(1 << 20), 2);  // never below 2
    EXPECT_GE(t.dec.output_band_rows(kW), kH);        // tiny preset: one band
    // MemBlocks: whole up to kMemBlockWholeBytes per activation, else bands of about kMemBlockBandBytes. The
    // full model at 896x512: 1/4 resolution [128, 256, 448] (59 MB) in bands of 36 rows (229 KB per row),
    // 1/2 resolution [256, 128, 224] (29 MB) whole.
    const auto meta = [](std::vector<int64_t> s) {
        return at::empty(s, at::TensorOptions().device(at::kMeta));
    };
    EXPECT_EQ(TCDecoder::mem_block_band_rows(meta({1, 128, 256, 448})), 36);
    EXPECT_EQ(TCDecoder::mem_block_band_rows(meta({1, 256, 128, 224})), 128);
    EXPECT_EQ(TCDecoder::mem_block_band_rows(meta({1, 512, 64, 112})), 64);
    EXPECT_EQ(TCDecoder::mem_block_band_rows(meta({1, 128, 4096, 1 << 16})), 1);  // never below 1
}

TEST(TcDecoder, MemBlocksInBandsHoldLessThanOneWholeActivationMore) {
    // Allocator bytes of one latent step: whole, a 1/4-resolution MemBlock holds its input, the 2C-channel
    // concatenation and the first conv's output (4 activations with the previous stage's output); in bands
    // of 8 rows only x, its output and a band of each. The output layers have one channel here, so the
    // MemBlocks make the peak.
    TCDecoderConfig cfg;
    cfg.channels = {8, 8, 32, 1};
    const TCDecoder dec{random_weights(TCDecoder::manifest(cfg)), "tc.ckpt", LoadOptions{at::kFloat}};
    at::manual_seed(31);
    const at::Tensor z = at::randn({1, 16, 1, 16, 32}), lq = at::rand({1, 3, 4, 128, 256}) * 2 - 1;
    const size_t activation = size_t{32} * 64 * 128 * sizeof(float);  // one 1/4-resolution activation
    std::vector<at::Tensor> out;
    std::vector<size_t> peak;
    for (const int64_t rows : {int64_t{128}, int64_t{8}}) {
        TCDecoderState st;
        st.cold_start();  // nothing trimmed
        const flashvsr::testing::CountingCpuAllocator bytes;
        const size_t before = bytes.live();
        out.push_back(dec.decode(z, lq, st, rows));
        peak.push_back(bytes.peak() - before);
    }
    EXPECT_TRUE(at::allclose(out[0], out[1], 1e-5, 1e-6));
    EXPECT_LT(peak[1] + activation, peak[0]) << "whole " << peak[0] << " B, in bands " << peak[1] << " B";
}
