// The token-wise operations of a DiT block (MODEL.md §2.4-2.5), each one pass over a token's channels:
// LayerNorm + modulation, RMSNorm, RMSNorm + interleaved RoPE. On the CPU in float32 / float64 they run as
// fused row loops (AVX-512 or AVX2 for float32, whichever the CPU has) that write one output, or update a
// temporary in place, instead of the 4-8 full-size intermediates of the ATen composition; every other dtype
// or device runs the ATen composition, which is also the reference the tests hold the fused loops to
// (tests/cpp/test_dit_rows.cpp).
//
// None of them depends on the order of the tokens: the DiT keeps its tokens in window order (dit.cpp).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "models/dit_attention.h"

namespace flashvsr::models {

/// Which implementation the row operations use.
enum class RowOpsImpl {
    kAuto,       ///< fused loops for contiguous CPU float32 / float64 (float32 in the widest vector form the
                 ///< CPU runs), the ATen composition otherwise
    kReference,  ///< always the ATen composition
    kScalar,     ///< as kAuto, float32 in the scalar loops (tests)
    kAvx2,       ///< as kAuto, float32 in the AVX2 loops where the CPU runs them (tests)
};

/// LayerNorm without affine parameters over the last dimension (statistics in the working dtype, as
/// torch.nn.LayerNorm), then modulation: LN(x) * (1 + scale) + shift. x [1, L, C]; shift, scale [1, 1, C].
at::Tensor norm_modulate(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale, double eps,
                         RowOpsImpl impl = RowOpsImpl::kAuto);

/// RMSNorm over the last dimension with the statistics in max(dtype, float32), cast back, times weight [C]:
/// (x * rsqrt(mean(x^2) + eps)).to(dtype) * weight. Returns a new tensor.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps,
                    RowOpsImpl impl = RowOpsImpl::kAuto);

/// rms_norm in place on x [1, L, C] (x must not be shared: it is the output of a linear layer).
void rms_norm_(at::Tensor& x, const at::Tensor& weight, double eps, RowOpsImpl impl = RowOpsImpl::kAuto);

/// rms_norm, then apply_rope with `tables` (cos, sin [L, head_dim/2] in max(dtype, float32), one row per
/// token of x in x's token order), in place on x [1, L, heads * head_dim].
void rms_norm_rope_(at::Tensor& x, const at::Tensor& weight, double eps, const RopeTables& tables,
                    int64_t num_heads, RowOpsImpl impl = RowOpsImpl::kAuto);

}  // namespace flashvsr::models
