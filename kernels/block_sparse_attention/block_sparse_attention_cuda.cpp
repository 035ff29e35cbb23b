// Launcher of the CUDA twin: tensor checks, device guard, current stream, then the torch-free kernel.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "kernels/block_sparse_attention/block_sparse_attention.h"
#include "kernels/block_sparse_attention/block_sparse_attention_cuda.cuh"

namespace flashvsr::kernels {
namespace {

at::Tensor block_sparse_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                       const at::Tensor& mask, int64_t num_heads) {
    const AttentionGeometry g = check_block_sparse_attention_inputs(q, k, v, mask, num_heads);
    TORCH_CHECK(q.is_cuda(), "block_sparse_attention_cuda: q must be a CUDA tensor");
    TORCH_CHECK(g.head_dim <= kCudaMaxHeadDim, "block_sparse_attention_cuda: head_dim ", g.head_dim,
                " is too large for the CUDA kernel");
    const c10::cuda::CUDAGuard guard(q.device());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(q.device().index()).stream();
    const at::Tensor qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous(), mc = mask.contiguous();
    at::Tensor out = at::empty(q.sizes(), qc.options());
    if (out.numel() == 0) {
        return out;
    }
    AttentionType type = AttentionType::kFloat32;
    if (q.scalar_type() == at::kDouble) {
        type = AttentionType::kFloat64;
    } else if (q.scalar_type() == at::kHalf) {
        type = AttentionType::kFloat16;
    } else if (q.scalar_type() == at::kBFloat16) {
        type = AttentionType::kBFloat16;
    }
    const int err =
        block_sparse_attention_cuda_launch(qc.const_data_ptr(), kc.const_data_ptr(), vc.const_data_ptr(),
                                           mc.const_data_ptr<bool>(), out.data_ptr(), type, g, stream);
    C10_CUDA_CHECK(static_cast<cudaError_t>(err));
    return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(flashvsr, CUDA, m) { m.impl("block_sparse_attention", &block_sparse_attention_cuda); }

}  // namespace flashvsr::kernels
