// Geometry shared by the CPU and CUDA twins of block_sparse_attention (no torch headers).
//
// q: [nq, 128, C], k/v: [nk, 128, C], C = heads * head_dim, all contiguous. Head h of window i is the
// 128 x head_dim matrix at q + i*128*C + h*head_dim with row stride C (the same for k and v), so a run
// of consecutive key windows j..j+r-1 is one (r*128) x head_dim matrix with row stride C: the kernels read
// the kept blocks in place and never gather them.
// mask: [heads, nq, nk] bool (one byte each), contiguous; mask[h][i][j] = query window i of head h attends
// to the 128 tokens of key window j. A row (h, i) that keeps no window outputs exactly 0.
#pragma once

#include <cstdint>

namespace flashvsr::kernels {

/// Tokens in one attention block (window).
inline constexpr int64_t kBlockTokens = 128;

struct AttentionGeometry {
    int64_t nq = 0;  // query windows
    int64_t nk = 0;  // key/value windows
    int64_t heads = 0;
    int64_t head_dim = 0;
    int64_t channels = 0;  // heads * head_dim (row stride of q, k, v)
    double scale = 1.0;    // 1 / sqrt(head_dim)
};

}  // namespace flashvsr::kernels
