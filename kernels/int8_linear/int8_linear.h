// int8_linear: y = dequant(quant(x) @ qweight) + bias, the opt-in int8 DiT's linear layer.
//
//   s[m]    = max(max_k |x[m, k]|, 1e-20)                 per-token (row) absmax, float32
//   xq[m,k] = round_half_even(x[m, k] * (127 / s[m]))    int8 (|.| <= 127 by construction)
//   acc     = xq @ qweight                               int32 (at::_int_mm)
//   y[m,n]  = (float(acc[m, n]) * (s[m] * (1/127))) * wscale[n] + bias[n]   float32, in this order
//
// x: [..., K] float32 / bfloat16 / float16; qweight: int8 [K, N] contiguous (the transposed per-output-
// channel weight); wscale: float32 [N]; bias: [N] float (any float dtype) or none. Returns [..., N] in x's
// dtype. Registered as torch.ops.flashvsr.int8_linear: the CPU kernel is fused (one pass over x to int8 and
// the token scales, at::_int_mm, one epilogue pass over the int32 products that writes the float32 output
// in place); every other device runs int8_linear_reference (plain ATen: the same arithmetic as ten
// elementwise passes), and Meta checks and gives the shape.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace flashvsr::kernels {

struct Int8LinearGeometry {
    int64_t m = 0;                   // tokens (rows of x flattened over its leading dimensions)
    int64_t k = 0;                   // input features
    int64_t n = 0;                   // output features
    std::vector<int64_t> out_sizes;  // x's sizes with the last one n: the output's shape
};

/// Validates the arguments (shared by every kernel and by Meta) and returns the geometry.
Int8LinearGeometry check_int8_linear_inputs(const at::Tensor& x, const at::Tensor& qweight,
                                            const at::Tensor& wscale, const std::optional<at::Tensor>& bias);

/// Calls the registered op (dispatches on x's device).
at::Tensor int8_linear(const at::Tensor& x, const at::Tensor& qweight, const at::Tensor& wscale,
                       const std::optional<at::Tensor>& bias);

/// The same with ATen operations only (any device; CUDA's _int_mm gets more than 16 rows by zero padding).
/// The kernel of every device but the CPU and the "unfused" path of bench/bench_int8_linear.cpp.
at::Tensor int8_linear_reference(const at::Tensor& x, const at::Tensor& qweight, const at::Tensor& wscale,
                                 const std::optional<at::Tensor>& bias);

}  // namespace flashvsr::kernels
