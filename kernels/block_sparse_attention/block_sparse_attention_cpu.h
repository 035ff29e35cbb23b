// Internals of the CPU block_sparse_attention twin, for its kernel and tests: the work plan (which query
// windows share a work item) and the kernel with its tuning knobs exposed (the registered op uses the
// defaults).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "kernels/block_sparse_attention/attention_geometry.cuh"
#include "kernels/block_sparse_attention/online_softmax.h"

namespace flashvsr::kernels {

/// How the CPU twin multiplies in float32 (double always goes through the wheel's BLAS).
enum class CpuAttentionGemm {
    kBlas,    ///< the wheel's Fortran sgemm (MKL on x86-64): packs both operands on every call
    kBrgemm,  ///< ATen's cpublas::brgemm (oneDNN's batch-reduce kernel; fast with AVX-512 only)
    kTiles,   ///< attention_tiles.h: AVX2 register tiles over K^T and V packed once per call; where the CPU
              ///< or the head size does not suit them (attention_tiles::supported), kBlas
};

/// The default: kBrgemm where the CPU runs AVX-512 (there it runs these products at 2.2x MKL's sgemm, which
/// takes AVX2 code on AMD CPUs), kTiles on AVX2-only CPUs, kBlas otherwise.
CpuAttentionGemm default_attention_gemm();

struct CpuAttentionTuning {
    int64_t max_group = 2;     // most consecutive query windows of one head in one work item
    double min_fill = 0.9;     // group only while sum(kept per window) >= min_fill * windows * |union|
    int64_t piece_blocks = 8;  // most key windows scored at once (split into equal pieces)
    softmax_rows::Isa isa = softmax_rows::best_isa();
    CpuAttentionGemm gemm = default_attention_gemm();
};

/// A work item: query windows first .. first+count-1 of head h, scored against the union of their kept key
/// windows (the columns a window does not keep are left out of its softmax).
struct AttentionWorkItem {
    int64_t h = 0;
    int64_t first = 0;
    int64_t count = 0;
};

/// The work items of a mask [heads, nq, nk] (contiguous): per head, consecutive windows that keep
/// something, grouped greedily while the fill rule holds; windows that keep nothing get no item.
std::vector<AttentionWorkItem> attention_work_items(const bool* mask, const AttentionGeometry& g,
                                                    const CpuAttentionTuning& tuning);

/// The CPU kernel with explicit tuning (same arguments and result as the registered op).
at::Tensor block_sparse_attention_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& mask, int64_t num_heads,
                                      const CpuAttentionTuning& tuning);

}  // namespace flashvsr::kernels
