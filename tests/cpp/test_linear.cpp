// models/common/linear: dense_linear on oneDNN (float32, CPU) against at::linear.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "models/common/linear.h"

using flashvsr::models::dense_linear;
using flashvsr::models::LinearBackend;

TEST(DenseLinear, OneDnnIsAvailableInThisTorch) {
    // The pinned torch wheel is built with oneDNN; if a future pin drops it, dense_linear falls back to
    // at::linear and this test says so instead of the speed silently halving.
    EXPECT_TRUE(flashvsr::models::onednn_linear_available());
}

TEST(DenseLinear, Float32MatchesATenToRounding) {
    at::manual_seed(0);
    for (const bool with_bias : {true, false}) {
        for (const LinearBackend backend : {LinearBackend::kAuto, LinearBackend::kOneDnn}) {
            const at::Tensor x = at::randn({1, 77, 96}), w = at::randn({130, 96}) / 10;
            const at::Tensor b = with_bias ? at::randn({130}) : at::Tensor();
            const at::Tensor y = dense_linear(x, w, b, backend), ref = at::linear(x, w, b);
            ASSERT_EQ(y.sizes(), ref.sizes());
            ASSERT_EQ(y.scalar_type(), at::kFloat);
            const double rel = ((y - ref).abs().max() / ref.abs().max()).item<double>();
            EXPECT_LE(rel, 1e-6) << "bias " << with_bias;
            EXPECT_GT(ref.abs().max().item<double>(), 0.5);
            // A wrong weight orientation or a dropped bias is O(1) away.
            EXPECT_GT((dense_linear(x, w, at::Tensor(), backend) - (with_bias ? ref : ref + 1))
                          .abs()
                          .max()
                          .item<double>(),
                      1e-3);
        }
    }
}

TEST(DenseLinear, TwoAndThreeDimensionalInputsAndStridedViews) {
    at::manual_seed(1);
    const at::Tensor x = at::randn({40, 64}), w = at::randn({33, 64}), b = at::randn({33});
    const at::Tensor ref = at::linear(x, w, b);
    const at::Tensor xt = at::randn({64, 40}).t();  // a transposed view
    for (const LinearBackend backend : {LinearBackend::kAuto, LinearBackend::kOneDnn}) {
        EXPECT_LE((dense_linear(x, w, b, backend) - ref).abs().max().item<double>(), 1e-4);
        EXPECT_LE((dense_linear(xt, w, b, backend) - at::linear(xt, w, b)).abs().max().item<double>(), 1e-4);
        EXPECT_EQ(dense_linear(x.view({2, 20, 64}), w, b, backend).sizes(), (at::IntArrayRef{2, 20, 33}));
    }
}

TEST(DenseLinear, OtherDtypesAreATenBitForBit) {
    at::manual_seed(2);
    const auto d = at::TensorOptions().dtype(at::kDouble);
    const at::Tensor x = at::randn({5, 16}, d), w = at::randn({7, 16}, d), b = at::randn({7}, d);
    EXPECT_TRUE(at::equal(dense_linear(x, w, b), at::linear(x, w, b)));
    const at::Tensor xf = x.to(at::kFloat), wf = w.to(at::kFloat), bf = b.to(at::kFloat);
    EXPECT_TRUE(at::equal(dense_linear(xf, wf, bf, LinearBackend::kATen), at::linear(xf, wf, bf)));
    EXPECT_THROW(dense_linear(xf, wf.narrow(1, 0, 8), bf, LinearBackend::kOneDnn), c10::Error);
    // kAuto on a CPU without AVX-512 is at::linear itself.
    if (!flashvsr::models::onednn_preferred_for_float32()) {
        EXPECT_TRUE(at::equal(dense_linear(xf, wf, bf), at::linear(xf, wf, bf)));
    }
}
