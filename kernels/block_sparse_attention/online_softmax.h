// The fused online-softmax step of the CPU block_sparse_attention twin (internal: its CPU kernel and tests).
//
// One call takes the scores of one query window (128 rows) against one piece of key windows (w = n*128
// columns, some of which the window may not keep) and, per row, in two passes over the scores:
//   m_new = max(m, max over kept columns of s),  s <- p = exp(s - m_new) on kept columns, 0 on the others,
//   l = l * exp(m - m_new) + sum(p),  o <- o * exp(m - m_new),  m = m_new.
// A row whose running maximum is still -inf (no kept column so far) gets p = 0 and keeps m, l, o as they
// are, so no -inf - -inf = NaN arises. float has a scalar form (std::exp) and AVX2 and AVX-512 forms with a
// fast exp (exp_nonpositive) chosen at run time; double always uses the scalar form.
#pragma once

#include <cstdint>

#include "csrc/core/cpu_isa.h"

namespace flashvsr::kernels::softmax_rows {

using Isa = core::CpuIsa;

/// The fastest form this CPU runs.
Isa best_isa();

/// y[i] = exp(x[i]) for x[i] <= 0 (-inf gives exactly 0). kAvx512: range reduction by ln 2 and a degree-7
/// polynomial, within 2 ulp of the correctly rounded value (denormal results included); kScalar: std::exp.
void exp_nonpositive(const float* x, float* y, int64_t n, Isa isa);

/// The online-softmax step above for `rows` rows: s [rows, w] (row stride ld_s, w a multiple of 128),
/// keep[b] for each 128-column block b (null: every block kept), m, l [rows], o [rows, head_dim] (row
/// stride ld_o).
template <typename T>
void online_softmax_step(T* s, int64_t rows, int64_t w, int64_t ld_s, const uint8_t* keep, T* m, T* l, T* o,
                         int64_t ld_o, int64_t head_dim, Isa isa);

/// o[r, :] /= l[r] for the rows with l[r] > 0 (the others never kept a column and stay as they are).
template <typename T>
void finish_rows(T* o, int64_t rows, int64_t ld_o, int64_t head_dim, const T* l);

}  // namespace flashvsr::kernels::softmax_rows
