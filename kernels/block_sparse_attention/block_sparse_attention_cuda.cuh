// Torch-free interface between the CUDA kernel (.cu, compiled by nvcc) and its launcher (.cpp).
#pragma once

#include "kernels/block_sparse_attention/attention_geometry.cuh"

namespace flashvsr::kernels {

enum class AttentionType { kFloat32, kFloat64, kFloat16, kBFloat16 };

/// Largest head_dim the CUDA kernel takes.
inline constexpr int kCudaMaxHeadDim = 128;

/// Enqueues the kernel on `stream` (a cudaStream_t); q, k, v, out contiguous in `type`, mask bool
/// (one byte each). Returns the cudaError_t of the launch as int.
int block_sparse_attention_cuda_launch(const void* q, const void* k, const void* v, const bool* mask,
                                       void* out, AttentionType type, const AttentionGeometry& g,
                                       void* stream);

}  // namespace flashvsr::kernels
