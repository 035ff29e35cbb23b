// Input preparation (MODEL.md §6.1, MODEL.md §0 item 2): bicubic upscale by s, pad to the 128 grid, map to
// [-1, 1]; and the inverse bookkeeping that crops the output back to exactly (H*s, W*s).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace flashvsr::engine {

/// Centered padding of an (h, w) image up to multiples of `grid` and how to crop it back.
struct GridPadding {
    int64_t height = 0, width = 0;  // the image before padding
    int64_t top = 0, bottom = 0, left = 0, right = 0;
    int64_t padded_height() const { return height + top + bottom; }
    int64_t padded_width() const { return width + left + right; }
};

/// Padding of an (h, w) image to the next multiples of `grid` (>= grid), split evenly (extra pixel at the
/// bottom/right).
GridPadding grid_padding(int64_t height, int64_t width, int64_t grid = 128);

/// x: [..., H, W] with H, W == padding.height/width. Reflect padding per axis, replicate on an axis that is
/// too small to reflect (pad >= size).
at::Tensor pad_to_grid(const at::Tensor& x, const GridPadding& padding);

/// The inverse: x [..., Hp, Wp] -> [..., H, W] (a view).
at::Tensor crop_from_grid(const at::Tensor& x, const GridPadding& padding);

/// frames: [F, h, w, 3] uint8 or float in [0, 1] (any device). Returns the LQ video [1, 3, F, Hp, Wp] in
/// [-1, 1] (`dtype`, on frames' device): bicubic x`scale` with PyTorch semantics (a = -0.75,
/// align_corners=False), clamped to the input range as 8-bit resamplers do, padded by `padding`
/// (computed for (h*scale, w*scale)).
at::Tensor prepare_lq(const at::Tensor& frames, int64_t scale, const GridPadding& padding,
                      at::ScalarType dtype);

}  // namespace flashvsr::engine
