// Input preparation: bicubic x s, 128-grid padding (reflect / replicate) and exact crop back.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "csrc/engine/prep.h"

using namespace flashvsr::engine;

TEST(Prep, GridPaddingIsCenteredAndMinimal) {
    const GridPadding p = grid_padding(37 * 4, 53 * 4);  // 148 x 212 -> 256 x 256
    EXPECT_EQ(p.padded_height(), 256);
    EXPECT_EQ(p.padded_width(), 256);
    EXPECT_EQ(p.top, 54);
    EXPECT_EQ(p.bottom, 54);
    EXPECT_EQ(p.left, 22);
    EXPECT_EQ(p.right, 22);
    const GridPadding q = grid_padding(256, 384);
    EXPECT_EQ(q.top + q.bottom + q.left + q.right, 0);
    const GridPadding tiny = grid_padding(4, 4);  // a 1x1 image at x4
    EXPECT_EQ(tiny.padded_height(), 128);
    EXPECT_THROW(grid_padding(0, 4), flashvsr::InputError);
}

TEST(Prep, PadThenCropIsIdentityAndReflects) {
    at::manual_seed(0);
    const at::Tensor x = at::rand({2, 3, 148, 212});
    const GridPadding p = grid_padding(148, 212);
    const at::Tensor padded = pad_to_grid(x, p);
    EXPECT_EQ(padded.sizes(), (at::IntArrayRef{2, 3, 256, 256}));
    EXPECT_TRUE(at::equal(crop_from_grid(padded, p), x));
    // Reflect: the row above the image mirrors row 1.
    EXPECT_TRUE(at::equal(padded.select(2, p.top - 1).narrow(-1, p.left, 212), x.select(2, 1)));
    // Too small to reflect (pad >= size): replicate the edge.
    const at::Tensor small = at::rand({1, 3, 4, 4});
    const GridPadding ps = grid_padding(4, 4);
    const at::Tensor sp = pad_to_grid(small, ps);
    EXPECT_TRUE(at::equal(sp.select(2, 0).narrow(-1, ps.left, 4), small.select(2, 0)));
    EXPECT_TRUE(at::equal(crop_from_grid(sp, ps), small));
}

TEST(Prep, PrepareLqBicubicRangeLayout) {
    at::manual_seed(1);
    const at::Tensor frames = at::rand({3, 37, 53, 3});
    const GridPadding p = grid_padding(37 * 4, 53 * 4);
    const at::Tensor lq = prepare_lq(frames, 4, p, at::kFloat);
    ASSERT_EQ(lq.sizes(), (at::IntArrayRef{1, 3, 3, 256, 256}));
    EXPECT_LE(lq.abs().max().item<float>(), 1.0f);
    // Same as PyTorch's bicubic (align_corners=False) on [F,3,h,w], clamped, mapped to [-1,1].
    const at::Tensor ref =
        at::upsample_bicubic2d(frames.permute({0, 3, 1, 2}), {148, 212}, false).clamp(0, 1) * 2 - 1;
    EXPECT_TRUE(at::allclose(crop_from_grid(lq, p)[0].permute({1, 0, 2, 3}), ref, 1e-6, 1e-6));
    // uint8 input is scaled by 1/255 first.
    const at::Tensor u8 = (frames * 255).round().to(at::kByte);
    const at::Tensor lq8 = prepare_lq(u8, 2, grid_padding(74, 106), at::kBFloat16);
    EXPECT_EQ(lq8.scalar_type(), at::kBFloat16);
    EXPECT_EQ(lq8.sizes(), (at::IntArrayRef{1, 3, 3, 128, 128}));
    EXPECT_THROW(prepare_lq(frames, 0, p, at::kFloat), flashvsr::InputError);
}
