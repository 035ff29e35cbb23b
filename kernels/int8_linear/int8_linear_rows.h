// Row loops of the fused CPU int8_linear (internal: int8_linear_cpu.cpp and tests). Each loop has a portable
// scalar form and AVX2 and AVX-512 forms chosen at run time; both give bit-identical results (the same IEEE
// float operations in the same order; rounding half to even).
#pragma once

#include <cstdint>

#include "csrc/core/cpu_isa.h"

namespace flashvsr::kernels::int8_rows {

using Isa = core::CpuIsa;

/// The fastest form this CPU runs.
Isa best_isa();

/// Rows [begin, end) of x [M, K] (float32, row-major): s = max(absmax(row), 1e-20), xq = round(x * (127 / s))
/// as int8 [M, K], token_scale[m] = s * float(1/127).
void quantize_rows(const float* x, int64_t k, int64_t begin, int64_t end, int8_t* xq, float* token_scale,
                   Isa isa);

/// Rows [begin, end) of the int32 products acc [M, N], converted in place to the float32 bit patterns of
/// (float(acc) * token_scale[m]) * wscale[n] + bias[n] (no bias when `bias` is null).
void dequantize_rows(int32_t* acc, int64_t n, int64_t begin, int64_t end, const float* token_scale,
                     const float* wscale, const float* bias, Isa isa);

}  // namespace flashvsr::kernels::int8_rows
