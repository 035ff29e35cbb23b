// AVX2 + FMA register tiles of the CPU block_sparse_attention twin (see attention_tiles.h).
#include "kernels/block_sparse_attention/attention_tiles.h"

#include <algorithm>
#include <stdexcept>

#include "csrc/core/cpu_isa.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FLASHVSR_TILES_X86 1
#endif

namespace flashvsr::kernels::attention_tiles {

bool supported(int64_t head_dim) {
#ifdef FLASHVSR_TILES_X86
    return head_dim > 0 && head_dim % kPanel == 0 && core::cpu_supports(core::CpuIsa::kAvx2);
#else
    (void)head_dim;
    return false;
#endif
}

void pack_keys(const float* k, int64_t keys, int64_t ld, int64_t h, int64_t hd, float* out) {
    for (int64_t p = 0; p < keys / kPanel; ++p) {
        float* panel = out + p * hd * kPanel;
        for (int64_t i = 0; i < kPanel; ++i) {
            const float* row = k + (p * kPanel + i) * ld + h * hd;
            for (int64_t d = 0; d < hd; ++d) {
                panel[d * kPanel + i] = row[d];
            }
        }
    }
}

void pack_values(const float* v, int64_t keys, int64_t ld, int64_t h, int64_t hd, float* out) {
    for (int64_t t = 0; t < hd / kPanel; ++t) {
        float* panel = out + t * keys * kPanel;
        for (int64_t j = 0; j < keys; ++j) {
            std::copy_n(v + j * ld + h * hd + t * kPanel, kPanel, panel + j * kPanel);
        }
    }
}

#ifdef FLASHVSR_TILES_X86
namespace {

constexpr int64_t kRows = 6;        // rows of a tile (12 accumulators + 2 panel vectors + 1 broadcast)
constexpr int64_t kKeyBlock = 256;  // keys per pass: 128 KiB of key or value panels stay in L2

/// The product of a row block and a panel: acc[r] = sum_j a[r, j] * panel[j][0..16) for r < MR, j < n (a with
/// row stride lda; n >= 1), handed to store(r, low 8 columns, high 8 columns). The accumulators are a plain
/// array of __m256 indexed by compile-time constants and the loop runs at least once (do-while): otherwise
/// GCC keeps the array in memory and stores all 12 accumulators every step.
template <int MR, typename Store>
__attribute__((target("avx2,fma"), always_inline)) inline void tile(const float* a, int64_t lda,
                                                                    const float* panel, int64_t n,
                                                                    Store&& store) {
    __m256 c[MR][2];
    for (int r = 0; r < MR; ++r) {
        c[r][0] = _mm256_setzero_ps();
        c[r][1] = _mm256_setzero_ps();
    }
    int64_t j = 0;
    do {
        const __m256 b0 = _mm256_loadu_ps(panel + j * kPanel), b1 = _mm256_loadu_ps(panel + j * kPanel + 8);
        for (int r = 0; r < MR; ++r) {
            const __m256 x = _mm256_broadcast_ss(a + r * lda + j);
            c[r][0] = _mm256_fmadd_ps(x, b0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(x, b1, c[r][1]);
        }
    } while (++j < n);
    for (int r = 0; r < MR; ++r) {
        store(r, c[r][0], c[r][1]);
    }
}

/// s[MR x 16] = scale * q[MR x n] (row stride ldq) * panel [n][16].
template <int MR>
__attribute__((target("avx2,fma"))) void score_tile(const float* q, int64_t ldq, const float* panel,
                                                    int64_t n, float scale, float* s, int64_t lds) {
    const __m256 vs = _mm256_set1_ps(scale);
    const auto store = [&](int r, __m256 lo, __m256 hi) __attribute__((target("avx2,fma"))) {
        _mm256_storeu_ps(s + r * lds, _mm256_mul_ps(lo, vs));
        _mm256_storeu_ps(s + r * lds + 8, _mm256_mul_ps(hi, vs));
    };
    tile<MR>(q, ldq, panel, n, store);
}

/// o[MR x 16] += p[MR x n] (row stride ldp) * panel [n][16].
template <int MR>
__attribute__((target("avx2,fma"))) void value_tile(const float* p, int64_t ldp, const float* panel,
                                                    int64_t n, float* o, int64_t ldo) {
    const auto store = [&](int r, __m256 lo, __m256 hi) __attribute__((target("avx2,fma"))) {
        float* row = o + r * ldo;
        _mm256_storeu_ps(row, _mm256_add_ps(_mm256_loadu_ps(row), lo));
        _mm256_storeu_ps(row + 8, _mm256_add_ps(_mm256_loadu_ps(row + 8), hi));
    };
    tile<MR>(p, ldp, panel, n, store);
}

/// fn.template operator()<mr>() for the tile height mr (1..kRows), tried from MR down.
template <int MR = kRows, typename Fn>
void with_rows(int64_t mr, Fn&& fn) {
    if constexpr (MR == 1) {
        fn.template operator()<1>();
    } else if (mr == MR) {
        fn.template operator()<MR>();
    } else {
        with_rows<MR - 1>(mr, fn);
    }
}

}  // namespace

void scores(const float* q, int64_t ldq, int64_t rows, const float* kp, int64_t key0, int64_t n, int64_t hd,
            float scale, float* s, int64_t lds) {
    for (int64_t k0 = 0; k0 < n; k0 += kKeyBlock) {
        const int64_t k1 = std::min(n, k0 + kKeyBlock);
        for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
            with_rows(std::min(kRows, rows - r0), [&]<int MR>() {
                for (int64_t j = k0; j < k1; j += kPanel) {
                    score_tile<MR>(q + r0 * ldq, ldq, kp + (key0 + j) * hd, hd, scale, s + r0 * lds + j, lds);
                }
            });
        }
    }
}

void accumulate(const float* p, int64_t ldp, int64_t rows, const float* vp, int64_t keys, int64_t key0,
                int64_t n, int64_t hd, float* o, int64_t ldo) {
    for (int64_t k0 = 0; k0 < n; k0 += kKeyBlock) {
        const int64_t len = std::min(kKeyBlock, n - k0);
        for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
            with_rows(std::min(kRows, rows - r0), [&]<int MR>() {
                for (int64_t t = 0; t < hd / kPanel; ++t) {
                    value_tile<MR>(p + r0 * ldp + k0, ldp, vp + (t * keys + key0 + k0) * kPanel, len,
                                   o + r0 * ldo + t * kPanel, ldo);
                }
            });
        }
    }
}

#else

void scores(const float*, int64_t, int64_t, const float*, int64_t, int64_t, int64_t, float, float*, int64_t) {
    throw std::logic_error("attention_tiles::scores: this build has no AVX2 tiles (check supported() first)");
}

void accumulate(const float*, int64_t, int64_t, const float*, int64_t, int64_t, int64_t, int64_t, float*,
                int64_t) {
    throw std::logic_error(
        "attention_tiles::accumulate: this build has no AVX2 tiles (check supported() first)");
}

#endif

}  // namespace flashvsr::kernels::attention_tiles
