// The reference rate of the benchmarks: an [n x n] x [n x n] product in this process, best of 3 after a
// warm-up. fp32 through MKL (at::mm) and through oneDNN (models::dense_linear, what the engine's linears
// use); on AMD CPUs MKL runs AVX2 code and oneDNN AVX-512, so the benchmarks compare against the faster.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>

#include "kernels/int8_linear/int_mm.h"
#include "models/common/linear.h"

namespace flashvsr::bench {

enum class Gemm { kMkl, kOneDnn, kInt8 };

/// GFLOP/s (GOP/s for kInt8: kernels::int_mm_cpu, at::_int_mm on AVX512-VNNI CPUs) of an n x n x n product.
inline double matmul_rate(Gemm which, int64_t n = 2048) {
    const bool int8 = which == Gemm::kInt8;
    const at::Tensor a = int8 ? at::randint(-64, 64, {n, n}, at::kChar) : at::randn({n, n});
    const at::Tensor b = int8 ? at::randint(-64, 64, {n, n}, at::kChar) : at::randn({n, n});
    const auto mm = [&] {
        switch (which) {
            case Gemm::kMkl:
                return at::mm(a, b);
            case Gemm::kOneDnn:
                return models::dense_linear(a, b, at::Tensor(), models::LinearBackend::kOneDnn);
            default:
                return kernels::int_mm_cpu(a, b);  // what the int8 linears use (at::_int_mm or exact fp32)
        }
    };
    (void)mm();
    double best = 0;
    for (int r = 0; r < 3; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        (void)mm();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(
            best, 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) / 1e9 / s);
    }
    return best;
}

}  // namespace flashvsr::bench
