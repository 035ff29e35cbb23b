// models/common/winograd_conv: F(2x2, 3x3) Winograd convolution against ATen's direct conv3d.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <string>

#include "models/common/winograd_conv.h"

using flashvsr::models::winograd_conv3d;
using flashvsr::models::winograd_weight;

namespace {

struct Case {
    int64_t ci, co, frames, hp, wp, kt, stride;
};

/// max |a - b| / max |b|.
double max_rel(const at::Tensor& a, const at::Tensor& b) {
    return ((a - b).abs().max() / b.abs().max()).item<double>();
}

/// Both the CPU loops and the ATen-op transforms against conv3d, in `dtype`.
void check(const Case& c, at::ScalarType dtype, double tol) {
    SCOPED_TRACE("ci " + std::to_string(c.ci) + " co " + std::to_string(c.co) + " " + std::to_string(c.hp) +
                 "x" + std::to_string(c.wp) + " kt " + std::to_string(c.kt) + " stride " +
                 std::to_string(c.stride));
    const auto opt = at::TensorOptions().dtype(dtype);
    const at::Tensor x = at::randn({1, c.ci, c.frames, c.hp, c.wp}, opt);
    const at::Tensor w = at::randn({c.co, c.ci, c.kt, 3, 3}, opt), b = at::randn({c.co}, opt);
    const at::Tensor ref = at::conv3d(x, w, b, {c.stride, 1, 1});
    const at::Tensor u = winograd_weight(w);
    ASSERT_EQ(u.sizes(), (at::IntArrayRef{16, c.co, c.kt * c.ci}));
    const at::Tensor loops = winograd_conv3d(x, u, b, c.kt, c.stride);
    const at::Tensor aten = winograd_conv3d(x, u, b, c.kt, c.stride, /*reference=*/true);
    ASSERT_EQ(loops.sizes(), ref.sizes());
    ASSERT_EQ(aten.sizes(), ref.sizes());
    EXPECT_LE(max_rel(loops, ref), tol);
    EXPECT_LE(max_rel(aten, ref), tol);
    EXPECT_GT(ref.abs().max().item<double>(), 1.0);  // not trivially zero
}

const Case kCases[] = {
    {5, 7, 6, 6, 8, 4, 2},    // the LQ projector's conv1 shape: even output 4x6, 2 output frames
    {7, 3, 4, 5, 9, 4, 2},    // odd output 3x7: the last tile row and column are cut
    {3, 4, 5, 3, 3, 3, 1},    // one output pixel per frame, stride 1
    {16, 9, 2, 11, 4, 1, 1},  // one tap: a plain 3x3 conv2d per frame
};

}  // namespace

TEST(WinogradConv, MatchesConv3dInFloat64) {
    at::manual_seed(0);
    for (const Case& c : kCases) {
        check(c, at::kDouble, 1e-13);
    }
}

TEST(WinogradConv, MatchesConv3dInFloat32) {
    at::manual_seed(1);
    for (const Case& c : kCases) {
        check(c, at::kFloat, 1e-5);
    }
}

TEST(WinogradConv, WeightCornersAreTheKernelCorners) {
    // u[4a+b] = G w Gᵀ: the corner rows of G are unit vectors, so u[0], u[3], u[12], u[15] are w's corner
    // taps exactly, and u[5] = ¼ of the sum of all nine taps.
    at::manual_seed(2);
    const at::Tensor w = at::randn({3, 2, 4, 3, 3}, at::TensorOptions().dtype(at::kDouble));
    const at::Tensor u = winograd_weight(w).view({4, 4, 3, 4, 2});  // [a, b, o, k, i]
    const at::Tensor wk = w.permute({3, 4, 0, 2, 1});               // [ky, kx, o, k, i]
    EXPECT_TRUE(at::equal(u[0][0], wk[0][0]));
    EXPECT_TRUE(at::equal(u[0][3], wk[0][2]));
    EXPECT_TRUE(at::equal(u[3][0], wk[2][0]));
    EXPECT_TRUE(at::equal(u[3][3], wk[2][2]));
    EXPECT_LE((u[1][1] - wk.sum({0, 1}) / 4).abs().max().item<double>(), 1e-15);
}

TEST(WinogradConv, BadShapesNameThem) {
    const at::Tensor x = at::zeros({1, 4, 6, 5, 5}), u = at::zeros({16, 2, 16});
    EXPECT_THROW(winograd_weight(at::zeros({2, 4, 4, 5, 5})), c10::Error);
    EXPECT_THROW(winograd_conv3d(x, at::zeros({16, 2, 12}), at::Tensor(), 4, 2), c10::Error);  // Ci·kt
    EXPECT_THROW(winograd_conv3d(x.narrow(2, 0, 3), u, at::Tensor(), 4, 2), c10::Error);       // F < kt
    EXPECT_THROW(winograd_conv3d(x, u.to(at::kDouble), at::Tensor(), 4, 2), c10::Error);       // dtype
    EXPECT_EQ(winograd_conv3d(x, u, at::Tensor(), 4, 2).sizes(), (at::IntArrayRef{1, 2, 2, 3, 3}));
}
