// The fused online-softmax step of the CPU attention twin (see online_softmax.h).
#include "kernels/block_sparse_attention/online_softmax.h"

#include "csrc/core/cpu_isa.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "csrc/core/avx2_reduce.h"
#define FLASHVSR_SOFTMAX_X86 1
#endif

namespace flashvsr::kernels::softmax_rows {
namespace {

constexpr int64_t kBlock = 128;  // columns per key window

/// Whether block b of the piece is kept (keep == null: all are).
bool kept(const uint8_t* keep, int64_t b) { return keep == nullptr || keep[b]; }

template <typename T>
void step_scalar(T* s, int64_t rows, int64_t w, int64_t ld_s, const uint8_t* keep, T* m, T* l, T* o,
                 int64_t ld_o, int64_t hd) {
    const int64_t blocks = w / kBlock;
    for (int64_t r = 0; r < rows; ++r) {
        T* row = s + r * ld_s;
        T mx = m[r];
        for (int64_t b = 0; b < blocks; ++b) {
            if (kept(keep, b)) {
                for (int64_t j = b * kBlock; j < (b + 1) * kBlock; ++j) {
                    mx = std::max(mx, row[j]);
                }
            }
        }
        if (mx == -std::numeric_limits<T>::infinity()) {  // nothing kept so far: p = 0, m, l, o unchanged
            std::fill(row, row + w, T(0));
            continue;
        }
        T sum = 0;
        for (int64_t b = 0; b < blocks; ++b) {
            T* blk = row + b * kBlock;
            if (!kept(keep, b)) {
                std::fill(blk, blk + kBlock, T(0));
                continue;
            }
            for (int64_t j = 0; j < kBlock; ++j) {
                blk[j] = std::exp(blk[j] - mx);
                sum += blk[j];
            }
        }
        const T alpha = std::exp(m[r] - mx);  // 0 when m[r] = -inf (o and l are still 0)
        l[r] = l[r] * alpha + sum;
        m[r] = mx;
        if (alpha != T(1)) {
            T* orow = o + r * ld_o;
            for (int64_t d = 0; d < hd; ++d) {
                orow[d] *= alpha;
            }
        }
    }
}

#ifdef FLASHVSR_SOFTMAX_X86
// GCC 12 reports its own _mm512_undefined_* placeholders inside the intrinsics as maybe-uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

/// exp(x) for x <= 0: x = n ln2 + r, |r| <= ln2/2, exp(r) = 1 + r + r^2 P(r) (P of degree 5, the classic
/// single-precision minimax coefficients), scaled by 2^n with scalef (exact, denormals rounded once).
/// x is clamped at -120 first: exp(-120) < 2^-150 gives 0, and -inf becomes 0 without NaN.
__attribute__((target("avx512f"))) inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-120.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // n * 0.693359375 is exact
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 r2 = _mm512_mul_ps(r, r);
    const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, n);
}

__attribute__((target("avx512f"))) void exp_avx512(const float* x, float* y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(y + i, exp512(_mm512_loadu_ps(x + i)));
    }
    if (i < n) {
        const __mmask16 tail = static_cast<__mmask16>((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, tail, exp512(_mm512_maskz_loadu_ps(tail, x + i)));
    }
}

__attribute__((target("avx512f"))) void step_avx512(float* s, int64_t rows, int64_t w, int64_t ld_s,
                                                    const uint8_t* keep, float* m, float* l, float* o,
                                                    int64_t ld_o, int64_t hd) {
    const int64_t blocks = w / kBlock;
    const int64_t hd_full = hd / 16 * 16;
    const __mmask16 hd_tail = static_cast<__mmask16>((1u << (hd - hd_full)) - 1u);
    for (int64_t r = 0; r < rows; ++r) {
        float* row = s + r * ld_s;
        __m512 vmax = _mm512_set1_ps(m[r]);
        for (int64_t b = 0; b < blocks; ++b) {
            if (kept(keep, b)) {
                const float* blk = row + b * kBlock;
                for (int64_t j = 0; j < kBlock; j += 32) {
                    vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(blk + j));
                    vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(blk + j + 16));
                }
            }
        }
        const float mx = _mm512_reduce_max_ps(vmax);
        if (mx == -std::numeric_limits<float>::infinity()) {  // nothing kept so far: p = 0, m, l, o unchanged
            std::fill(row, row + w, 0.0f);
            continue;
        }
        const __m512 vm = _mm512_set1_ps(mx);
        __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
        for (int64_t b = 0; b < blocks; ++b) {
            float* blk = row + b * kBlock;
            if (!kept(keep, b)) {
                std::fill(blk, blk + kBlock, 0.0f);
                continue;
            }
            for (int64_t j = 0; j < kBlock; j += 32) {
                const __m512 p0 = exp512(_mm512_sub_ps(_mm512_loadu_ps(blk + j), vm));
                const __m512 p1 = exp512(_mm512_sub_ps(_mm512_loadu_ps(blk + j + 16), vm));
                _mm512_storeu_ps(blk + j, p0);
                _mm512_storeu_ps(blk + j + 16, p1);
                sum0 = _mm512_add_ps(sum0, p0);
                sum1 = _mm512_add_ps(sum1, p1);
            }
        }
        const float alpha = std::exp(m[r] - mx);  // 0 when m[r] = -inf (o and l are still 0)
        l[r] = l[r] * alpha + _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1));
        m[r] = mx;
        if (alpha != 1.0f) {
            float* orow = o + r * ld_o;
            const __m512 va = _mm512_set1_ps(alpha);
            for (int64_t d = 0; d < hd_full; d += 16) {
                _mm512_storeu_ps(orow + d, _mm512_mul_ps(_mm512_loadu_ps(orow + d), va));
            }
            if (hd_tail != 0) {
                _mm512_mask_storeu_ps(orow + hd_full, hd_tail,
                                      _mm512_mul_ps(_mm512_maskz_loadu_ps(hd_tail, orow + hd_full), va));
            }
        }
    }
}

/// 2^e for integer lanes e in [-126, 127], built in the exponent field.
__attribute__((target("avx2,fma"))) inline __m256 pow2_256(__m256i e) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
}

/// exp(x) for x <= 0, the AVX2 form of exp512: the same reduction and polynomial; 2^n applied as two exact
/// powers of two (n = a + b, a = floor(n/2), both normal floats), so the one rounding is the last product's,
/// as scalef's (denormal results included).
__attribute__((target("avx2,fma"))) inline __m256 exp256(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-120.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 r2 = _mm256_mul_ps(r, r);
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0f));
    const __m256i ni = _mm256_cvtps_epi32(n);  // exact: n is integral, in [-174, 0]
    const __m256i a = _mm256_srai_epi32(ni, 1);
    const __m256i b = _mm256_sub_epi32(ni, a);
    return _mm256_mul_ps(_mm256_mul_ps(y, pow2_256(a)), pow2_256(b));
}

__attribute__((target("avx2,fma"))) void exp_avx2(const float* x, float* y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, exp256(_mm256_loadu_ps(x + i)));
    }
    if (i < n) {
        float in[8] = {}, out[8];
        std::copy(x + i, x + n, in);
        _mm256_storeu_ps(out, exp256(_mm256_loadu_ps(in)));
        std::copy(out, out + (n - i), y + i);
    }
}

__attribute__((target("avx2,fma"))) void step_avx2(float* s, int64_t rows, int64_t w, int64_t ld_s,
                                                   const uint8_t* keep, float* m, float* l, float* o,
                                                   int64_t ld_o, int64_t hd) {
    const int64_t blocks = w / kBlock;
    const int64_t hd_full = hd / 8 * 8;
    for (int64_t r = 0; r < rows; ++r) {
        float* row = s + r * ld_s;
        __m256 vmax = _mm256_set1_ps(m[r]);
        for (int64_t b = 0; b < blocks; ++b) {
            if (kept(keep, b)) {
                const float* blk = row + b * kBlock;
                for (int64_t j = 0; j < kBlock; j += 16) {
                    vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(blk + j));
                    vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(blk + j + 8));
                }
            }
        }
        const float mx = core::hmax256(vmax);
        if (mx == -std::numeric_limits<float>::infinity()) {  // nothing kept so far: p = 0, m, l, o unchanged
            std::fill(row, row + w, 0.0f);
            continue;
        }
        const __m256 vm = _mm256_set1_ps(mx);
        __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
        for (int64_t b = 0; b < blocks; ++b) {
            float* blk = row + b * kBlock;
            if (!kept(keep, b)) {
                std::fill(blk, blk + kBlock, 0.0f);
                continue;
            }
            for (int64_t j = 0; j < kBlock; j += 16) {
                const __m256 p0 = exp256(_mm256_sub_ps(_mm256_loadu_ps(blk + j), vm));
                const __m256 p1 = exp256(_mm256_sub_ps(_mm256_loadu_ps(blk + j + 8), vm));
                _mm256_storeu_ps(blk + j, p0);
                _mm256_storeu_ps(blk + j + 8, p1);
                sum0 = _mm256_add_ps(sum0, p0);
                sum1 = _mm256_add_ps(sum1, p1);
            }
        }
        const float alpha = std::exp(m[r] - mx);  // 0 when m[r] = -inf (o and l are still 0)
        l[r] = l[r] * alpha + core::hsum256(_mm256_add_ps(sum0, sum1));
        m[r] = mx;
        if (alpha != 1.0f) {
            float* orow = o + r * ld_o;
            const __m256 va = _mm256_set1_ps(alpha);
            int64_t d = 0;
            for (; d < hd_full; d += 8) {
                _mm256_storeu_ps(orow + d, _mm256_mul_ps(_mm256_loadu_ps(orow + d), va));
            }
            for (; d < hd; ++d) {
                orow[d] *= alpha;
            }
        }
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace

Isa best_isa() { return core::best_cpu_isa(); }

void exp_nonpositive(const float* x, float* y, int64_t n, Isa isa) {
#ifdef FLASHVSR_SOFTMAX_X86
    if (isa == Isa::kAvx512 && core::cpu_supports(isa)) {
        exp_avx512(x, y, n);
        return;
    }
    if (isa == Isa::kAvx2 && core::cpu_supports(isa)) {
        exp_avx2(x, y, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; ++i) {
        y[i] = std::exp(x[i]);
    }
}

template <typename T>
void online_softmax_step(T* s, int64_t rows, int64_t w, int64_t ld_s, const uint8_t* keep, T* m, T* l, T* o,
                         int64_t ld_o, int64_t head_dim, Isa isa) {
#ifdef FLASHVSR_SOFTMAX_X86
    if constexpr (std::is_same_v<T, float>) {
        if (isa == Isa::kAvx512 && core::cpu_supports(isa)) {
            step_avx512(s, rows, w, ld_s, keep, m, l, o, ld_o, head_dim);
            return;
        }
        if (isa == Isa::kAvx2 && core::cpu_supports(isa)) {
            step_avx2(s, rows, w, ld_s, keep, m, l, o, ld_o, head_dim);
            return;
        }
    }
#endif
    (void)isa;
    step_scalar<T>(s, rows, w, ld_s, keep, m, l, o, ld_o, head_dim);
}

template <typename T>
void finish_rows(T* o, int64_t rows, int64_t ld_o, int64_t head_dim, const T* l) {
    for (int64_t r = 0; r < rows; ++r) {
        if (l[r] > T(0)) {
            T* orow = o + r * ld_o;
            for (int64_t d = 0; d < head_dim; ++d) {
                orow[d] /= l[r];
            }
        }
    }
}

template void online_softmax_step<float>(float*, int64_t, int64_t, int64_t, const uint8_t*, float*, float*,
                                         float*, int64_t, int64_t, Isa);
template void online_softmax_step<double>(double*, int64_t, int64_t, int64_t, const uint8_t*, double*,
                                          double*, double*, int64_t, int64_t, Isa);
template void finish_rows<float>(float*, int64_t, int64_t, int64_t, const float*);
template void finish_rows<double>(double*, int64_t, int64_t, int64_t, const double*);

}  // namespace flashvsr::kernels::softmax_rows
