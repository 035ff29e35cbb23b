#include "models/dit_attention.h"

#include <ATen/ATen.h>

#include "kernels/block_sparse_attention/block_sparse_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace flashvsr::models {
namespace {

/// Inverse frequencies 1 / 10000^(2j/D), j < D/2, float64 (upstream rope_params).
at::Tensor inv_freq(int64_t axis_dim) {
    auto j2 = at::arange(0, axis_dim, 2, at::kDouble).narrow(0, 0, axis_dim / 2);
    return 1.0 / at::pow(10000.0, j2.div(static_cast<double>(axis_dim)));
}

/// Angles [n, D/2] float64 for positions first..first+n-1 on one axis.
at::Tensor axis_angles(int64_t first, int64_t n, int64_t axis_dim) {
    auto pos = at::arange(first, first + n, at::kLong).to(at::kDouble);
    return at::outer(pos, inv_freq(axis_dim));  // [n] x [D/2] -> [n, D/2]
}

at::ScalarType stats_type(at::ScalarType t) { return at::promote_types(t, at::kFloat); }

void check_windows(const at::Tensor& w, const char* what) {
    TORCH_CHECK(w.dim() == 3 && w.size(1) == kWindowTokens, "lcsa: ", what, " expected [n_windows, ",
                kWindowTokens, ", C], got ", w.sizes());
}

}  // namespace

RopeSplit rope_split(int64_t head_dim) {
    TORCH_CHECK(head_dim > 0 && head_dim % 2 == 0, "rope: head_dim must be even and positive, got ",
                head_dim);
    // DiffSynth: h = w = floor(hd/3) channels, t = hd - 2*floor(hd/3). An odd floor(hd/3) has no
    // consistent pairing upstream (its tables would not cover hd/2 pairs), so it is rejected.
    const int64_t hw = head_dim / 3;
    TORCH_CHECK(hw > 0 && hw % 2 == 0, "rope: head_dim ", head_dim, " gives an odd or empty axis split (", hw,
                " channels for height/width)");
    return RopeSplit{head_dim - 2 * hw, hw, hw};
}

RopeTables rope_tables(int64_t head_dim, int64_t t0, int64_t f, int64_t h, int64_t w, at::Device device) {
    TORCH_CHECK(t0 >= 0 && f > 0 && h > 0 && w > 0, "rope: bad grid t0=", t0, " f=", f, " h=", h, " w=", w);
    const RopeSplit s = rope_split(head_dim);
    const auto at_ = axis_angles(t0, f, s.t)
                         .view({f, 1, 1, s.t / 2})
                         .expand({f, h, w, s.t / 2});  // [f,Dt/2] -> [f,h,w,Dt/2]
    const auto ah = axis_angles(0, h, s.h)
                        .view({1, h, 1, s.h / 2})
                        .expand({f, h, w, s.h / 2});  // [h,Dh/2] -> [f,h,w,Dh/2]
    const auto aw = axis_angles(0, w, s.w)
                        .view({1, 1, w, s.w / 2})
                        .expand({f, h, w, s.w / 2});  // [w,Dw/2] -> [f,h,w,Dw/2]
    const auto ang =
        at::cat({at_, ah, aw}, -1).reshape({f * h * w, head_dim / 2});  // [f,h,w,hd/2] -> [L,hd/2]
    return RopeTables{at::cos(ang).to(device), at::sin(ang).to(device)};
}

at::Tensor apply_rope(const at::Tensor& x, const RopeTables& tables, int64_t num_heads) {
    TORCH_CHECK(x.dim() == 3 && num_heads > 0 && x.size(2) % num_heads == 0,
                "rope: expected x [B, L, heads*head_dim], got ", x.sizes(), " with ", num_heads, " heads");
    const int64_t b = x.size(0), l = x.size(1), hd = x.size(2) / num_heads;
    TORCH_CHECK(tables.cos.sizes() == at::IntArrayRef({l, hd / 2}), "rope: tables ", tables.cos.sizes(),
                " do not match L=", l, " head_dim=", hd);
    const auto ct = stats_type(x.scalar_type());
    const auto xr = x.to(ct).reshape({b, l, num_heads, hd / 2, 2});  // [B,L,C] -> [B,L,heads,hd/2,2]
    const auto re = xr.select(-1, 0), im = xr.select(-1, 1);
    const auto c = tables.cos.to(ct).view({1, l, 1, hd / 2});            // [L,hd/2] -> [1,L,1,hd/2]
    const auto s = tables.sin.to(ct).view({1, l, 1, hd / 2});            // [L,hd/2] -> [1,L,1,hd/2]
    const auto out = at::stack({re * c - im * s, re * s + im * c}, -1);  // [B,L,heads,hd/2,2]
    return out.reshape({b, l, num_heads * hd}).to(x.scalar_type());      // [B,L,heads,hd/2,2] -> [B,L,C]
}

at::Tensor window_partition(const at::Tensor& x, int64_t f, int64_t h, int64_t w) {
    TORCH_CHECK(f % kWindowT == 0 && h % kWindowH == 0 && w % kWindowW == 0 && f > 0 && h > 0 && w > 0,
                "window_partition: grid (", f, ", ", h, ", ", w, ") is not a multiple of (2, 8, 8)");
    TORCH_CHECK(x.dim() == 3 && x.size(0) == 1 && x.size(1) == f * h * w, "window_partition: expected [1, ",
                f * h * w, ", C], got ", x.sizes());
    const int64_t c = x.size(2), hb = h / kWindowH, wb = w / kWindowW;
    return x
        .view({f / kWindowT, kWindowT, hb, kWindowH, wb, kWindowW, c})  // [1,fhw,C] -> [f/2,2,hb,8,wb,8,C]
        .permute({0, 2, 4, 1, 3, 5, 6})                                 // -> [f/2,hb,wb,2,8,8,C]
        .reshape({(f / kWindowT) * hb * wb, kWindowTokens, c});         // -> [n_windows,128,C]
}

at::Tensor window_reverse(const at::Tensor& windows, int64_t f, int64_t h, int64_t w) {
    TORCH_CHECK(f % kWindowT == 0 && h % kWindowH == 0 && w % kWindowW == 0 && f > 0 && h > 0 && w > 0,
                "window_reverse: grid (", f, ", ", h, ", ", w, ") is not a multiple of (2, 8, 8)");
    check_windows(windows, "windows");
    const int64_t c = windows.size(2), hb = h / kWindowH, wb = w / kWindowW;
    TORCH_CHECK(windows.size(0) == (f / kWindowT) * hb * wb, "window_reverse: expected ",
                (f / kWindowT) * hb * wb, " windows, got ", windows.size(0));
    return windows
        .reshape({f / kWindowT, hb, wb, kWindowT, kWindowH, kWindowW, c})  // -> [f/2,hb,wb,2,8,8,C]
        .permute({0, 3, 1, 4, 2, 5, 6})                                    // -> [f/2,2,hb,8,wb,8,C]
        .reshape({1, f * h * w, c});                                       // -> [1,fhw,C]
}

at::Tensor local_window_mask(int64_t hb, int64_t wb, int64_t range) {
    TORCH_CHECK(hb > 0 && wb > 0 && range > 0, "local_window_mask: bad grid ", hb, "x", wb, " range ", range);
    const int64_t s = hb * wb, half = range / 2;
    auto mask = at::zeros({s, s}, at::kBool);
    auto a = mask.accessor<bool, 2>();
    for (int64_t r = 0; r < hb; ++r) {
        for (int64_t c = 0; c < wb; ++c) {
            const int64_t r_lo = r - half, r_hi = r_lo + range - 1, c_lo = c - half, c_hi = c_lo + range - 1;
            for (int64_t r2 = std::max<int64_t>(r_lo, 0); r2 <= std::min(r_hi, hb - 1); ++r2) {
                for (int64_t c2 = std::max<int64_t>(c_lo, 0); c2 <= std::min(c_hi, wb - 1); ++c2) {
                    a[r * wb + c][r2 * wb + c2] = true;
                }
            }
        }
    }
    return mask;
}

int64_t draft_topk(double sparse_ratio, int64_t height, int64_t width, int64_t windows_per_slice) {
    TORCH_CHECK(height > 0 && width > 0 && windows_per_slice > 0, "draft_topk: bad size ", height, "x", width,
                ", S=", windows_per_slice);
    // Literal upstream expression (left to right, double), then Python int() truncation.
    const double ratio = sparse_ratio * 768 * 1280 / static_cast<double>(height * width);
    const double s2 = static_cast<double>(windows_per_slice * windows_per_slice);
    const int64_t topk = static_cast<int64_t>(s2 * ratio) - 1;
    TORCH_CHECK(topk >= 0, "draft_topk: sparse_ratio ", sparse_ratio, " gives an empty budget (topk ", topk,
                ")");
    return topk;
}

at::Tensor draft_block_mask(const at::Tensor& q_windows, const at::Tensor& k_windows, int64_t num_heads,
                            const at::Tensor& local, int64_t topk) {
    check_windows(q_windows, "q");
    check_windows(k_windows, "k");
    TORCH_CHECK(local.dim() == 2 && local.size(0) == local.size(1),
                "draft_block_mask: local mask [S, S], got ", local.sizes());
    const int64_t nq = q_windows.size(0), nk = k_windows.size(0), c = q_windows.size(2), s = local.size(0);
    TORCH_CHECK(k_windows.size(2) == c && c % num_heads == 0, "draft_block_mask: channels q ", c, " k ",
                k_windows.size(2), " heads ", num_heads);
    TORCH_CHECK(nq % s == 0 && nk % s == 0, "draft_block_mask: window counts ", nq, ", ", nk,
                " are not multiples of S=", s);
    TORCH_CHECK(topk >= 0, "draft_block_mask: topk must be >= 0, got ", topk);
    const int64_t hd = c / num_heads;
    const auto qm =
        q_windows.mean(1).view({nq, num_heads, hd}).permute({1, 0, 2});  // [nq,C] -> [heads,nq,hd]
    const auto km =
        k_windows.mean(1).view({nk, num_heads, hd}).permute({1, 0, 2});  // [nk,C] -> [heads,nk,hd]
    const auto scores =
        at::matmul(qm, km.transpose(1, 2)).div(std::sqrt(static_cast<double>(hd)));  // [heads,nq,nk]
    const auto allowed =
        local.to(q_windows.device(), at::kBool).repeat({nq / s, nk / s});  // [S,S] -> [nq,nk]
    const auto probs =
        at::softmax(scores.to(stats_type(scores.scalar_type()))
                        .masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity()),
                    -1);                                           // [heads,nq,nk]
    const auto flat = probs.reshape({num_heads, nq / s, s * nk});  // -> [heads, query slices, S*nk]
    const int64_t kstar = std::min(s * nk - 1, topk);
    const auto thr = std::get<0>(at::topk(flat, kstar + 1, -1, /*largest=*/true, /*sorted=*/true))
                         .select(-1, kstar)
                         .unsqueeze(-1);            // [heads,slices] -> [heads,slices,1]
    return flat.gt(thr).view({num_heads, nq, nk});  // [heads,slices,S*nk] -> [heads,nq,nk]
}

at::Tensor block_sparse_attention(const at::Tensor& q_windows, const at::Tensor& k_windows,
                                  const at::Tensor& v_windows, const at::Tensor& mask, int64_t num_heads,
                                  AttentionKernel kernel) {
    if (kernel == AttentionKernel::kAuto) {
        kernel = q_windows.is_cpu() ? AttentionKernel::kOp : AttentionKernel::kGather;
    }
    if (kernel == AttentionKernel::kOp) {
        return kernels::block_sparse_attention(q_windows, k_windows, v_windows, mask.to(at::kBool),
                                               num_heads);
    }
    return gathered_block_sparse_attention(q_windows, k_windows, v_windows, mask, num_heads);
}

at::Tensor gathered_block_sparse_attention(const at::Tensor& q_windows, const at::Tensor& k_windows,
                                           const at::Tensor& v_windows, const at::Tensor& mask,
                                           int64_t num_heads) {
    check_windows(q_windows, "q");
    check_windows(k_windows, "k");
    TORCH_CHECK(v_windows.sizes() == k_windows.sizes(), "block_sparse_attention: v ", v_windows.sizes(),
                " != k ", k_windows.sizes());
    const int64_t nq = q_windows.size(0), nk = k_windows.size(0), c = q_windows.size(2);
    TORCH_CHECK(num_heads > 0 && c % num_heads == 0 && k_windows.size(2) == c,
                "block_sparse_attention: channels ", c, " / ", k_windows.size(2), " heads ", num_heads);
    TORCH_CHECK(mask.dim() == 3 && mask.size(0) == num_heads && mask.size(1) == nq && mask.size(2) == nk,
                "block_sparse_attention: mask expected [", num_heads, ", ", nq, ", ", nk, "], got ",
                mask.sizes());
    const int64_t hd = c / num_heads, t = kWindowTokens, rows = num_heads * nq;
    auto out = at::zeros({num_heads, nq, t, hd}, q_windows.options());
    const auto m = mask.to(at::kBool).reshape({rows, nk});  // [heads,nq,nk] -> [heads*nq,nk]
    const auto counts = m.sum(-1);                          // [rows] selected key windows per row
    // Rows by descending count, so that each batch pads only to its own first (largest) count;
    // rows with no selected window are never computed and keep their exact zeros.
    const auto order = std::get<1>(at::sort(counts, /*stable=*/true, 0, /*descending=*/true));  // [rows]
    const auto counts_host = counts.index_select(0, order).to(at::kCPU, at::kLong).contiguous();
    const int64_t* cs = counts_host.data_ptr<int64_t>();
    if (rows == 0 || cs[0] == 0) {
        return out.permute({1, 2, 0, 3}).reshape({nq, t, c});  // [heads,nq,128,hd] -> [nq,128,C]
    }
    const int64_t maxc = cs[0];
    // Selected key windows first, in ascending index order (stable sort of "not selected").
    const auto idx = std::get<1>(at::sort(m.logical_not().to(at::kByte), /*stable=*/true, -1, false))
                         .narrow(-1, 0, maxc);                                            // [rows,maxc]
    const auto head_of_row = at::arange(num_heads, idx.options()).repeat_interleave(nq);  // [rows]
    const auto gidx = idx + head_of_row.unsqueeze(1) * nk;  // index into the [heads*nk] windows
    const auto q = q_windows.view({nq, t, num_heads, hd}).permute({2, 0, 1, 3}).reshape({rows, t, hd});
    // [nq,128,C] -> [heads,nq,128,hd] -> [rows,128,hd]
    const auto k =
        k_windows.view({nk, t, num_heads, hd}).permute({2, 0, 1, 3}).reshape({num_heads * nk, t, hd});
    const auto v =
        v_windows.view({nk, t, num_heads, hd}).permute({2, 0, 1, 3}).reshape({num_heads * nk, t, hd});
    // [nk,128,C] -> [heads,nk,128,hd] -> [heads*nk,128,hd]
    auto out_rows = out.view({rows, t, hd});  // [heads,nq,128,hd] -> [rows,128,hd]
    const int64_t budget = int64_t{1} << 25;  // gathered K elements per SDPA call (bounds memory)
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    for (int64_t r0 = 0; r0 < rows && cs[r0] > 0;) {
        const int64_t mc = cs[r0];
        int64_t n = std::min(std::max<int64_t>(1, budget / (mc * t * hd)), rows - r0);
        while (cs[r0 + n - 1] == 0) {
            --n;  // stop at the first empty row
        }
        const auto sel = order.narrow(0, r0, n);                                       // [n] row ids
        const auto gi = gidx.index_select(0, sel).narrow(1, 0, mc).reshape({n * mc});  // [n,mc] -> [n*mc]
        const auto kg = k.index_select(0, gi).view({n, mc * t, hd});  // [n*mc,128,hd] -> [n,mc*128,hd]
        const auto vg = v.index_select(0, gi).view({n, mc * t, hd});
        std::optional<at::Tensor> key_mask;
        if (cs[r0 + n - 1] < mc) {
            const auto valid = at::arange(mc, counts.options()).unsqueeze(0) <
                               counts.index_select(0, sel).unsqueeze(1);       // [n,mc]
            key_mask = valid.repeat_interleave(t, 1).view({n, 1, 1, mc * t});  // [n,mc] -> [n,1,1,mc*128]
        }
        // 4-D [batch, 1 head, tokens, hd] so that fused SDPA kernels apply on GPUs.
        const auto o = at::scaled_dot_product_attention(q.index_select(0, sel).unsqueeze(1), kg.unsqueeze(1),
                                                        vg.unsqueeze(1), key_mask, 0.0, false, scale);
        out_rows.index_copy_(0, sel, o.squeeze(1));  // [n,1,128,hd] -> [n,128,hd], back to their rows
        r0 += n;
    }
    return out.permute({1, 2, 0, 3}).reshape({nq, t, c});  // [heads,nq,128,hd] -> [nq,128,C]
}

at::Tensor masked_dense_attention(const at::Tensor& q_windows, const at::Tensor& k_windows,
                                  const at::Tensor& v_windows, const at::Tensor& mask, int64_t num_heads) {
    check_windows(q_windows, "q");
    check_windows(k_windows, "k");
    const int64_t nq = q_windows.size(0), nk = k_windows.size(0), c = q_windows.size(2);
    TORCH_CHECK(mask.dim() == 3 && mask.size(0) == num_heads && mask.size(1) == nq && mask.size(2) == nk,
                "masked_dense_attention: mask expected [", num_heads, ", ", nq, ", ", nk, "], got ",
                mask.sizes());
    const int64_t hd = c / num_heads, t = kWindowTokens;
    const auto q = q_windows.reshape({nq * t, num_heads, hd}).permute({1, 0, 2});  // -> [heads,Lq,hd]
    const auto k = k_windows.reshape({nk * t, num_heads, hd}).permute({1, 0, 2});  // -> [heads,Lk,hd]
    const auto v = v_windows.reshape({nk * t, num_heads, hd}).permute({1, 0, 2});  // -> [heads,Lk,hd]
    const auto dense = mask.to(at::kBool).repeat_interleave(t, 1).repeat_interleave(t, 2);  // [heads,Lq,Lk]
    const auto ct = stats_type(q.scalar_type());
    const auto scores =
        at::matmul(q.to(ct), k.to(ct).transpose(1, 2)) / std::sqrt(static_cast<double>(hd));  // [heads,Lq,Lk]
    auto p =
        at::softmax(scores.masked_fill(dense.logical_not(), -std::numeric_limits<double>::infinity()), -1);
    p = at::where(dense.any(-1, true), p, at::zeros({}, p.options()));   // empty rows -> 0 (not NaN)
    const auto o = at::matmul(p, v.to(ct)).to(q_windows.scalar_type());  // [heads,Lq,hd]
    return o.permute({1, 0, 2}).reshape({nq, t, c});                     // -> [Lq,heads,hd] -> [nq,128,C]
}

int64_t kv_slices_to_keep(int64_t n_slices, double kv_ratio) {
    TORCH_CHECK(kv_ratio >= 1.0, "kv_ratio must be >= 1, got ", kv_ratio);
    const auto kv_len = static_cast<int64_t>(kv_ratio);
    return n_slices > kv_len ? n_slices - 1 : n_slices;
}

}  // namespace flashvsr::models
