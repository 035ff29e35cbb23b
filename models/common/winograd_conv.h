// A 3D convolution with a (kt, 3, 3) kernel computed by Winograd's F(2x2, 3x3) minimal filtering: each
// temporal tap is a 3x3 spatial correlation, and 2x2 output pixels cost 16 multiplications instead of 36.
// Both transforms are made per call, a block of input channels at a time (the weight's one tap at a time), so
// neither is ever whole: the transformed weights (16/9 of the checkpoint's bytes) are never held, at most one
// block of them (kWinogradBlockBytes) and the block's input transform (all frames) exist. The sums over
// input channels and taps are 16 matrix products per block,
// accumulated (MKL's addmm_, or oneDNN where dense_linear prefers it). Used by the LQ projector on the CPU in
// float32/float64 (MODEL.md §3): its two convolutions are most of its time and run at the matmul rate
// already, so only fewer multiplications make them faster. Accuracy: the transforms use exact binary
// coefficients (±1, ±½), each transform in the dtype's arithmetic; the result agrees with a direct
// convolution to the rounding of the dtype (the tests bound it).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "models/common/linear.h"

namespace flashvsr::models {

/// Transformed-weight bytes per block in winograd_conv3d (at most; a block of fewer than 16 input channels
/// excepted): 16 MiB, one tap of 80 of the LQ projector's conv2 input channels (15 MiB) or 128 of conv1's at
/// full size in float32 (conv2's whole transformed weight would be 1.5 GiB); a block stays in a 32 MiB L3
/// between its transform and its products (64 MiB measured no faster).
constexpr int64_t kWinogradBlockBytes = int64_t{16} << 20;

/// The F(2x2, 3x3) form of a conv3d weight: w [Co, Ci, kt, 3, 3] (any strides) -> u [16, Co, kt·Ci] with
/// u[4a+b, o, k·Ci+i] = (G w[o, i, k] Gᵀ)[a, b], G = [[1,0,0], [½,½,½], [½,-½,½], [0,0,1]], in w's
/// dtype; 16/9 of w's bytes. winograd_conv3d makes the same values a block at
/// a time; this whole form is its reference path's and the tests'.
at::Tensor winograd_weight(const at::Tensor& w);

/// w's values and shape [Co, Ci, kt, 3, 3] with the input channels innermost in memory (strides (9·kt·Ci, 1,
/// Ci, 3·kt·Ci, kt·Ci)): the layout winograd_conv3d transforms fastest (contiguous loads over Ci). The bytes
/// are w's; any other op reads it as the same tensor.
at::Tensor winograd_weight_layout(const at::Tensor& w);

/// conv3d(x, w, bias, stride (stride_t, 1, 1), no padding) for w [Co, Ci, kt, 3, 3] (the checkpoint's
/// weight, any strides; winograd_weight_layout is fastest). x [1, Ci, F, Hp, Wp] (pad it first); returns
/// [1, Co, (F-kt)/stride_t+1, Hp-2, Wp-2], x's dtype and device. Odd output sizes are fine (the last tile
/// row/column is cut). On the CPU the three transforms are loops, the weight's a tap and `block_channels`
/// input channels at a time (0: as few equal blocks, multiples of 16, as fit kWinogradBlockBytes); elsewhere
/// (and with `reference`) they are ATen ops on the whole winograd_weight(w). `backend` picks the GEMM of the
/// float32 products as dense_linear does (kAuto: oneDNN on AVX-512 CPUs, MKL's addmm otherwise).
at::Tensor winograd_conv3d(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, int64_t stride_t,
                           bool reference = false, int64_t block_channels = 0,
                           LinearBackend backend = LinearBackend::kAuto);

}  // namespace flashvsr::models
