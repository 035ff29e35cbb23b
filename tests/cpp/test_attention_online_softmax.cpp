// The CPU attention twin's fused online-softmax step (kernels/block_sparse_attention/online_softmax.h): the
// fast exp against std::exp, and the AVX-512 step against the scalar one and a float64 reference, including
// the rows that have kept nothing yet.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "csrc/core/cpu_isa.h"
#include "kernels/block_sparse_attention/online_softmax.h"

namespace {

namespace sr = flashvsr::kernels::softmax_rows;

constexpr float kInf = std::numeric_limits<float>::infinity();

/// Distance in units in the last place between two non-negative floats (denormals and 0 included).
int64_t ulps(float a, float b) {
    return std::abs(static_cast<int64_t>(std::bit_cast<int32_t>(a)) - std::bit_cast<int32_t>(b));
}

TEST(AttentionOnlineSoftmax, FastExpWithinTwoUlpOfStdExp) {
    std::vector<float> x;
    for (int i = 0; i <= 400000; ++i) {  // [-110, 0] in steps of 2.75e-4: normal and denormal results
        x.push_back(-110.0f * static_cast<float>(i) / 400000.0f);
    }
    for (float v : {0.0f, -0.0f, -1e-30f, -0.34657359f, -0.6931472f, -87.33655f, -103.27893f, -103.97208f,
                    -104.0f, -119.9f, -120.0f, -1e4f, -1e30f, -std::numeric_limits<float>::max(), -kInf}) {
        x.push_back(v);
    }
    std::vector<float> y(x.size()), y_scalar(x.size());
    for (const sr::Isa isa : flashvsr::core::supported_cpu_isas()) {
        // Odd lengths exercise the masked tail of the vector loop.
        sr::exp_nonpositive(x.data(), y.data(), static_cast<int64_t>(x.size()), isa);
        sr::exp_nonpositive(x.data(), y_scalar.data(), 7, sr::Isa::kScalar);
        for (size_t i = 0; i < x.size(); ++i) {
            const float ref = static_cast<float>(std::exp(static_cast<double>(x[i])));  // correctly rounded
            ASSERT_LE(ulps(y[i], ref), 2) << "x = " << x[i] << " isa " << static_cast<int>(isa);
        }
        EXPECT_EQ(std::bit_cast<uint32_t>(y.back()), 0u);  // exp(-inf) is exactly +0
        sr::exp_nonpositive(x.data(), y.data(), 1, isa);
        EXPECT_EQ(y[0], 1.0f);  // exp(0) is exactly 1
        for (size_t i = 0; i < 7; ++i) {
            EXPECT_EQ(y_scalar[i], std::exp(x[i]));
        }
        const float big[3] = {-104.0f, -1e30f, -kInf};
        float out[3] = {1, 1, 1};
        sr::exp_nonpositive(big, out, 3, isa);
        EXPECT_EQ(out[0] + out[1] + out[2], 0.0f);  // below the smallest denormal's half: exactly 0
    }
}

/// The arguments of one step.
struct State {
    std::vector<float> s, m, l, o;
};

TEST(AttentionOnlineSoftmax, StepMatchesScalarAndFloat64) {
    const int64_t rows = 5, w = 3 * 128, ld_s = w + 16, hd = 40, ld_o = 48;  // hd: a masked vector tail
    std::mt19937 gen(7);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    State init;
    init.s.resize(static_cast<size_t>(rows * ld_s));
    for (float& v : init.s) {
        v = nd(gen);
    }
    init.o.resize(static_cast<size_t>(rows * ld_o));
    for (float& v : init.o) {
        v = nd(gen);
    }
    // Rows 0-1: nothing kept yet (m = -inf, l = 0, o = 0); row 2 has a running max above the piece's, row 3
    // below it, row 4 equal to it (no rescale when every block is kept).
    init.m = {-kInf, -kInf, 20.0f, -20.0f, 0.0f};
    init.l = {0.0f, 0.0f, 2.5f, 7.0f, 1.0f};
    for (int64_t d = 0; d < ld_o; ++d) {
        init.o[static_cast<size_t>(0 * ld_o + d)] = 0.0f;
        init.o[static_cast<size_t>(1 * ld_o + d)] = 0.0f;
    }
    float row4_max = -kInf;
    for (int64_t j = 0; j < w; ++j) {
        row4_max = std::max(row4_max, init.s[static_cast<size_t>(4 * ld_s + j)]);
    }
    init.m[4] = row4_max;
    const uint8_t some[3] = {1, 0, 1}, none[3] = {0, 0, 0};
    for (const sr::Isa isa : flashvsr::core::supported_cpu_isas()) {
        for (const uint8_t* keep : {static_cast<const uint8_t*>(nullptr), some, none}) {
            SCOPED_TRACE("isa " + std::to_string(static_cast<int>(isa)));
            State a = init, b = init;
            sr::online_softmax_step<float>(a.s.data(), rows, w, ld_s, keep, a.m.data(), a.l.data(),
                                           a.o.data(), ld_o, hd, isa);
            sr::online_softmax_step<float>(b.s.data(), rows, w, ld_s, keep, b.m.data(), b.l.data(),
                                           b.o.data(), ld_o, hd, sr::Isa::kScalar);
            std::vector<double> s(init.s.begin(), init.s.end()), m(init.m.begin(), init.m.end()),
                l(init.l.begin(), init.l.end()), o(init.o.begin(), init.o.end());
            sr::online_softmax_step<double>(s.data(), rows, w, ld_s, keep, m.data(), l.data(), o.data(), ld_o,
                                            hd, sr::Isa::kScalar);
            for (int64_t r = 0; r < rows; ++r) {
                const auto i = static_cast<size_t>(r);
                EXPECT_EQ(a.m[i], b.m[i]) << r;  // maxima are exact
                EXPECT_EQ(static_cast<double>(a.m[i]), m[i]) << r;
                EXPECT_NEAR(a.l[i], l[i], 1e-5 * l[i]) << r;
                EXPECT_NEAR(b.l[i], l[i], 1e-5 * l[i]) << r;
                for (int64_t j = 0; j < w; ++j) {
                    const auto k = static_cast<size_t>(r * ld_s + j);
                    // p = exp(s - m): s - m rounds to float first (relative error <= |s - m| * 2^-24).
                    ASSERT_NEAR(a.s[k], s[k], 5e-6 * s[k]) << r << "," << j;
                    ASSERT_NEAR(b.s[k], s[k], 5e-6 * s[k]) << r << "," << j;
                    if (keep != nullptr && keep[j / 128] == 0) {
                        ASSERT_EQ(a.s[k], 0.0f);  // a block the window does not keep: p = 0
                    }
                }
                for (int64_t d = 0; d < ld_o; ++d) {
                    const auto k = static_cast<size_t>(r * ld_o + d);
                    if (d >= hd) {
                        ASSERT_EQ(a.o[k], init.o[k]);  // beyond head_dim: untouched
                        continue;
                    }
                    ASSERT_NEAR(a.o[k], o[k], 5e-6 * std::abs(o[k])) << r << "," << d;
                    ASSERT_NEAR(b.o[k], o[k], 5e-6 * std::abs(o[k])) << r << "," << d;
                }
            }
            if (keep == none) {  // nothing kept: -inf rows stay -inf with l = 0 and p = 0, no NaN anywhere
                EXPECT_EQ(a.m[0], -kInf);
                EXPECT_EQ(a.l[0], 0.0f);
                EXPECT_EQ(a.m[2], 20.0f);
                EXPECT_EQ(a.l[2], 2.5f);
                EXPECT_EQ(a.o, init.o);
            } else {
                EXPECT_GT(a.l[0], 0.0f);
            }
        }
    }
}

TEST(AttentionOnlineSoftmax, FinishRowsDividesOnlyRowsThatKeptSomething) {
    std::vector<double> o = {2, 4, 9, 0, 0, 9, 3, 6, 9};  // 3 rows, head_dim 2, row stride 3
    const std::vector<double> l = {2, 0, 3};
    sr::finish_rows<double>(o.data(), 3, 3, 2, l.data());
    EXPECT_EQ(o, (std::vector<double>{1, 2, 9, 0, 0, 9, 1, 2, 9}));
}

}  // namespace
