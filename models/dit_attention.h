// Locality-Constrained Sparse Attention (LCSA) of the FlashVSR DiT (MODEL.md §2.6): 3D RoPE, the (2, 8, 8)
// window partition, the "normal slide" local window mask, the draft (top-k) block mask, block-sparse
// attention (gathered fast path + dense masked oracle) and the KV-cache trimming rule.
//
// Layouts: tokens [1, f*h*w, C] in (f, h, w) row-major order, C = heads * head_dim; windows
// [n_windows, 128, C] with window order (temporal window, row window, column window) and token order
// (dt, dy, dx) inside a window. One window is one 128-token attention block; a "slice" is the S = hb*wb
// windows of two latent frames (hb = h/8, wb = w/8).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace flashvsr::models {

/// Tokens per attention window and the window extent (frames, rows, columns).
inline constexpr int64_t kWindowT = 2;
inline constexpr int64_t kWindowH = 8;
inline constexpr int64_t kWindowW = 8;
inline constexpr int64_t kWindowTokens = kWindowT * kWindowH * kWindowW;

/// Channels of one head given to each RoPE axis (temporal, height, width); each is even.
/// Upstream (DiffSynth) rule: h = w = floor(hd/3), t = hd - 2*floor(hd/3) (128 -> 44/42/42 =
/// 22/21/21 complex pairs); head dims with an odd floor(hd/3) (e.g. 64) are rejected.
struct RopeSplit {
    int64_t t, h, w;
};
RopeSplit rope_split(int64_t head_dim);

/// Rotation tables for tokens at (t0 + i, y, x), i < f, y < h, x < w in (f, h, w) order:
/// cos and sin, each [f*h*w, head_dim/2] float64. Angles pos * 10000^(-2j/D) are formed in float64 on
/// the fly (no table-length cap), D the axis' channel count of rope_split.
struct RopeTables {
    at::Tensor cos, sin;
};
RopeTables rope_tables(int64_t head_dim, int64_t t0, int64_t f, int64_t h, int64_t w, at::Device device);

/// Interleaved RoPE: channel pairs (2j, 2j+1) of every head are (real, imag) and rotated by the tables.
/// x [1, L, heads*head_dim] any float dtype; the rotation runs in max(dtype, float32) and the result
/// has x's dtype.
at::Tensor apply_rope(const at::Tensor& x, const RopeTables& tables, int64_t num_heads);

/// [1, f*h*w, C] -> [(f/2)*hb*wb, 128, C]; needs f % 2 == 0, h % 8 == 0, w % 8 == 0.
at::Tensor window_partition(const at::Tensor& x, int64_t f, int64_t h, int64_t w);
/// Inverse of window_partition: [(f/2)*hb*wb, 128, C] -> [1, f*h*w, C].
at::Tensor window_reverse(const at::Tensor& windows, int64_t f, int64_t h, int64_t w);

/// "Normal slide" local mask [S, S] bool over the spatial windows of a slice (row-major over (hb, wb)):
/// key (r', c') is visible from query (r, c) iff r - R/2 <= r' <= r - R/2 + R - 1 (same for columns),
/// R = range, not clamped at the border.
at::Tensor local_window_mask(int64_t hb, int64_t wb, int64_t range);

/// Official top-k budget per (head, query slice): topk_ratio = sparse_ratio*768*1280/(H*W) in double,
/// topk = int(S*S*topk_ratio) - 1, with H, W the output (pixel) size and S the windows per slice.
int64_t draft_topk(double sparse_ratio, int64_t height, int64_t width, int64_t windows_per_slice);

/// Draft block mask [heads, nq, nk] bool. q_windows [nq, 128, C], k_windows [nk, 128, C] (nq, nk
/// multiples of S = local.size(0)). Window means -> per-head scores / sqrt(head_dim) (working dtype) ->
/// max(dtype, float32) with -inf outside the local mask (tiled over slice pairs) -> softmax over keys ->
/// per (head, query slice) keep the entries strictly greater than the (k*+1)-th largest of the slice's
/// S*nk probabilities, k* = min(S*nk - 1, topk).
at::Tensor draft_block_mask(const at::Tensor& q_windows, const at::Tensor& k_windows, int64_t num_heads,
                            const at::Tensor& local, int64_t topk);

/// Which implementation block_sparse_attention runs. kAuto: the op on the CPU, the gathered path on CUDA
/// (its fused SDPA kernels are proven; the op's CUDA twin is compared with the CPU twin by the gpu tests and
/// becomes the CUDA default once a GPU run has measured it).
enum class AttentionKernel { kAuto, kOp, kGather };

/// Block-sparse attention: query window i of head h attends to the tokens of the key windows j with
/// mask[h, i, j] (scale 1/sqrt(head_dim)); a query window with no selected key window outputs exactly 0.
/// q [nq, 128, C], k/v [nk, 128, C], mask [heads, nq, nk] -> [nq, 128, C] in q's dtype. No dense Lq x Lk
/// mask is formed. kOp: torch.ops.flashvsr.block_sparse_attention (kernels/block_sparse_attention: the
/// kept blocks are read in place); kGather: gathered_block_sparse_attention.
at::Tensor block_sparse_attention(const at::Tensor& q_windows, const at::Tensor& k_windows,
                                  const at::Tensor& v_windows, const at::Tensor& mask, int64_t num_heads,
                                  AttentionKernel kernel = AttentionKernel::kAuto);

/// The same through ATen only: the selected windows are gathered (padded to the largest count, key-padding
/// mask) and fed to at::scaled_dot_product_attention in batches of rows.
at::Tensor gathered_block_sparse_attention(const at::Tensor& q_windows, const at::Tensor& k_windows,
                                           const at::Tensor& v_windows, const at::Tensor& mask,
                                           int64_t num_heads);

/// Oracle of block_sparse_attention: dense attention over all nk*128 keys with the expanded boolean
/// mask [heads, nq*128, nk*128]; rows without any visible key are 0. Memory O(Lq*Lk): tests only.
at::Tensor masked_dense_attention(const at::Tensor& q_windows, const at::Tensor& k_windows,
                                  const at::Tensor& v_windows, const at::Tensor& mask, int64_t num_heads);

/// KV trimming (MODEL.md §2.6 item 8): slices kept in the cache when the attended K/V hold `n_slices` slices:
/// n_slices - 1 if n_slices > int(kv_ratio), else n_slices.
int64_t kv_slices_to_keep(int64_t n_slices, double kv_ratio);

}  // namespace flashvsr::models
