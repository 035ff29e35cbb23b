// The fused row loops of the DiT's token-wise operations against their ATen compositions (models/dit_rows.h).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

#include "csrc/core/cpu_isa.h"
#include "models/dit_rows.h"

using namespace flashvsr::models;

namespace {

/// max |a - b| / max |b|.
double rel_err(const at::Tensor& a, const at::Tensor& b) {
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>() /
           b.to(at::kDouble).abs().max().item<double>();
}

/// Tolerance of a fused loop against the composition: the same operations, other summation orders.
double tolerance(at::ScalarType t) { return t == at::kDouble ? 1e-13 : 2e-6; }

struct RowCase {
    int64_t rows, channels, heads;
};

// Channels 1536 / 12 heads is the release; 80 / 5 heads of 16 the smallest AVX-512 rope; 48 / 6 heads of 8
// an AVX2 one; 36 / 3 heads of 12 and 52 (no heads) take the scalar loops.
const std::vector<RowCase> kCases = {{300, 1536, 12}, {129, 80, 5}, {40, 48, 6}, {33, 36, 3}, {17, 52, 1}};

/// The fused forms this CPU runs (float64 always takes the scalar loops).
std::vector<RowOpsImpl> fused_forms(at::ScalarType dt) {
    std::vector<RowOpsImpl> out = {RowOpsImpl::kAuto, RowOpsImpl::kScalar};
    if (dt == at::kFloat && flashvsr::core::cpu_supports(flashvsr::core::CpuIsa::kAvx2)) {
        out.push_back(RowOpsImpl::kAvx2);
    }
    return out;
}

}  // namespace

TEST(DiTRows, NormModulateMatchesComposition) {
    for (const auto dt : {at::kFloat, at::kDouble}) {
        for (const RowCase& c : kCases) {
            at::manual_seed(11);
            const auto o = at::TensorOptions().dtype(dt);
            const auto x = at::randn({1, c.rows, c.channels}, o) * 3 + 0.5;
            const auto shift = at::randn({1, 1, c.channels}, o) * 0.2;
            const auto scale = at::randn({1, 1, c.channels}, o) * 0.2;
            const auto ref = norm_modulate(x, shift, scale, 1e-6, RowOpsImpl::kReference);
            for (const RowOpsImpl form : fused_forms(dt)) {
                const auto got = norm_modulate(x, shift, scale, 1e-6, form);
                ASSERT_EQ(got.sizes(), ref.sizes());
                EXPECT_LT(rel_err(got, ref), tolerance(dt))
                    << at::toString(dt) << " C=" << c.channels << " form " << static_cast<int>(form);
            }
            // A LayerNorm indeed: with shift = scale = 0 every row has mean 0 and variance 1 (up to eps).
            const auto z =
                norm_modulate(x, at::zeros_like(shift), at::zeros_like(scale), 1e-6).to(at::kDouble);
            EXPECT_LT(z.mean(-1).abs().max().item<double>(), 1e-5);
            EXPECT_LT((z.var(-1, false) - 1).abs().max().item<double>(), 1e-4);
        }
    }
}

TEST(DiTRows, RmsNormInPlaceMatchesComposition) {
    for (const auto dt : {at::kFloat, at::kDouble}) {
        for (const RowCase& c : kCases) {
            at::manual_seed(12);
            const auto o = at::TensorOptions().dtype(dt);
            const auto x = at::randn({1, c.rows, c.channels}, o) * 2;
            const auto w = at::rand({c.channels}, o) + 0.5;
            const auto ref = rms_norm(x, w, 1e-6, RowOpsImpl::kReference);
            for (const RowOpsImpl form : fused_forms(dt)) {
                auto y = x.clone();
                rms_norm_(y, w, 1e-6, form);
                EXPECT_LT(rel_err(y, ref), tolerance(dt))
                    << at::toString(dt) << " C=" << c.channels << " form " << static_cast<int>(form);
            }
            EXPECT_LT(rel_err(rms_norm(x, w, 1e-6), ref), tolerance(dt));
            EXPECT_GT(rel_err(x, ref), 0.1);  // the input itself is untouched and differs
        }
    }
}

TEST(DiTRows, RmsNormRopeInPlaceMatchesComposition) {
    for (const auto dt : {at::kFloat, at::kDouble}) {
        for (const RowCase& c : kCases) {
            if (c.heads == 1) {
                continue;  // 52 channels: no head split of even size that rope_split accepts
            }
            at::manual_seed(13);
            const auto o = at::TensorOptions().dtype(dt);
            const int64_t hd = c.channels / c.heads;
            const auto x = at::randn({1, c.rows, c.channels}, o);
            const auto w = at::rand({c.channels}, o) + 0.5;
            RopeTables t;
            const auto ang = at::rand({c.rows, hd / 2}, at::kDouble) * 20;
            t.cos = at::cos(ang).to(dt);
            t.sin = at::sin(ang).to(dt);
            const auto ref = apply_rope(rms_norm(x, w, 1e-6, RowOpsImpl::kReference), t, c.heads);
            for (const RowOpsImpl form : fused_forms(dt)) {
                auto y = x.clone();
                rms_norm_rope_(y, w, 1e-6, t, c.heads, form);
                EXPECT_LT(rel_err(y, ref), tolerance(dt))
                    << at::toString(dt) << " C=" << c.channels << " form " << static_cast<int>(form);
            }
            auto y = x.clone();
            rms_norm_rope_(y, w, 1e-6, t, c.heads);
            auto r = x.clone();
            rms_norm_rope_(r, w, 1e-6, t, c.heads, RowOpsImpl::kReference);
            EXPECT_EQ(rel_err(r, ref), 0.0);
            // The rotation keeps every pair's norm: only the RMSNorm changes the row's length.
            auto n = x.clone();
            rms_norm_(n, w, 1e-6);
            EXPECT_LT(rel_err(y.pow(2).sum(-1), n.pow(2).sum(-1)), tolerance(dt) * 4);
        }
    }
}

TEST(DiTRows, OtherDtypesTakeTheCompositionExactly) {
    at::manual_seed(14);
    const auto o = at::TensorOptions().dtype(at::kBFloat16);
    const auto x = at::randn({1, 64, 96}, o);
    const auto shift = at::randn({1, 1, 96}, o), scale = at::randn({1, 1, 96}, o);
    EXPECT_TRUE(at::equal(norm_modulate(x, shift, scale, 1e-6),
                          norm_modulate(x, shift, scale, 1e-6, RowOpsImpl::kReference)));
    const auto w = at::rand({96}, o);
    auto y = x.clone();
    rms_norm_(y, w, 1e-6);
    EXPECT_TRUE(at::equal(y, rms_norm(x, w, 1e-6, RowOpsImpl::kReference)));
    // A strided (non-contiguous) float32 input also takes the composition.
    const auto xs = at::randn({1, 96, 64}).transpose(1, 2);
    const auto sf = at::randn({1, 1, 96}) * 0.1;
    EXPECT_TRUE(
        at::equal(norm_modulate(xs, sf, sf, 1e-6), norm_modulate(xs, sf, sf, 1e-6, RowOpsImpl::kReference)));
}

TEST(DiTRows, RopeTablesOfTheWrongSizeAreRejected) {
    auto x = at::randn({1, 10, 48});
    RopeTables t{at::ones({9, 8}), at::zeros({9, 8})};
    EXPECT_THROW(rms_norm_rope_(x, at::ones({48}), 1e-6, t, 3), c10::Error);
}
