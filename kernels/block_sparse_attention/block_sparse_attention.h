// block_sparse_attention: LCSA block-sparse attention over 128-token windows.
//
//   out[i, :, h] = softmax(q_i^h K_S^hT * scale) V_S^h,  S = { key windows j : mask[h, i, j] }
//
// q: [nq, 128, C], k, v: [nk, 128, C] (C = num_heads * head_dim; float32, float64, float16 or bfloat16,
// one dtype, one device), mask: [num_heads, nq, nk] bool. Returns [nq, 128, C] in q's dtype; a query
// window that keeps no key window gives exactly 0; scale = 1/sqrt(head_dim). Registered as
// torch.ops.flashvsr.block_sparse_attention with CPU, CUDA (when compiled) and Meta kernels.
// The CPU twin reads the kept blocks in place (runs of consecutive kept windows are one BLAS matrix), scores
// up to 2 consecutive query windows of a head together, and accumulates with a fused online softmax over
// pieces of at most 8 windows (block_sparse_attention_cpu.h); see attention_geometry.cuh for the layout.
#pragma once

#include <ATen/core/Tensor.h>

#include "kernels/block_sparse_attention/attention_geometry.cuh"

namespace flashvsr::kernels {

/// Validates the arguments (shared by every twin and by Meta) and returns the geometry.
AttentionGeometry check_block_sparse_attention_inputs(const at::Tensor& q, const at::Tensor& k,
                                                      const at::Tensor& v, const at::Tensor& mask,
                                                      int64_t num_heads);

/// Calls the registered op (dispatches on q's device).
at::Tensor block_sparse_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  const at::Tensor& mask, int64_t num_heads);

}  // namespace flashvsr::kernels
