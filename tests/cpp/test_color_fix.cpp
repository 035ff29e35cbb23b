// MODEL.md §13 items 14 (AdaIN) and the wavelet colour fix.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "csrc/engine/color_fix.h"

using namespace flashvsr::engine;

TEST(ColorFix, AdainMatchesStatistics) {
    at::manual_seed(0);
    const at::Tensor dec = (at::rand({1, 3, 5, 16, 24}, at::kDouble) * 0.5 - 0.1);
    const at::Tensor lq = (at::rand({1, 3, 5, 16, 24}, at::kDouble) * 0.6 - 0.3);
    // Unclamped check: compute in double by hand from the documented formula and compare means/stds.
    const at::Tensor out = color_fix(dec, lq, ColorFix::kAdain);
    EXPECT_EQ(out.scalar_type(), at::kFloat);
    const at::Tensor mean_out = out.to(at::kDouble).mean({3, 4});
    const at::Tensor mean_lq = lq.mean({3, 4});
    EXPECT_LT((mean_out - mean_lq).abs().max().item<double>(), 1e-5);  // values stay inside [-1,1] here
    const at::Tensor var_dec = dec.var({3, 4}, /*unbiased=*/false);
    const at::Tensor expected_std =
        (lq.var({3, 4}, false) + 1e-5).sqrt() * (var_dec / (var_dec + 1e-5)).sqrt();
    EXPECT_LT((out.to(at::kDouble).var({3, 4}, false).sqrt() - expected_std).abs().max().item<double>(),
              1e-5);
}

TEST(ColorFix, ClampsAndIsIndependentOfChunking) {
    at::manual_seed(1);
    const at::Tensor dec = at::randn({1, 3, 8, 12, 12}) * 3;
    const at::Tensor lq = at::randn({1, 3, 8, 12, 12});
    for (const auto m : {ColorFix::kAdain, ColorFix::kWavelet, ColorFix::kNone}) {
        const at::Tensor whole = color_fix(dec, lq, m);
        EXPECT_LE(whole.abs().max().item<float>(), 1.0f);
        const at::Tensor parts = at::cat({color_fix(dec.slice(2, 0, 3), lq.slice(2, 0, 3), m),
                                          color_fix(dec.slice(2, 3, 8), lq.slice(2, 3, 8), m)},
                                         2);
        EXPECT_TRUE(at::equal(whole, parts)) << "method " << static_cast<int>(m);
    }
}

TEST(ColorFix, WaveletTakesLowFrequenciesFromLq) {
    at::manual_seed(2);
    const at::Tensor lq = at::rand({1, 3, 1, 40, 40}) * 0.5;
    // The decomposition is exact: high + low == input.
    EXPECT_LT((color_fix(lq, lq, ColorFix::kWavelet) - lq).abs().max().item<float>(), 1e-6);
    // A constant frame has no high frequencies (the blur of a replicate-padded constant is that constant),
    // so the result is the LQ frame's low-pass: the same mean, much smoother.
    const at::Tensor out = color_fix(at::full({1, 3, 1, 40, 40}, 0.25), lq, ColorFix::kWavelet);
    EXPECT_NEAR(out.mean().item<float>(), lq.mean().item<float>(), 0.01);
    auto tv = [](const at::Tensor& x) {
        return (x.diff(1, 3).abs().mean() + x.diff(1, 4).abs().mean()).item<float>();
    };
    EXPECT_LT(tv(out), 0.2f * tv(lq));
    // A constant decoded frame with a constant LQ frame gives exactly the LQ value.
    EXPECT_LT(
        (color_fix(at::full({1, 3, 1, 16, 16}, 0.9), at::full({1, 3, 1, 16, 16}, -0.3), ColorFix::kWavelet) +
         0.3)
            .abs()
            .max()
            .item<float>(),
        1e-6);
}

TEST(ColorFix, ErrorsAreErrors) {
    EXPECT_THROW(parse_color_fix("wavelets"), flashvsr::InputError);
    EXPECT_EQ(parse_color_fix("adain"), ColorFix::kAdain);
    EXPECT_THROW(color_fix(at::zeros({1, 3, 2, 8, 8}), at::zeros({1, 3, 3, 8, 8}), ColorFix::kAdain),
                 c10::Error);
}

// The chunk's layout flips once (decoder input, channels-last from there on): the colour fix takes the
// blended canvas [n, Hp, Wp, 3] as a [1, 3, n, Hp, Wp] view and returns the same frame-major channels-last
// memory, so the stream's output [n, H, W, 3] needs no transposing copy (the channel-first LQ frames are only
// read).
TEST(ColorFix, KeepsTheCanvasLayout) {
    at::manual_seed(4);
    const at::Tensor canvas = at::rand({5, 16, 24, 3}) * 2 - 1;            // [n, Hp, Wp, 3]
    const at::Tensor decoded = canvas.permute({3, 0, 1, 2}).unsqueeze(0);  // -> [1, 3, n, Hp, Wp] view
    const at::Tensor lq = at::rand({1, 3, 5, 16, 24}) * 2 - 1;             // channel-first, as prepared
    for (const ColorFix m : {ColorFix::kAdain, ColorFix::kWavelet, ColorFix::kNone}) {
        const at::Tensor out = color_fix(decoded, lq, m);
        EXPECT_TRUE(out[0].permute({1, 2, 3, 0}).is_contiguous())
            << static_cast<int>(m) << ": " << out.strides();
        // and the values do not depend on the layout (up to the convolutions' summation order)
        const double d = (out - color_fix(decoded.contiguous(), lq, m)).abs().max().item<double>();
        EXPECT_LE(d, 1e-6) << static_cast<int>(m);
    }
}
