// AVX2 + FMA register tiles for the two products of the CPU block_sparse_attention twin in float32
// (internal: its CPU kernel and tests). No ATen here.
//
// Why: on AVX2-only CPUs the products go through MKL's sgemm otherwise, and every call packs both operands:
// the item's query rows once per run of key windows, its key and value rows once per item, and the whole
// score matrix P for O += P V. At 896x512 that packing is ~15 % of the attention's time. Here K^T and V are
// packed once per call, per head, in 16-column panels (each key and value row is used by every query window
// that keeps it), and the tiles read Q, the scores and O in place: a 6 x 16 block of the result lives in 12
// ymm accumulators while 2 panel vectors and 6 broadcasts feed 12 FMAs per step (the shape of the AVX2
// sgemm kernels of BLIS and MKL), with no packing per item.
//
// Layouts (keys = the call's key rows, nk * 128):
//   key panels   kp[h][p][d][16]  = K[16p + i, h*hd + d]   (K^T of head h, 16 keys per panel)
//   value panels vp[h][t][j][16]  = V[j, h*hd + 16t + i]    (V of head h, 16 channels per panel)
#pragma once

#include <cstdint>

namespace flashvsr::kernels::attention_tiles {

inline constexpr int64_t kPanel = 16;  // keys per key panel; channels per value panel

/// Whether this build and CPU run the tiles (x86-64 with AVX2 and FMA) for this head size (a multiple of
/// kPanel).
bool supported(int64_t head_dim);

/// The key panels of head h (hd * keys floats at out) from K [keys, ld] (row-major; head h's channels at
/// h*hd). keys is a multiple of kPanel.
void pack_keys(const float* k, int64_t keys, int64_t ld, int64_t h, int64_t hd, float* out);

/// The value panels of head h (hd * keys floats at out) from V [keys, ld].
void pack_values(const float* v, int64_t keys, int64_t ld, int64_t h, int64_t hd, float* out);

/// s[r, j] = scale * sum_d q[r, d] * K[key0 + j, d] for r < rows, j < n: q [rows, hd] with row stride ldq;
/// kp: the head's key panels; key0 and n multiples of kPanel; s with row stride lds.
void scores(const float* q, int64_t ldq, int64_t rows, const float* kp, int64_t key0, int64_t n, int64_t hd,
            float scale, float* s, int64_t lds);

/// o[r, :] += sum_j p[r, j] * V[key0 + j, :] for r < rows, j < n: p with row stride ldp; vp: the head's
/// value panels over `keys` keys; o [rows, hd] with row stride ldo.
void accumulate(const float* p, int64_t ldp, int64_t rows, const float* vp, int64_t keys, int64_t key0,
                int64_t n, int64_t hd, float* o, int64_t ldo);

}  // namespace flashvsr::kernels::attention_tiles
