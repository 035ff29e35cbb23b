#include "models/common/winograd_conv.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <array>
#include <vector>

#include "models/common/linear.h"

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

/// u[4a+b, o, k·Ci+i] = (G w[o, i, k] Gᵀ)[a, b] in float64, rounded once to T; G's rows are g0,
/// (g0+g1+g2)/2, (g0-g1+g2)/2, g2.
template <typename T>
void weight_transform_cpu(const T* w, int64_t co, int64_t ci, int64_t kt, T* u) {
    const int64_t k_all = kt * ci, xi = co * k_all;  // xi: stride between the 16 outputs
    const auto apply_g = [](const double* g, int64_t stride, double* out, int64_t out_stride) {
        const double s = g[0] + g[2 * stride];
        out[0] = g[0];
        out[out_stride] = (s + g[stride]) * 0.5;
        out[2 * out_stride] = (s - g[stride]) * 0.5;
        out[3 * out_stride] = g[2 * stride];
    };
    at::parallel_for(0, co, 1, [&](int64_t begin, int64_t end) {
        for (int64_t o = begin; o < end; ++o) {
            for (int64_t k = 0; k < kt; ++k) {  // taps outer: the 16 outputs are written in order
                for (int64_t i = 0; i < ci; ++i) {
                    const T* src = w + ((o * ci + i) * kt + k) * 9;
                    double g[9], rows[12], t[16];  // g [3][3] -> rows G g [4][3] -> t (G g) Gᵀ [4][4]
                    for (int64_t e = 0; e < 9; ++e) {
                        g[e] = static_cast<double>(src[e]);
                    }
                    for (int64_t c = 0; c < 3; ++c) {
                        apply_g(g + c, 3, rows + c, 3);
                    }
                    for (int64_t a = 0; a < 4; ++a) {
                        apply_g(rows + 3 * a, 1, t + 4 * a, 1);
                    }
                    T* dst = u + o * k_all + k * ci + i;
                    for (int64_t e = 0; e < kAlpha; ++e) {
                        dst[e * xi] = static_cast<T>(t[e]);
                    }
                }
            }
        }
    });
}

/// v [16, F·Ci, n] = Bᵀ d B for every 4x4 input tile d (stride 2); plane p = f·Ci + c. Rows/columns past the
/// input (odd output sizes) read as 0; they only feed the output row/column that is cut.
template <typename T>
void input_transform_cpu(const T* x, const Tiles& g, T* v) {
    const int64_t planes = g.f * g.ci, n = g.n(), xi = planes * n;  // xi: stride between the 16 outputs
    at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p) {
            const int64_t fi = p / g.ci, c = p % g.ci;
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

/// y[o] (+ bias[o]) = Aᵀ m A for every tile, m given as 16 matrices [n, Co] (tile-major, what dense_linear
/// returns); channel o's output plane [ho, wo] starts at y + o * plane_stride.
template <typename T>
void output_transform_cpu(const std::array<const T*, kAlpha>& m, const T* bias, int64_t co, const Tiles& g,
                          T* y, int64_t plane_stride) {
    constexpr int64_t kChannels = 64;  // output channels per task: reads of m stay contiguous
    at::parallel_for(0, (co + kChannels - 1) / kChannels, 1, [&](int64_t begin, int64_t end) {
        const int64_t o_end = std::min(co, end * kChannels);
        for (int64_t ty = 0; ty < g.th; ++ty) {
            for (int64_t tx = 0; tx < g.tw; ++tx) {
                const int64_t tile = ty * g.tw + tx;
                for (int64_t o = begin * kChannels; o < o_end; ++o) {
                    const int64_t at = tile * co + o;
                    T r[2][4];  // Aᵀ M
                    for (int64_t c = 0; c < 4; ++c) {
                        const T m0 = m[c][at], m1 = m[4 + c][at], m2 = m[8 + c][at], m3 = m[12 + c][at];
                        r[0][c] = m0 + m1 + m2;
                        r[1][c] = m1 - m2 - m3;
                    }
                    const T b = bias != nullptr ? bias[o] : T(0);
                    T* dst = y + o * plane_stride;
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
    TORCH_CHECK(w.dim() == 5 && w.size(3) == 3 && w.size(4) == 3,
                "winograd_weight: expected a conv3d weight [Co, Ci, kt, 3, 3], got ", w.sizes());
    TORCH_CHECK(w.scalar_type() == at::kFloat || w.scalar_type() == at::kDouble,
                "winograd_weight: expected a float32 or float64 weight, got ", w.scalar_type());
    const int64_t co = w.size(0), ci = w.size(1), kt = w.size(2);
    const at::Tensor wc = w.to(at::kCPU).contiguous();
    at::Tensor u = at::empty({kAlpha, co, kt * ci}, wc.options());
    AT_DISPATCH_FLOATING_TYPES(wc.scalar_type(), "winograd_weight", [&] {
        weight_transform_cpu<scalar_t>(wc.const_data_ptr<scalar_t>(), co, ci, kt,
                                       u.mutable_data_ptr<scalar_t>());
    });
    return u.to(w.device());
}

at::Tensor winograd_conv3d(const at::Tensor& x, const at::Tensor& u, const at::Tensor& bias, int64_t kt,
                           int64_t stride_t, bool reference) {
    TORCH_CHECK(x.dim() == 5 && x.size(0) == 1 && x.size(2) >= kt && x.size(3) >= 3 && x.size(4) >= 3,
                "winograd_conv3d: expected x [1, Ci, F >= ", kt, ", H >= 3, W >= 3], got ", x.sizes());
    TORCH_CHECK(u.dim() == 3 && u.size(0) == kAlpha && u.size(2) == kt * x.size(1) && stride_t >= 1,
                "winograd_conv3d: weight ", u.sizes(), " does not fit x ", x.sizes(), " with ", kt, " taps");
    TORCH_CHECK(u.scalar_type() == x.scalar_type() && u.device() == x.device(), "winograd_conv3d: x is ",
                x.scalar_type(), " on ", x.device(), ", the weight ", u.scalar_type(), " on ", u.device());
    // A named range: benchmarks book the direct convolution's FLOPs to it (bench/bench_speed.cpp).
    RECORD_FUNCTION("flashvsr::winograd_conv3d", std::vector<c10::IValue>({x, u, kt, stride_t}));
    const Tiles g{x.size(1),     x.size(2),     x.size(3),           x.size(4),
                  x.size(3) - 2, x.size(4) - 2, (x.size(3) - 1) / 2, (x.size(4) - 1) / 2};
    const int64_t co = u.size(1), to = (g.f - kt) / stride_t + 1;
    const at::Tensor xc = x.contiguous();
    const bool loops = !reference && x.device().is_cpu() &&
                       (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble);
    at::Tensor v;
    if (loops) {
        v = at::empty({kAlpha, g.f * g.ci, g.n()}, x.options());
        AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "winograd_input", [&] {
            input_transform_cpu<scalar_t>(xc.const_data_ptr<scalar_t>(), g, v.mutable_data_ptr<scalar_t>());
        });
    } else {
        v = input_transform_ref(xc, g);
    }
    at::Tensor y = at::empty({1, co, to, g.ho, g.wo}, x.options());
    const at::Tensor b = bias.defined() ? bias.contiguous() : bias;
    for (int64_t t = 0; t < to; ++t) {
        const at::Tensor vt = v.narrow(1, stride_t * t * g.ci, kt * g.ci);  // [16, kt·Ci, n]
        if (loops) {
            // Per transformed position: [n, kt·Ci] x [Co, kt·Ci]ᵀ through dense_linear (oneDNN for float32).
            const at::Tensor rows = vt.transpose(1, 2).contiguous();  // [16, n, kt·Ci]
            std::array<at::Tensor, kAlpha> m;
            for (int64_t e = 0; e < kAlpha; ++e) {
                m[e] = dense_linear(rows[e], u[e], at::Tensor());  // [n, Co]
            }
            AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "winograd_output", [&] {
                std::array<const scalar_t*, kAlpha> mp{};
                for (int64_t e = 0; e < kAlpha; ++e) {
                    mp[e] = m[e].const_data_ptr<scalar_t>();
                }
                output_transform_cpu<scalar_t>(mp, b.defined() ? b.const_data_ptr<scalar_t>() : nullptr, co,
                                               g, y.mutable_data_ptr<scalar_t>() + t * g.ho * g.wo,
                                               to * g.ho * g.wo);
            });
        } else {
            y[0].select(1, t).copy_(output_transform_ref(at::bmm(u, vt), b, g));  // [16, Co, n]
        }
    }
    return y;
}

}  // namespace flashvsr::models
