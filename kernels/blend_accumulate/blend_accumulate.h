// blend_accumulate: canvas[f, top+y, left+x, c] += weight(y, x) * tile[f, y, x, c]
//
// canvas: float32 [F, H, W, C], contiguous, modified in place (the accumulator of a tiled frame).
// tile:   [F, h, w, C] float32 / float16 / bfloat16 on the same device, fully inside the canvas.
// ramps:  {top, bottom, left, right} ramp lengths in pixels (0 = weight 1 up to that edge);
//         top + bottom <= h and left + right <= w. See blend_math.cuh for the weight formula.
// Weights are computed on the fly (no mask tensors). Registered as torch.ops.flashvsr.blend_accumulate
// with CPU, CUDA (when compiled) and Meta kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>

#include "kernels/blend_accumulate/blend_math.cuh"

namespace flashvsr::kernels {

/// Validates the arguments (shared by every twin and by Meta) and returns the geometry.
BlendGeometry check_blend_accumulate_inputs(const at::Tensor& canvas, const at::Tensor& tile, int64_t top,
                                            int64_t left, at::IntArrayRef ramps);

/// Calls the registered op (dispatches on the canvas' device).
void blend_accumulate(at::Tensor& canvas, const at::Tensor& tile, int64_t top, int64_t left,
                      std::array<int64_t, 4> ramps);

}  // namespace flashvsr::kernels
