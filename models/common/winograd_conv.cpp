#include "models/common/winograd_conv.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>

#include "csrc/core/cpu_isa.h"
#include "models/common/linear.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FLASHVSR_WINOGRAD_X86 1
#endif

namespace flashvsr::models {
namespace {

constexpr int64_t kAlpha = 16;  // 4x4 transformed tile

/// Bᵀ (4x4) and Aᵀ (2x4) of F(2x2, 3x3) as float64 tensors on `device`.
at::Tensor matrix(std::vector<double> values, int64_t rows, int64_t cols, at::Device device) {
    return at::tensor(values, at::TensorOptions().dtype(at::kDouble)).view({rows, cols}).to(device);
}
at::Tensor bt_matrix(at::Device d) {
    return matrix({1, 0, -1, 0, 0, 1, 1, 0, 0, -1, 1, 0, 0, 1, 0, -1}, 4, 4, d);
}
at::Tensor at_matrix(at::Device d) { return matrix({1, 1, 1, 0, 0, 1, -1, -1}, 2, 4, d); }

/// Tile geometry of one call: x [1, Ci, F, hp, wp] -> output [ho, wo] in th x tw tiles of 2x2.
struct Tiles {
    int64_t ci, f, hp, wp, ho, wo, th, tw;
    int64_t n() const { return th * tw; }
};

/// Strides of a conv3d weight [Co, Ci, kt, 3, 3], in elements.
struct WeightStrides {
    int64_t o, i, k, r, s;
};

/// Which part of a weight one transform call covers: every output channel, taps [k0, k0 + nk), input
/// channels [i0, i0 + ni); written to u[e * xi + o * ld + (k - k0) * ni + (i - i0)].
struct WeightBlock {
    int64_t k0, nk, i0, ni, ld, xi;
};

/// G applied to three values (stride apart) -> four (out_stride apart): g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2.
/// Adds, then a halving: no multiply-add a compiler could fuse, so the scalar and vector forms round alike.
template <typename V>
inline void apply_g(const V* g, int64_t stride, V* out, int64_t out_stride) {
    const V s = g[0] + g[2 * stride];
    out[0] = g[0];
    out[out_stride] = (s + g[stride]) * V(0.5);
    out[2 * out_stride] = (s - g[stride]) * V(0.5);
    out[3 * out_stride] = g[2 * stride];
}

#ifdef FLASHVSR_WINOGRAD_X86
/// apply_g on eight float32 lanes.
__attribute__((target("avx2,fma"), always_inline)) inline void apply_g_avx2(const __m256* g, int64_t stride,
                                                                            __m256* out, int64_t out_stride) {
    const __m256 half = _mm256_set1_ps(0.5f);
    const __m256 s = _mm256_add_ps(g[0], g[2 * stride]);
    out[0] = g[0];
    out[out_stride] = _mm256_mul_ps(_mm256_add_ps(s, g[stride]), half);
    out[2 * out_stride] = _mm256_mul_ps(_mm256_sub_ps(s, g[stride]), half);
    out[3 * out_stride] = g[2 * stride];
}

/// Eight input channels at a time (the same operations as the scalar form, so the same bits). `src` points
/// at tap (0, 0) of the first input channel; input channels at stride 1. Returns how many were done.
__attribute__((target("avx2,fma"))) int64_t weight_row_avx2(const float* src, int64_t sr, int64_t ss,
                                                            int64_t ni, float* dst, int64_t xi) {
    int64_t i = 0;
    for (; i + 8 <= ni; i += 8) {
        __m256 g[9], rows[12], t[16];
        for (int64_t r = 0; r < 3; ++r) {
            for (int64_t c = 0; c < 3; ++c) {
                g[3 * r + c] = _mm256_loadu_ps(src + r * sr + c * ss + i);
            }
        }
        for (int64_t c = 0; c < 3; ++c) {
            apply_g_avx2(g + c, 3, rows + c, 3);
        }
        for (int64_t a = 0; a < 4; ++a) {
            apply_g_avx2(rows + 3 * a, 1, t + 4 * a, 1);
        }
        for (int64_t e = 0; e < kAlpha; ++e) {
            _mm256_storeu_ps(dst + e * xi + i, t[e]);
        }
    }
    return i;
}
#endif

/// u = (G w Gᵀ) for w's block `b` (see WeightBlock), in T (the coefficients are ±1 and ½: a value is
/// rounded at most four times). The inner loop runs over input channels: with winograd_weight_layout's
/// strides its loads are contiguous (and vectorised for float32 on AVX2).
template <typename T>
void weight_transform_cpu(const T* w, const WeightStrides& st, int64_t co, const WeightBlock& b, T* u) {
    bool avx2 = false;
#ifdef FLASHVSR_WINOGRAD_X86
    avx2 = std::is_same_v<T, float> && st.i == 1 && core::cpu_supports(core::CpuIsa::kAvx2);
#endif
    at::parallel_for(0, co, 1, [&](int64_t begin, int64_t end) {
        for (int64_t o = begin; o < end; ++o) {
            for (int64_t k = b.k0; k < b.k0 + b.nk; ++k) {  // taps outer: the 16 outputs are written in order
                const T* base = w + o * st.o + k * st.k + b.i0 * st.i;
                T* dst = u + o * b.ld + (k - b.k0) * b.ni;
                int64_t i = 0;
#ifdef FLASHVSR_WINOGRAD_X86
                if constexpr (std::is_same_v<T, float>) {
                    if (avx2) {
                        i = weight_row_avx2(base, st.r, st.s, b.ni, dst, b.xi);
                    }
                }
#endif
                for (; i < b.ni; ++i) {
                    const T* src = base + i * st.i;
                    T g[9], rows[12], t[16];  // g [3][3] -> rows G g [4][3] -> t (G g) Gᵀ [4][4]
                    for (int64_t r = 0; r < 3; ++r) {
                        for (int64_t c = 0; c < 3; ++c) {
                            g[3 * r + c] = src[r * st.r + c * st.s];
                        }
                    }
                    for (int64_t c = 0; c < 3; ++c) {
                        apply_g(g + c, 3, rows + c, 3);
                    }
                    for (int64_t a = 0; a < 4; ++a) {
                        apply_g(rows + 3 * a, 1, t + 4 * a, 1);
                    }
                    for (int64_t e = 0; e < kAlpha; ++e) {
                        dst[e * b.xi + i] = t[e];
                    }
                }
            }
        }
    });
}

/// Checks w is a float32/float64 conv3d weight [Co, Ci, kt, 3, 3]; `what` names the caller.
void check_weight(const at::Tensor& w, const char* what) {
    TORCH_CHECK(w.dim() == 5 && w.size(3) == 3 && w.size(4) == 3, what,
                ": expected a conv3d weight [Co, Ci, kt, 3, 3], got ", w.sizes());
    TORCH_CHECK(w.scalar_type() == at::kFloat || w.scalar_type() == at::kDouble, what,
                ": expected a float32 or float64 weight, got ", w.scalar_type());
}

/// weight_transform_cpu of w's block `b` into u (CPU tensors of w's dtype).
void transform_block(const at::Tensor& w, const WeightBlock& b, at::Tensor& u) {
    const WeightStrides st{w.stride(0), w.stride(1), w.stride(2), w.stride(3), w.stride(4)};
    AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "winograd_weight", [&] {
        weight_transform_cpu<scalar_t>(w.const_data_ptr<scalar_t>(), st, w.size(0), b,
                                       u.mutable_data_ptr<scalar_t>());
    });
}

/// v [16, F·nc, n] = Bᵀ d B for every 4x4 input tile d (stride 2) of input channels [c0, c0 + nc); plane
/// p = f·nc + (c - c0). Rows/columns past the input (odd output sizes) read as 0; they only feed the output
/// row/column that is cut.
template <typename T>
void input_transform_cpu(const T* x, const Tiles& g, int64_t c0, int64_t nc, T* v) {
    const int64_t planes = g.f * nc, n = g.n(), xi = planes * n;  // xi: stride between the 16 outputs
    at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p) {
            const int64_t fi = p / nc, c = c0 + p % nc;
            const T* src = x + (c * g.f + fi) * g.hp * g.wp;
            T* dst = v + p * n;
            for (int64_t ty = 0; ty < g.th; ++ty) {
                for (int64_t tx = 0; tx < g.tw; ++tx) {
                    T d[4][4];
                    for (int64_t r = 0; r < 4; ++r) {
                        for (int64_t s = 0; s < 4; ++s) {
                            const int64_t yy = 2 * ty + r, xx = 2 * tx + s;
                            d[r][s] = yy < g.hp && xx < g.wp ? src[yy * g.wp + xx] : T(0);
                        }
                    }
                    T* o = dst + ty * g.tw + tx;
                    for (int64_t s = 0; s < 4; ++s) {  // Bᵀ d, column s
                        const T r0 = d[0][s] - d[2][s], r1 = d[1][s] + d[2][s], r2 = d[2][s] - d[1][s],
                                r3 = d[1][s] - d[3][s];
                        d[0][s] = r0;
                        d[1][s] = r1;
                        d[2][s] = r2;
                        d[3][s] = r3;
                    }
                    for (int64_t a = 0; a < 4; ++a) {  // (Bᵀ d) B, row a
                        const T* r = d[a];
                        o[(4 * a + 0) * xi] = r[0] - r[2];
                        o[(4 * a + 1) * xi] = r[1] + r[2];
                        o[(4 * a + 2) * xi] = r[2] - r[1];
                        o[(4 * a + 3) * xi] = r[1] - r[3];
                    }
                }
            }
        }
    });
}

/// y[o] (+ bias[o]) = Aᵀ m A for every tile, m given as 16 matrices [Co, n] (channel-major, what the
/// accumulated products give); channel o's output plane [ho, wo] starts at y + o * plane_stride.
template <typename T>
void output_transform_cpu(const std::array<const T*, kAlpha>& m, const T* bias, int64_t co, const Tiles& g,
                          T* y, int64_t plane_stride) {
    const int64_t n = g.n();
    at::parallel_for(0, co, 1, [&](int64_t begin, int64_t end) {
        for (int64_t o = begin; o < end; ++o) {
            const T b = bias != nullptr ? bias[o] : T(0);
            T* dst = y + o * plane_stride;
            for (int64_t ty = 0; ty < g.th; ++ty) {
                for (int64_t tx = 0; tx < g.tw; ++tx) {
                    const int64_t at = o * n + ty * g.tw + tx;
                    T r[2][4];  // Aᵀ M
                    for (int64_t c = 0; c < 4; ++c) {
                        const T m0 = m[c][at], m1 = m[4 + c][at], m2 = m[8 + c][at], m3 = m[12 + c][at];
                        r[0][c] = m0 + m1 + m2;
                        r[1][c] = m1 - m2 - m3;
                    }
                    for (int64_t a = 0; a < 2; ++a) {  // (Aᵀ M) A, row a
                        const int64_t yy = 2 * ty + a, xx = 2 * tx;
                        if (yy >= g.ho) {
                            continue;
                        }
                        dst[yy * g.wo + xx] = r[a][0] + r[a][1] + r[a][2] + b;
                        if (xx + 1 < g.wo) {
                            dst[yy * g.wo + xx + 1] = r[a][1] - r[a][2] - r[a][3] + b;
                        }
                    }
                }
            }
        }
    });
}

/// The same two transforms as ATen ops (any device; the CPU loops' oracle).
at::Tensor input_transform_ref(const at::Tensor& x, const Tiles& g) {
    const at::Tensor bt = bt_matrix(x.device()).to(x.scalar_type());
    const at::Tensor xp = at::constant_pad_nd(x[0], {0, 2 * g.tw + 2 - g.wp, 0, 2 * g.th + 2 - g.hp});
    const at::Tensor d = xp.unfold(2, 4, 2).unfold(3, 4, 2);  // [Ci, F, th, tw, 4, 4]
    const at::Tensor v = at::matmul(at::matmul(bt, d), bt.t());
    return v.permute({4, 5, 1, 0, 2, 3}).reshape({kAlpha, g.f * g.ci, g.n()});  // [16, F·Ci, n]
}

at::Tensor output_transform_ref(const at::Tensor& m, const at::Tensor& bias, const Tiles& g) {
    const int64_t co = m.size(1);
    const at::Tensor at_ = at_matrix(m.device()).to(m.scalar_type());
    const at::Tensor t = m.view({4, 4, co, g.th, g.tw}).permute({2, 3, 4, 0, 1});  // [Co, th, tw, 4, 4]
    const at::Tensor y = at::matmul(at::matmul(at_, t), at_.t())                   // [Co, th, tw, 2, 2]
                             .permute({0, 1, 3, 2, 4})
                             .reshape({co, 2 * g.th, 2 * g.tw})
                             .narrow(1, 0, g.ho)
                             .narrow(2, 0, g.wo);
    return bias.defined() ? y + bias.view({co, 1, 1}) : y;
}

}  // namespace

at::Tensor winograd_weight(const at::Tensor& w) {
    check_weight(w, "winograd_weight");
    const int64_t co = w.size(0), ci = w.size(1), kt = w.size(2);
    const at::Tensor wc = w.to(at::kCPU);
    at::Tensor u = at::empty({kAlpha, co, kt * ci}, wc.options());
    transform_block(wc, WeightBlock{0, kt, 0, ci, kt * ci, co * kt * ci}, u);
    return u.to(w.device());
}

at::Tensor winograd_weight_layout(const at::Tensor& w) {
    check_weight(w, "winograd_weight_layout");
    // [Co, Ci, kt, 3, 3] -> memory order (o, r, s, k, i) -> the same logical dims again.
    return w.permute({0, 3, 4, 2, 1}).contiguous().permute({0, 4, 3, 1, 2});
}

at::Tensor winograd_conv3d(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, int64_t stride_t,
                           bool reference, int64_t block_channels, LinearBackend backend) {
    check_weight(w, "winograd_conv3d");
    const int64_t kt = w.size(2);
    TORCH_CHECK(x.dim() == 5 && x.size(0) == 1 && x.size(2) >= kt && x.size(3) >= 3 && x.size(4) >= 3,
                "winograd_conv3d: expected x [1, Ci, F >= ", kt, ", H >= 3, W >= 3], got ", x.sizes());
    TORCH_CHECK(w.size(1) == x.size(1) && stride_t >= 1, "winograd_conv3d: weight ", w.sizes(),
                " does not fit x ", x.sizes(), " with temporal stride ", stride_t);
    TORCH_CHECK(w.scalar_type() == x.scalar_type() && w.device() == x.device(), "winograd_conv3d: x is ",
                x.scalar_type(), " on ", x.device(), ", the weight ", w.scalar_type(), " on ", w.device());
    // A named range: benchmarks book the direct convolution's FLOPs to it (bench/bench_speed.cpp).
    RECORD_FUNCTION("flashvsr::winograd_conv3d", std::vector<c10::IValue>({x, w, stride_t}));
    const Tiles g{x.size(1),     x.size(2),     x.size(3),           x.size(4),
                  x.size(3) - 2, x.size(4) - 2, (x.size(3) - 1) / 2, (x.size(4) - 1) / 2};
    const int64_t co = w.size(0), to = (g.f - kt) / stride_t + 1;
    const at::Tensor xc = x.contiguous();
    const at::Tensor b = bias.defined() ? bias.contiguous() : bias;
    at::Tensor y = at::empty({1, co, to, g.ho, g.wo}, x.options());
    if (reference || !x.device().is_cpu()) {
        const at::Tensor u = winograd_weight(w), v = input_transform_ref(xc, g);
        for (int64_t t = 0; t < to; ++t) {
            const at::Tensor vt = v.narrow(1, stride_t * t * g.ci, kt * g.ci);    // [16, kt·Ci, n]
            y[0].select(1, t).copy_(output_transform_ref(at::bmm(u, vt), b, g));  // [16, Co, n]
        }
        return y;
    }
    // Blocks of input channels: `cb` channels, as few as fit kWinogradBlockBytes per tap, equal sizes.
    int64_t cb = block_channels;
    if (cb <= 0) {
        const int64_t per_channel = kAlpha * co * static_cast<int64_t>(x.element_size());
        const int64_t most = std::max<int64_t>(16, kWinogradBlockBytes / per_channel / 16 * 16);
        const int64_t blocks = (g.ci + most - 1) / most;
        cb = ((g.ci + blocks - 1) / blocks + 15) / 16 * 16;  // <= most: most is a multiple of 16
    }
    cb = std::min(cb, g.ci);
    // The products: MKL's addmm (accumulating in place) unless dense_linear would take oneDNN (AVX-512
    // CPUs, where MKL's AVX2 code on AMD CPUs is about half as fast; float32): then oneDNN and an add.
    const bool onednn = x.scalar_type() == at::kFloat && onednn_linear_available() &&
                        (backend == LinearBackend::kOneDnn ||
                         (backend == LinearBackend::kAuto && onednn_preferred_for_float32()));
    // m[t][e] [Co, n] = Σ over taps and channel blocks of the block's u [Co, ni] x v's rows [ni, n] (a view).
    std::vector<std::array<at::Tensor, kAlpha>> m(static_cast<size_t>(to));
    for (auto& mt : m) {
        for (auto& me : mt) {
            me = onednn ? at::Tensor() : at::empty({co, g.n()}, x.options());  // oneDNN returns its own
        }
    }
    // Per block of input channels: their input transform (all frames), then per tap the weight's transform
    // and the products of every output frame. Neither transform is ever whole: at 896x512 the LQ projector's
    // conv2 input transform would be 235 MB, one block of it is 9 MB.
    at::Tensor u = at::empty({kAlpha, co, cb}, x.options());           // one weight block, reused
    at::Tensor v = at::empty({kAlpha, g.f * cb, g.n()}, x.options());  // one input block, reused
    bool first = true;
    for (int64_t i0 = 0; i0 < g.ci; i0 += cb) {
        const int64_t ni = std::min(cb, g.ci - i0);
        const at::Tensor vb =
            v.view(-1).narrow(0, 0, kAlpha * g.f * ni * g.n()).view({kAlpha, g.f * ni, g.n()});
        AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "winograd_input", [&] {
            input_transform_cpu<scalar_t>(xc.const_data_ptr<scalar_t>(), g, i0, ni,
                                          vb.mutable_data_ptr<scalar_t>());
        });
        for (int64_t k = 0; k < kt; ++k) {
            transform_block(w, WeightBlock{k, 1, i0, ni, ni, co * ni}, u);
            const at::Tensor ub = u.view(-1).narrow(0, 0, kAlpha * co * ni).view({kAlpha, co, ni});
            for (int64_t t = 0; t < to; ++t) {
                const at::Tensor rows = vb.narrow(1, (stride_t * t + k) * ni, ni);  // [16, ni, n]
                for (int64_t e = 0; e < kAlpha; ++e) {
                    if (onednn) {  // dense_linear computes x wᵀ: [Co, ni] x ([n, ni], copied: ni x n)ᵀ
                        at::Tensor p = dense_linear(ub[e], rows[e].t(), at::Tensor(), LinearBackend::kOneDnn);
                        if (first) {
                            m[t][e] = std::move(p);
                        } else {
                            m[t][e].add_(p);
                        }
                    } else if (first) {
                        at::mm_out(m[t][e], ub[e], rows[e]);  // [Co, ni] x [ni, n]
                    } else {
                        m[t][e].addmm_(ub[e], rows[e]);
                    }
                }
            }
            first = false;
        }
    }
    for (int64_t t = 0; t < to; ++t) {
        AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "winograd_output", [&] {
            std::array<const scalar_t*, kAlpha> mp{};
            for (int64_t e = 0; e < kAlpha; ++e) {
                mp[e] = m[t][e].const_data_ptr<scalar_t>();
            }
            output_transform_cpu<scalar_t>(mp, b.defined() ? b.const_data_ptr<scalar_t>() : nullptr, co, g,
                                           y.mutable_data_ptr<scalar_t>() + t * g.ho * g.wo,
                                           to * g.ho * g.wo);
        });
    }
    return y;
}

}  // namespace flashvsr::models
