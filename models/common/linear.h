// y = x Wᵀ + b for the networks' dense layers, on the fastest GEMM this torch has for the dtype.
//
// at::linear runs float32 on MKL's sgemm. The MKL in the torch wheel picks its code path by CPU vendor and
// runs AVX2 kernels on AMD CPUs ("zen" kernels), about half of what the AVX-512 units of a recent AMD core
// can do; oneDNN (also in the wheel, behind torch.ops.mkldnn._linear_pointwise) uses AVX-512 on every
// vendor. On the development machine (AMD EPYC, family 26) a DiT-sized float32 linear runs at 200-230
// GFLOP/s through MKL and 410-480 through oneDNN (docs/PERFORMANCE.md). Both compute the same products in
// float32; only the order of the additions differs. On CPUs without AVX-512 both run AVX2 code and MKL is the
// faster, so the choice follows the CPU (LinearBackend::kAuto).
#pragma once

#include <ATen/core/Tensor.h>

namespace flashvsr::models {

/// Which GEMM dense_linear uses.
enum class LinearBackend {
    kAuto,  ///< float32 on the CPU: oneDNN when this torch has it and the CPU runs AVX-512 (where MKL's AVX2
            ///< code on AMD CPUs is about half as fast), at::linear (MKL) otherwise (on AVX2-only CPUs MKL is
            ///< the faster: 177 vs 140 GFLOP/s on a Zen 3); at::linear for other dtypes and devices
    kATen,  ///< always at::linear (MKL/cuBLAS): the reference
    kOneDnn,  ///< oneDNN for float32 on the CPU whenever this torch has it (benchmarks, tests)
};

/// Whether dense_linear(kAuto) takes oneDNN for float32 on this CPU (the attention op follows the same rule
/// for its small GEMMs: oneDNN's brgemm or MKL's sgemm).
bool onednn_preferred_for_float32();

/// y = x Wᵀ + b. x [..., K]; w [N, K]; b [N] or undefined. Same dtype and device throughout.
at::Tensor dense_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                        LinearBackend backend = LinearBackend::kAuto);

/// True when this torch registers oneDNN's linear (mkldnn::_linear_pointwise) with a CPU kernel.
bool onednn_linear_available();

}  // namespace flashvsr::models
