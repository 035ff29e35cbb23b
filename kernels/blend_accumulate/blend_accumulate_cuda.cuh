// Torch-free interface between the CUDA kernel (.cu, compiled by nvcc) and its launcher (.cpp).
#pragma once

#include "kernels/blend_accumulate/blend_math.cuh"

namespace flashvsr::kernels {

enum class TileType { kFloat32, kFloat16, kBFloat16 };

/// Enqueues the kernel on `stream` (a cudaStream_t); returns the cudaError_t of the launch as int.
int blend_accumulate_cuda_launch(float* canvas, const void* tile, TileType type, const BlendGeometry& g,
                                 void* stream);

}  // namespace flashvsr::kernels
