// Row loops of the fused CPU int8_linear (see int8_linear_rows.h). This file is compiled with
// -ffp-contract=off (CMakeLists.txt): the epilogue's multiply-multiply-add must not become an FMA, so that
// the scalar form, the AVX-512 form and the ATen reference round alike.
#include "kernels/int8_linear/int8_linear_rows.h"

#include <algorithm>
#include <bit>
#include <cmath>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "csrc/core/avx2_reduce.h"
#define FLASHVSR_INT8_X86 1
#endif

namespace flashvsr::kernels::int8_rows {
namespace {

constexpr float kMinScale = 1e-20f;                     // as clamp_min(1e-20) in float32
const float kInv127 = static_cast<float>(1.0 / 127.0);  // as amax * (1.0 / 127.0) in float32

void quantize_rows_scalar(const float* x, int64_t k, int64_t begin, int64_t end, int8_t* xq, float* tok) {
    for (int64_t m = begin; m < end; ++m) {
        const float* row = x + m * k;
        float s = 0.0f;
        for (int64_t i = 0; i < k; ++i) {
            s = std::max(s, std::fabs(row[i]));
        }
        s = std::max(s, kMinScale);
        const float inv = 127.0f / s;
        int8_t* q = xq + m * k;
        for (int64_t i = 0; i < k; ++i) {
            q[i] = static_cast<int8_t>(static_cast<int32_t>(std::nearbyint(row[i] * inv)));
        }
        tok[m] = s * kInv127;
    }
}

void dequantize_rows_scalar(int32_t* acc, int64_t n, int64_t begin, int64_t end, const float* tok,
                            const float* ws, const float* bias) {
    for (int64_t m = begin; m < end; ++m) {
        int32_t* row = acc + m * n;
        const float t = tok[m];
        for (int64_t j = 0; j < n; ++j) {
            float y = (static_cast<float>(row[j]) * t) * ws[j];
            if (bias != nullptr) {
                y = y + bias[j];
            }
            row[j] = std::bit_cast<int32_t>(y);
        }
    }
}

#ifdef FLASHVSR_INT8_X86
// GCC 12 reports its own _mm512_undefined_* placeholders inside the intrinsics as maybe-uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
__attribute__((target("avx512f"))) void quantize_rows_avx512(const float* x, int64_t k, int64_t begin,
                                                             int64_t end, int8_t* xq, float* tok) {
    const int64_t full = k / 16 * 16;
    const auto tail = static_cast<__mmask16>((1u << (k - full)) - 1u);
    for (int64_t m = begin; m < end; ++m) {
        const float* row = x + m * k;
        __m512 vmax = _mm512_setzero_ps();
        for (int64_t i = 0; i < full; i += 16) {
            vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_loadu_ps(row + i)));
        }
        if (tail != 0) {
            vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_maskz_loadu_ps(tail, row + full)));
        }
        const float s = std::max(_mm512_reduce_max_ps(vmax), kMinScale);
        const __m512 inv = _mm512_set1_ps(127.0f / s);
        int8_t* q = xq + m * k;
        constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        for (int64_t i = 0; i < full; i += 16) {
            const __m512i v =
                _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_loadu_ps(row + i), inv), kNearest);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtepi32_epi8(v));
        }
        if (tail != 0) {
            const __m512 xv = _mm512_maskz_loadu_ps(tail, row + full);
            _mm512_mask_cvtepi32_storeu_epi8(q + full, tail,
                                             _mm512_cvt_roundps_epi32(_mm512_mul_ps(xv, inv), kNearest));
        }
        tok[m] = s * kInv127;
    }
}

__attribute__((target("avx512f"))) void dequantize_rows_avx512(int32_t* acc, int64_t n, int64_t begin,
                                                               int64_t end, const float* tok, const float* ws,
                                                               const float* bias) {
    const int64_t full = n / 16 * 16;
    const auto tail = static_cast<__mmask16>((1u << (n - full)) - 1u);
    for (int64_t m = begin; m < end; ++m) {
        int32_t* row = acc + m * n;
        const __m512 t = _mm512_set1_ps(tok[m]);
        for (int64_t j = 0; j < full; j += 16) {
            __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(row + j)), t),
                                     _mm512_loadu_ps(ws + j));
            if (bias != nullptr) {
                y = _mm512_add_ps(y, _mm512_loadu_ps(bias + j));
            }
            _mm512_storeu_ps(row + j, y);
        }
        if (tail != 0) {
            const __m512 a = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(tail, row + full));
            __m512 y = _mm512_mul_ps(_mm512_mul_ps(a, t), _mm512_maskz_loadu_ps(tail, ws + full));
            if (bias != nullptr) {
                y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(tail, bias + full));
            }
            _mm512_mask_storeu_ps(row + full, tail, y);
        }
    }
}

/// The AVX2 forms: the same operations in the same order (bit-identical to the scalar loops); the vector part
/// covers whole groups of 8 (quantize: 32) and the rest of a row goes through the scalar loop's body.
__attribute__((target("avx2,fma"))) void quantize_rows_avx2(const float* x, int64_t k, int64_t begin,
                                                            int64_t end, int8_t* xq, float* tok) {
    const int64_t full8 = k / 8 * 8, full32 = k / 32 * 32;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t m = begin; m < end; ++m) {
        const float* row = x + m * k;
        __m256 vmax = _mm256_setzero_ps();
        for (int64_t i = 0; i < full8; i += 8) {
            vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, _mm256_loadu_ps(row + i)));
        }
        float s = core::hmax256(vmax);
        for (int64_t i = full8; i < k; ++i) {
            s = std::max(s, std::fabs(row[i]));
        }
        s = std::max(s, kMinScale);
        const float inv_s = 127.0f / s;
        const __m256 inv = _mm256_set1_ps(inv_s);
        int8_t* q = xq + m * k;
        for (int64_t i = 0; i < full32; i += 32) {  // round half to even (the default MXCSR mode)
            const __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(row + i), inv));
            const __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(row + i + 8), inv));
            const __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(row + i + 16), inv));
            const __m256i d = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(row + i + 24), inv));
            // packs interleave the 128-bit lanes: a0 b0 a1 b1 / c0 d0 c1 d1 -> bytes a0 b0 c0 d0 a1 b1 c1 d1
            const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i),
                                _mm256_permutevar8x32_epi32(packed, order));
        }
        for (int64_t i = full32; i < k; ++i) {
            q[i] = static_cast<int8_t>(static_cast<int32_t>(std::nearbyint(row[i] * inv_s)));
        }
        tok[m] = s * kInv127;
    }
}

__attribute__((target("avx2,fma"))) void dequantize_rows_avx2(int32_t* acc, int64_t n, int64_t begin,
                                                              int64_t end, const float* tok, const float* ws,
                                                              const float* bias) {
    const int64_t full = n / 8 * 8;
    for (int64_t m = begin; m < end; ++m) {
        int32_t* row = acc + m * n;
        const float tm = tok[m];
        const __m256 t = _mm256_set1_ps(tm);
        for (int64_t j = 0; j < full; j += 8) {
            const __m256 a =
                _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + j)));
            __m256 y = _mm256_mul_ps(_mm256_mul_ps(a, t), _mm256_loadu_ps(ws + j));
            if (bias != nullptr) {
                y = _mm256_add_ps(y, _mm256_loadu_ps(bias + j));
            }
            _mm256_storeu_ps(reinterpret_cast<float*>(row + j), y);
        }
        for (int64_t j = full; j < n; ++j) {
            float y = (static_cast<float>(row[j]) * tm) * ws[j];
            if (bias != nullptr) {
                y = y + bias[j];
            }
            row[j] = std::bit_cast<int32_t>(y);
        }
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace

Isa best_isa() { return core::best_cpu_isa(); }

void quantize_rows(const float* x, int64_t k, int64_t begin, int64_t end, int8_t* xq, float* token_scale,
                   Isa isa) {
#ifdef FLASHVSR_INT8_X86
    if (isa == Isa::kAvx512 && core::cpu_supports(isa)) {
        quantize_rows_avx512(x, k, begin, end, xq, token_scale);
        return;
    }
    if (isa == Isa::kAvx2 && core::cpu_supports(isa)) {
        quantize_rows_avx2(x, k, begin, end, xq, token_scale);
        return;
    }
#endif
    quantize_rows_scalar(x, k, begin, end, xq, token_scale);
}

void dequantize_rows(int32_t* acc, int64_t n, int64_t begin, int64_t end, const float* token_scale,
                     const float* wscale, const float* bias, Isa isa) {
#ifdef FLASHVSR_INT8_X86
    if (isa == Isa::kAvx512 && core::cpu_supports(isa)) {
        dequantize_rows_avx512(acc, n, begin, end, token_scale, wscale, bias);
        return;
    }
    if (isa == Isa::kAvx2 && core::cpu_supports(isa)) {
        dequantize_rows_avx2(acc, n, begin, end, token_scale, wscale, bias);
        return;
    }
#endif
    dequantize_rows_scalar(acc, n, begin, end, token_scale, wscale, bias);
}

}  // namespace flashvsr::kernels::int8_rows
