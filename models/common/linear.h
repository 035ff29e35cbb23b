// y = x Wᵀ + b for the networks' dense layers, on the fastest GEMM this torch has for the dtype.
//
// at::linear runs float32 on MKL's sgemm. The MKL in the torch wheel picks its code path by CPU vendor and
// runs AVX2 kernels on AMD CPUs ("zen" kernels), about half of what the AVX-512 units of a recent AMD core
// can do; oneDNN (also in the wheel, behind torch.ops.mkldnn._linear_pointwise) uses AVX-512 on every
// vendor. On the development machine (AMD EPYC, family 26) a DiT-sized float32 linear runs at 200-230
// GFLOP/s through MKL and 410-480 through oneDNN (docs/PERFORMANCE.md). Both compute the same products in
// float32; only the order of the additions differs.
#pragma once

#include <ATen/core/Tensor.h>

namespace flashvsr::models {

/// Which GEMM dense_linear uses.
enum class LinearBackend {
    kAuto,  ///< oneDNN for float32 on the CPU when this torch has it; at::linear otherwise
    kATen,  ///< always at::linear (MKL/cuBLAS): the reference
};

/// y = x Wᵀ + b. x [..., K]; w [N, K]; b [N] or undefined. Same dtype and device throughout.
at::Tensor dense_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                        LinearBackend backend = LinearBackend::kAuto);

/// True when dense_linear(kAuto) sends float32 CPU tensors to oneDNN in this process.
bool onednn_linear_available();

}  // namespace flashvsr::models
