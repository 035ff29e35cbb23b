// Launcher of the CUDA twin: tensor checks, device guard, current stream, then the torch-free kernel.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "kernels/blend_accumulate/blend_accumulate.h"
#include "kernels/blend_accumulate/blend_accumulate_cuda.cuh"

namespace flashvsr::kernels {
namespace {

void blend_accumulate_cuda(at::Tensor& canvas, const at::Tensor& tile, int64_t top, int64_t left,
                           at::IntArrayRef ramps) {
    const BlendGeometry g = check_blend_accumulate_inputs(canvas, tile, top, left, ramps);
    TORCH_CHECK(canvas.is_cuda(), "blend_accumulate_cuda: canvas must be a CUDA tensor");
    const c10::cuda::CUDAGuard guard(canvas.device());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(canvas.device().index()).stream();
    if (tile.numel() == 0) {
        return;
    }
    const at::Tensor t = tile.contiguous();
    TileType type = TileType::kFloat32;
    if (t.scalar_type() == at::kHalf) {
        type = TileType::kFloat16;
    } else if (t.scalar_type() == at::kBFloat16) {
        type = TileType::kBFloat16;
    }
    const int err =
        blend_accumulate_cuda_launch(canvas.data_ptr<float>(), t.const_data_ptr(), type, g, stream);
    C10_CUDA_CHECK(static_cast<cudaError_t>(err));
}

}  // namespace

TORCH_LIBRARY_IMPL(flashvsr, CUDA, m) { m.impl("blend_accumulate", &blend_accumulate_cuda); }

}  // namespace flashvsr::kernels
