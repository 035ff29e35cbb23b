// models/common/winograd_conv: F(2x2, 3x3) Winograd convolution against ATen's direct conv3d.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <string>

#include "counting_allocator.h"
#include "models/common/winograd_conv.h"

using flashvsr::models::LinearBackend;
using flashvsr::models::winograd_conv3d;
using flashvsr::models::winograd_weight;
using flashvsr::models::winograd_weight_layout;

namespace {

struct Case {
    int64_t ci, co, frames, hp, wp, kt, stride;
};

/// max |a - b| / max |b|.
double max_rel(const at::Tensor& a, const at::Tensor& b) {
    return ((a - b).abs().max() / b.abs().max()).item<double>();
}

/// The CPU loops (the weight in the checkpoint's layout and in winograd_weight_layout, whole and in blocks
/// of 1, 2 and 3 input channels: the last block ragged where Ci is not a multiple) and the ATen-op transforms
/// against conv3d, in `dtype`.
void check(const Case& c, at::ScalarType dtype, double tol) {
    SCOPED_TRACE("ci " + std::to_string(c.ci) + " co " + std::to_string(c.co) + " " + std::to_string(c.hp) +
                 "x" + std::to_string(c.wp) + " kt " + std::to_string(c.kt) + " stride " +
                 std::to_string(c.stride));
    const auto opt = at::TensorOptions().dtype(dtype);
    const at::Tensor x = at::randn({1, c.ci, c.frames, c.hp, c.wp}, opt);
    const at::Tensor w = at::randn({c.co, c.ci, c.kt, 3, 3}, opt), b = at::randn({c.co}, opt);
    const at::Tensor ref = at::conv3d(x, w, b, {c.stride, 1, 1});
    ASSERT_EQ(winograd_weight(w).sizes(), (at::IntArrayRef{16, c.co, c.kt * c.ci}));
    const at::Tensor wl = winograd_weight_layout(w);
    const at::Tensor loops = winograd_conv3d(x, w, b, c.stride);
    const at::Tensor aten = winograd_conv3d(x, w, b, c.stride, /*reference=*/true);
    ASSERT_EQ(loops.sizes(), ref.sizes());
    ASSERT_EQ(aten.sizes(), ref.sizes());
    EXPECT_LE(max_rel(loops, ref), tol);
    EXPECT_LE(max_rel(aten, ref), tol);
    EXPECT_LE(max_rel(winograd_conv3d(x, wl, b, c.stride), ref), tol);  // whole blocks in the fast layout
    for (const int64_t block : {1, 2, 3}) {
        SCOPED_TRACE("blocks of " + std::to_string(block));
        for (const at::Tensor& weight : {w, wl}) {
            const at::Tensor blocked = winograd_conv3d(x, weight, b, c.stride, false, block);
            EXPECT_LE(max_rel(blocked, ref), tol);
            EXPECT_LE(max_rel(blocked, loops), tol);
        }
    }
    // Both GEMMs of the float32 products (oneDNN where this torch has it; float64 always takes ATen's).
    for (const auto backend : {LinearBackend::kATen, LinearBackend::kOneDnn}) {
        const at::Tensor y = winograd_conv3d(x, wl, b, c.stride, false, 2, backend);
        EXPECT_LE(max_rel(y, ref), tol) << (backend == LinearBackend::kATen ? "ATen" : "oneDNN");
    }
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

TEST(WinogradConv, TheWeightLayoutKeepsValuesAndBytesWithInputChannelsInnermost) {
    // winograd_weight_layout changes only the memory order: equal values, shape and bytes, input channels
    // at stride 1, and the same transformed weight bit for bit.
    at::manual_seed(3);
    const at::Tensor w = at::randn({3, 5, 4, 3, 3});
    const at::Tensor wl = winograd_weight_layout(w);
    EXPECT_TRUE(at::equal(wl, w));
    EXPECT_EQ(wl.sizes(), w.sizes());
    EXPECT_EQ(wl.stride(1), 1);
    EXPECT_EQ(wl.stride(2), 5);
    EXPECT_EQ(wl.stride(0), 9 * 4 * 5);
    EXPECT_EQ(static_cast<int64_t>(wl.storage().nbytes()), w.numel() * 4);
    EXPECT_TRUE(at::equal(winograd_weight(wl), winograd_weight(w)));
    // 13 input channels: in this layout float32 takes the AVX2 transform (8 channels per vector, where the
    // CPU has it) plus the scalar tail; the checkpoint's layout takes the scalar form; the same bits.
    const at::Tensor w13 = at::randn({3, 13, 4, 3, 3});
    EXPECT_TRUE(at::equal(winograd_weight(winograd_weight_layout(w13)), winograd_weight(w13)));
}

TEST(WinogradConv, HoldsOneBlockOfEachTransformNotTheWholeInputTransform) {
    // Allocator bytes of one call: the output, the accumulated products [16, Co, n] per output frame and one
    // input-channel block of each transform (weight: one tap; input: every frame). The whole input
    // transform [16, F·Ci, n] (235 MB for the LQ projector's conv2 at 896x512) never exists.
    at::manual_seed(5);
    const int64_t ci = 64, co = 8, f = 3, kt = 3, cb = 16, hp = 18, wp = 18, n = 8 * 8;
    const at::Tensor x = at::randn({1, ci, f, hp, wp}), b = at::randn({co});
    const at::Tensor w = winograd_weight_layout(at::randn({co, ci, kt, 3, 3}));
    const flashvsr::testing::CountingCpuAllocator bytes;
    const size_t before = bytes.live();
    const at::Tensor y = winograd_conv3d(x, w, b, 1, false, cb, LinearBackend::kATen);
    const size_t used = bytes.peak() - before, fl = sizeof(float);
    const size_t out = co * (hp - 2) * (wp - 2) * fl, products = 16 * co * n * fl;
    const size_t weight_block = 16 * co * cb * fl, input_block = 16 * f * cb * n * fl;
    EXPECT_LE(used, out + products + weight_block + input_block + 4096);
    EXPECT_GE(used, out + products + weight_block + input_block);
    EXPECT_LT(out + products + weight_block + input_block + 4096, 16 * f * ci * n * fl)
        << "the test tells them apart";
    EXPECT_LE(max_rel(y, at::conv3d(x, w, b)), 1e-5);
}

TEST(WinogradConv, BadShapesNameThem) {
    const at::Tensor x = at::zeros({1, 4, 6, 5, 5}), w = at::zeros({2, 4, 4, 3, 3});
    EXPECT_THROW(winograd_weight(at::zeros({2, 4, 4, 5, 5})), c10::Error);
    EXPECT_THROW(winograd_conv3d(x, at::zeros({2, 3, 4, 3, 3}), at::Tensor(), 2), c10::Error);  // Ci
    EXPECT_THROW(winograd_conv3d(x, at::zeros({2, 4, 4, 5, 5}), at::Tensor(), 2), c10::Error);  // 5x5
    EXPECT_THROW(winograd_conv3d(x.narrow(2, 0, 3), w, at::Tensor(), 2), c10::Error);           // F < kt
    EXPECT_THROW(winograd_conv3d(x, w.to(at::kDouble), at::Tensor(), 2), c10::Error);           // dtype
    EXPECT_EQ(winograd_conv3d(x, w, at::Tensor(), 2).sizes(), (at::IntArrayRef{1, 2, 2, 3, 3}));
}
