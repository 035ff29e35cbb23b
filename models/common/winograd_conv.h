// A 3D convolution with a (kt, 3, 3) kernel computed by Winograd's F(2x2, 3x3) minimal filtering: each
// temporal tap is a 3x3 spatial correlation, and 2x2 output pixels cost 16 multiplications instead of 36.
// The weight is transformed once (winograd_weight), the input per call; the sums over input channels and
// taps are 16 matrix products (dense_linear: oneDNN for float32 on the CPU). Used by the LQ projector on the
// CPU in float32/float64 (MODEL.md §3): its two convolutions are most of its time and run at the matmul rate
// already, so only fewer multiplications make them faster. Accuracy: the transforms use exact binary
// coefficients (±1, ±½); the result agrees with a direct convolution to the rounding of the dtype (the tests
// bound it).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace flashvsr::models {

/// The F(2x2, 3x3) form of a conv3d weight: w [Co, Ci, kt, 3, 3] -> u [16, Co, kt·Ci] with u[4a+b, o, k·Ci+i]
/// = (G w[o, i, k] Gᵀ)[a, b], G = [[1,0,0], [½,½,½], [½,-½,½], [0,0,1]]. Computed in float64 and rounded once
/// to w's dtype, a block of output channels at a time (the transient is small). 16/9 of w's bytes.
at::Tensor winograd_weight(const at::Tensor& w);

/// conv3d(x, w, bias, stride (stride_t, 1, 1), no padding) with w given as u = winograd_weight(w), kt its
/// temporal taps. x [1, Ci, F, Hp, Wp] (pad it first); returns [1, Co, (F-kt)/stride_t+1, Hp-2, Wp-2], x's
/// dtype and device. Odd output sizes are fine (the last tile row/column is cut). On the CPU the input and
/// output transforms are loops over the tiles; elsewhere (and with `reference`) they are ATen ops.
at::Tensor winograd_conv3d(const at::Tensor& x, const at::Tensor& u, const at::Tensor& bias, int64_t kt,
                           int64_t stride_t, bool reference = false);

}  // namespace flashvsr::models
