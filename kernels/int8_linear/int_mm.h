// The int8 x int8 -> int32 matrix product of the CPU int8_linear (internal: its kernel and tests).
//
// at::_int_mm has a fast CPU path only where ATen hands it to oneDNN: CPUs with AVX512-VNNI (and oneDNN
// enabled). Everywhere else (every AVX2-only CPU) it runs a plain triple loop, two orders of magnitude slower
// than a GEMM. There the product goes through float32 GEMMs instead, exactly: K is cut into slices of at most
// 1024, so every partial sum is an integer of magnitude <= 128 * 128 * 1024 = 2^24, exact in float32 whatever
// the order of the additions; the slices' results are converted back and added in int32. Same result, bit for
// bit.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace flashvsr::kernels {

/// Which way int_mm_cpu multiplies.
enum class IntMmPath {
    kAuto,         ///< at::_int_mm where it is fast on this CPU, kFloatSlices otherwise
    kATen,         ///< at::_int_mm
    kFloatSlices,  ///< float32 GEMMs over K slices of at most kIntMmSlice, summed in int32
};

inline constexpr int64_t kIntMmSlice = 1024;

/// Whether at::_int_mm runs on oneDNN in this process (AVX512-VNNI CPU, oneDNN enabled).
bool int_mm_is_fast();

/// a [M, K] int8 x b [K, N] int8 -> [M, N] int32 (contiguous), CPU.
at::Tensor int_mm_cpu(const at::Tensor& a, const at::Tensor& b, IntMmPath path = IntMmPath::kAuto);

}  // namespace flashvsr::kernels
