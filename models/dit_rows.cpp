// Fused row loops of the DiT's token-wise operations (see dit_rows.h).
#include "models/dit_rows.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <type_traits>
#include <vector>

#include "csrc/core/cpu_isa.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "csrc/core/avx2_reduce.h"
#define FLASHVSR_ROWS_X86 1
#endif

namespace flashvsr::models {
namespace {

constexpr int64_t kGrainRows = 16;

// ---- the ATen compositions (reference) ----------------------------------------------------------------

at::Tensor reference_norm_modulate(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale,
                                   double eps) {
    return at::layer_norm(x, {x.size(-1)}, {}, {}, eps) * (1 + scale) + shift;
}

at::Tensor reference_rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
    const auto xf = x.to(at::promote_types(x.scalar_type(), at::kFloat));
    return (xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type()) * weight;
}

/// Whether the fused loops take x: a contiguous, non-empty CPU float32 / float64 tensor, with per-channel
/// tensors of its dtype holding one value per channel (x's last dimension).
bool fusable(const at::Tensor& x, std::initializer_list<const at::Tensor*> per_channel) {
    if (!x.is_cpu() || !x.is_contiguous() || x.dim() < 1 || x.numel() == 0 ||
        (x.scalar_type() != at::kFloat && x.scalar_type() != at::kDouble)) {
        return false;
    }
    for (const at::Tensor* t : per_channel) {
        if (!t->defined() || !t->is_cpu() || t->scalar_type() != x.scalar_type() ||
            t->numel() != x.size(-1)) {
            return false;
        }
    }
    return true;
}

// ---- scalar row loops (float64 always, float32 where the CPU or the sizes allow no vector form) ---------

template <typename T>
T sum_of(const T* x, int64_t n) {
    T acc[8] = {};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        for (int k = 0; k < 8; ++k) {
            acc[k] += x[j + k];
        }
    }
    for (; j < n; ++j) {
        acc[0] += x[j];
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

template <typename T>
T sum_of_squares(const T* x, int64_t n, T center) {
    T acc[8] = {};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        for (int k = 0; k < 8; ++k) {
            const T d = x[j + k] - center;
            acc[k] += d * d;
        }
    }
    for (; j < n; ++j) {
        const T d = x[j] - center;
        acc[0] += d * d;
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

template <typename T>
void norm_modulate_row(const T* x, T* out, int64_t c, const T* onep, const T* shift, T eps) {
    const T mean = sum_of(x, c) / static_cast<T>(c);
    const T var = sum_of_squares(x, c, mean) / static_cast<T>(c);
    const T rstd = T(1) / std::sqrt(var + eps);
    const T bias = -mean * rstd;
    for (int64_t j = 0; j < c; ++j) {
        const T y = x[j] * rstd + bias;
        out[j] = y * onep[j] + shift[j];
    }
}

/// RMSNorm of one row in place; rope (cos/sin rows of hd/2, null: no rotation) for every head of hd channels.
template <typename T>
void rms_rope_row(T* x, int64_t c, const T* w, T eps, const T* cos, const T* sin, int64_t hd) {
    const T r = T(1) / std::sqrt(sum_of_squares(x, c, T(0)) / static_cast<T>(c) + eps);
    for (int64_t j = 0; j < c; ++j) {
        x[j] = (x[j] * r) * w[j];
    }
    if (cos == nullptr) {
        return;
    }
    for (int64_t h0 = 0; h0 < c; h0 += hd) {
        for (int64_t j = 0; j < hd / 2; ++j) {
            const T re = x[h0 + 2 * j], im = x[h0 + 2 * j + 1];
            x[h0 + 2 * j] = re * cos[j] - im * sin[j];
            x[h0 + 2 * j + 1] = re * sin[j] + im * cos[j];
        }
    }
}

// ---- AVX-512 row loops (float32) ----------------------------------------------------------------------

#ifdef FLASHVSR_ROWS_X86
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

/// Sum of (x - center)^2 (square) or of x, 4 x 16 lanes, then a tree over the lanes.
__attribute__((target("avx512f"))) float sum512(const float* x, int64_t n, float center, bool square) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    const __m512 cv = _mm512_set1_ps(center);
    int64_t j = 0;
    for (; j + 64 <= n; j += 64) {
        for (int k = 0; k < 4; ++k) {
            const __m512 v = _mm512_loadu_ps(x + j + 16 * k);
            if (square) {
                const __m512 d = _mm512_sub_ps(v, cv);
                acc[k] = _mm512_fmadd_ps(d, d, acc[k]);
            } else {
                acc[k] = _mm512_add_ps(acc[k], v);
            }
        }
    }
    for (; j < n; j += 16) {
        const auto m = static_cast<__mmask16>(n - j >= 16 ? 0xFFFF : (1u << (n - j)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + j);
        if (square) {
            const __m512 d = _mm512_maskz_sub_ps(m, v, cv);
            acc[0] = _mm512_fmadd_ps(d, d, acc[0]);
        } else {
            acc[0] = _mm512_add_ps(acc[0], v);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

__attribute__((target("avx512f"))) void norm_modulate_row512(const float* x, float* out, int64_t c,
                                                             const float* onep, const float* shift,
                                                             float eps) {
    const float mean = sum512(x, c, 0.0f, false) / static_cast<float>(c);
    const float var = sum512(x, c, mean, true) / static_cast<float>(c);
    const float rstd = 1.0f / std::sqrt(var + eps);
    const __m512 rv = _mm512_set1_ps(rstd), bv = _mm512_set1_ps(-mean * rstd);
    for (int64_t j = 0; j < c; j += 16) {
        const auto m = static_cast<__mmask16>(c - j >= 16 ? 0xFFFF : (1u << (c - j)) - 1);
        const __m512 y = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + j), rv), bv);
        _mm512_mask_storeu_ps(out + j, m,
                              _mm512_add_ps(_mm512_mul_ps(y, _mm512_maskz_loadu_ps(m, onep + j)),
                                            _mm512_maskz_loadu_ps(m, shift + j)));
    }
}

/// As rms_rope_row; c a multiple of 16 and, with rope, hd a multiple of 16. cs2 / sn2: the row's tables
/// spread to one entry per channel of a head (cos, cos, ... and -sin, +sin, ...).
__attribute__((target("avx512f"))) void rms_rope_row512(float* x, int64_t c, const float* w, float eps,
                                                        const float* cs2, const float* sn2, int64_t hd) {
    const float r = 1.0f / std::sqrt(sum512(x, c, 0.0f, true) / static_cast<float>(c) + eps);
    const __m512 rv = _mm512_set1_ps(r);
    for (int64_t j = 0; j < c; j += 16) {
        __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + j), rv), _mm512_loadu_ps(w + j));
        if (cs2 != nullptr) {
            const int64_t k = j % hd;
            // (re, im) -> (re c - im s, im c + re s): y * (c, c) + swap(y) * (-s, s)
            const __m512 swapped = _mm512_permute_ps(y, 0xB1);
            y = _mm512_add_ps(_mm512_mul_ps(y, _mm512_loadu_ps(cs2 + k)),
                              _mm512_mul_ps(swapped, _mm512_loadu_ps(sn2 + k)));
        }
        _mm512_storeu_ps(x + j, y);
    }
}

/// The AVX2 forms of the three loops above, for c (and hd) multiples of 8.
__attribute__((target("avx2,fma"))) float sum256(const float* x, int64_t n, float center, bool square) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const __m256 cv = _mm256_set1_ps(center);
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        for (int k = 0; k < 4; ++k) {
            const __m256 v = _mm256_loadu_ps(x + j + 8 * k);
            if (square) {
                const __m256 d = _mm256_sub_ps(v, cv);
                acc[k] = _mm256_fmadd_ps(d, d, acc[k]);
            } else {
                acc[k] = _mm256_add_ps(acc[k], v);
            }
        }
    }
    for (; j < n; j += 8) {
        const __m256 v = _mm256_loadu_ps(x + j);
        if (square) {
            const __m256 d = _mm256_sub_ps(v, cv);
            acc[0] = _mm256_fmadd_ps(d, d, acc[0]);
        } else {
            acc[0] = _mm256_add_ps(acc[0], v);
        }
    }
    return core::hsum256(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

__attribute__((target("avx2,fma"))) void norm_modulate_row256(const float* x, float* out, int64_t c,
                                                              const float* onep, const float* shift,
                                                              float eps) {
    const float mean = sum256(x, c, 0.0f, false) / static_cast<float>(c);
    const float var = sum256(x, c, mean, true) / static_cast<float>(c);
    const float rstd = 1.0f / std::sqrt(var + eps);
    const __m256 rv = _mm256_set1_ps(rstd), bv = _mm256_set1_ps(-mean * rstd);
    for (int64_t j = 0; j < c; j += 8) {
        const __m256 y = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j), rv), bv);
        _mm256_storeu_ps(
            out + j, _mm256_add_ps(_mm256_mul_ps(y, _mm256_loadu_ps(onep + j)), _mm256_loadu_ps(shift + j)));
    }
}

__attribute__((target("avx2,fma"))) void rms_rope_row256(float* x, int64_t c, const float* w, float eps,
                                                         const float* cs2, const float* sn2, int64_t hd) {
    const float r = 1.0f / std::sqrt(sum256(x, c, 0.0f, true) / static_cast<float>(c) + eps);
    const __m256 rv = _mm256_set1_ps(r);
    for (int64_t j = 0; j < c; j += 8) {
        __m256 y = _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j), rv), _mm256_loadu_ps(w + j));
        if (cs2 != nullptr) {
            const int64_t k = j % hd;
            const __m256 swapped = _mm256_permute_ps(y, 0xB1);
            y = _mm256_add_ps(_mm256_mul_ps(y, _mm256_loadu_ps(cs2 + k)),
                              _mm256_mul_ps(swapped, _mm256_loadu_ps(sn2 + k)));
        }
        _mm256_storeu_ps(x + j, y);
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

/// The form the float32 loops take for rows of c channels and heads of hd: the requested one, or the next
/// narrower one where the CPU or the sizes do not allow it (kScalar: the scalar loops).
core::CpuIsa row_isa(core::CpuIsa want, int64_t c, int64_t hd) {
    if (want == core::CpuIsa::kAvx512 && core::cpu_supports(want) && c % 16 == 0 && hd % 16 == 0) {
        return want;
    }
    if (want != core::CpuIsa::kScalar && core::cpu_supports(core::CpuIsa::kAvx2) && c % 8 == 0 &&
        hd % 8 == 0) {
        return core::CpuIsa::kAvx2;
    }
    return core::CpuIsa::kScalar;
}

core::CpuIsa wanted_isa(RowOpsImpl impl) {
    switch (impl) {
        case RowOpsImpl::kScalar:
            return core::CpuIsa::kScalar;
        case RowOpsImpl::kAvx2:
            return core::CpuIsa::kAvx2;
        default:
            return core::best_cpu_isa();
    }
}

template <typename T>
void norm_modulate_rows(const T* x, T* out, int64_t rows, int64_t c, const T* onep, const T* shift, T eps,
                        core::CpuIsa want) {
    const core::CpuIsa isa = std::is_same_v<T, float> ? row_isa(want, c, 16) : core::CpuIsa::kScalar;
    at::parallel_for(0, rows, kGrainRows, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
#ifdef FLASHVSR_ROWS_X86
            if constexpr (std::is_same_v<T, float>) {
                if (isa == core::CpuIsa::kAvx512) {
                    norm_modulate_row512(x + i * c, out + i * c, c, onep, shift, eps);
                    continue;
                }
                if (isa == core::CpuIsa::kAvx2) {
                    norm_modulate_row256(x + i * c, out + i * c, c, onep, shift, eps);
                    continue;
                }
            }
#endif
            norm_modulate_row<T>(x + i * c, out + i * c, c, onep, shift, eps);
        }
    });
}

template <typename T>
void rms_rope_rows(T* x, int64_t rows, int64_t c, const T* w, T eps, const T* cos, const T* sin, int64_t hd,
                   core::CpuIsa want) {
    const core::CpuIsa isa =
        std::is_same_v<T, float> ? row_isa(want, c, cos != nullptr ? hd : 16) : core::CpuIsa::kScalar;
    at::parallel_for(0, rows, kGrainRows, [&](int64_t begin, int64_t end) {
        std::vector<T> spread(cos != nullptr && isa != core::CpuIsa::kScalar ? static_cast<size_t>(2 * hd)
                                                                             : 0);
        for (int64_t i = begin; i < end; ++i) {
            const T* ci = cos != nullptr ? cos + i * (hd / 2) : nullptr;
            const T* si = sin != nullptr ? sin + i * (hd / 2) : nullptr;
#ifdef FLASHVSR_ROWS_X86
            if constexpr (std::is_same_v<T, float>) {
                if (isa != core::CpuIsa::kScalar) {
                    float* cs2 = nullptr;
                    float* sn2 = nullptr;
                    if (ci != nullptr) {
                        cs2 = spread.data(), sn2 = spread.data() + hd;
                        for (int64_t j = 0; j < hd / 2; ++j) {
                            cs2[2 * j] = cs2[2 * j + 1] = ci[j];
                            sn2[2 * j] = -si[j], sn2[2 * j + 1] = si[j];
                        }
                    }
                    if (isa == core::CpuIsa::kAvx512) {
                        rms_rope_row512(x + i * c, c, w, eps, cs2, sn2, hd);
                    } else {
                        rms_rope_row256(x + i * c, c, w, eps, cs2, sn2, hd);
                    }
                    continue;
                }
            }
#endif
            rms_rope_row<T>(x + i * c, c, w, eps, ci, si, hd);
        }
    });
}

void rms_norm_rope_impl(at::Tensor& x, const at::Tensor& weight, double eps, const RopeTables* tables,
                        int64_t num_heads, RowOpsImpl impl) {
    const int64_t c = x.dim() > 0 ? x.size(-1) : 0;
    const bool fused = impl != RowOpsImpl::kReference && fusable(x, {&weight});
    at::Tensor cos, sin;
    int64_t hd = c;
    if (fused && tables != nullptr) {
        TORCH_CHECK(num_heads > 0 && c % num_heads == 0 && (c / num_heads) % 2 == 0, "rms_norm_rope_: ", c,
                    " channels do not split into ", num_heads, " heads of even size");
        hd = c / num_heads;
        const int64_t rows = x.numel() / c;
        TORCH_CHECK(tables->cos.sizes() == at::IntArrayRef({rows, hd / 2}) &&
                        tables->sin.sizes() == tables->cos.sizes(),
                    "rms_norm_rope_: tables ", tables->cos.sizes(), " do not match ", rows,
                    " tokens, head_dim ", hd);
        cos = tables->cos.to(x.scalar_type()).contiguous();
        sin = tables->sin.to(x.scalar_type()).contiguous();
    }
    if (!fused) {
        at::Tensor y = reference_rms_norm(x, weight, eps);
        if (tables != nullptr) {
            y = apply_rope(y, *tables, num_heads);
        }
        x.copy_(y);
        return;
    }
    const auto w = weight.contiguous();
    const int64_t rows = x.numel() / c;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rms_norm_rope_", [&] {
        rms_rope_rows<scalar_t>(x.data_ptr<scalar_t>(), rows, c, w.data_ptr<scalar_t>(),
                                static_cast<scalar_t>(eps),
                                cos.defined() ? cos.data_ptr<scalar_t>() : nullptr,
                                sin.defined() ? sin.data_ptr<scalar_t>() : nullptr, hd, wanted_isa(impl));
    });
}

}  // namespace

at::Tensor norm_modulate(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale, double eps,
                         RowOpsImpl impl) {
    if (impl == RowOpsImpl::kReference || !fusable(x, {&shift, &scale})) {
        return reference_norm_modulate(x, shift, scale, eps);
    }
    const int64_t c = x.size(-1), rows = x.numel() / c;
    auto out = at::empty_like(x);
    const auto onep = (1 + scale).contiguous();
    const auto sh = shift.contiguous();
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "norm_modulate", [&] {
        norm_modulate_rows<scalar_t>(x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), rows, c,
                                     onep.data_ptr<scalar_t>(), sh.data_ptr<scalar_t>(),
                                     static_cast<scalar_t>(eps), wanted_isa(impl));
    });
    return out;
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps, RowOpsImpl impl) {
    if (impl == RowOpsImpl::kReference || !fusable(x, {&weight})) {
        return reference_rms_norm(x, weight, eps);
    }
    auto out = x.clone();
    rms_norm_rope_impl(out, weight, eps, nullptr, 1, impl);
    return out;
}

void rms_norm_(at::Tensor& x, const at::Tensor& weight, double eps, RowOpsImpl impl) {
    rms_norm_rope_impl(x, weight, eps, nullptr, 1, impl);
}

void rms_norm_rope_(at::Tensor& x, const at::Tensor& weight, double eps, const RopeTables& tables,
                    int64_t num_heads, RowOpsImpl impl) {
    rms_norm_rope_impl(x, weight, eps, &tables, num_heads, impl);
}

}  // namespace flashvsr::models
