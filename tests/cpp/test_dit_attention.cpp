// LCSA building blocks of the DiT (MODEL.md §2.6; MODEL.md §13 items 7, 8, 9 (windows), 10).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "models/dit_attention.h"

using namespace flashvsr::models;

namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);

double max_abs(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

/// Independent draft mask: explicit loops for pooling, scores, local mask, softmax and the global
/// strictly-greater top-k of each (head, query slice).
at::Tensor reference_draft_mask(const at::Tensor& qw, const at::Tensor& kw, int64_t heads, int64_t hb,
                                int64_t wb, int64_t range, int64_t topk) {
    const int64_t nq = qw.size(0), nk = kw.size(0), c = qw.size(2), hd = c / heads, s = hb * wb;
    auto q = qw.accessor<double, 3>();
    auto k = kw.accessor<double, 3>();
    auto pool = [&](auto& a, int64_t n) {
        std::vector<std::vector<double>> m(n, std::vector<double>(c, 0.0));
        for (int64_t i = 0; i < n; ++i) {
            for (int64_t t = 0; t < 128; ++t) {
                for (int64_t ch = 0; ch < c; ++ch) {
                    m[i][ch] += a[i][t][ch] / 128.0;
                }
            }
        }
        return m;
    };
    const auto pq = pool(q, nq), pk = pool(k, nk);
    auto visible = [&](int64_t i, int64_t j) {
        const int64_t r = (i % s) / wb, cc = (i % s) % wb, r2 = (j % s) / wb, c2 = (j % s) % wb;
        return r - range / 2 <= r2 && r2 <= r - range / 2 + range - 1 && cc - range / 2 <= c2 &&
               c2 <= cc - range / 2 + range - 1;
    };
    auto out = at::zeros({heads, nq, nk}, at::kBool);
    auto o = out.accessor<bool, 3>();
    for (int64_t h = 0; h < heads; ++h) {
        std::vector<std::vector<double>> p(nq, std::vector<double>(nk, 0.0));
        for (int64_t i = 0; i < nq; ++i) {
            double mx = -1e300, sum = 0.0;
            std::vector<double> sc(nk);
            for (int64_t j = 0; j < nk; ++j) {
                double d = 0.0;
                for (int64_t e = 0; e < hd; ++e) {
                    d += pq[i][h * hd + e] * pk[j][h * hd + e];
                }
                sc[j] = d / std::sqrt(static_cast<double>(hd));
                if (visible(i, j)) {
                    mx = std::max(mx, sc[j]);
                }
            }
            for (int64_t j = 0; j < nk; ++j) {
                sum += visible(i, j) ? std::exp(sc[j] - mx) : 0.0;
            }
            for (int64_t j = 0; j < nk; ++j) {
                p[i][j] = visible(i, j) ? std::exp(sc[j] - mx) / sum : 0.0;
            }
        }
        for (int64_t sl = 0; sl < nq / s; ++sl) {
            std::vector<double> flat;
            for (int64_t i = sl * s; i < (sl + 1) * s; ++i) {
                flat.insert(flat.end(), p[i].begin(), p[i].end());
            }
            std::vector<double> sorted = flat;
            std::sort(sorted.begin(), sorted.end(), std::greater<double>());
            const int64_t kstar = std::min<int64_t>(static_cast<int64_t>(flat.size()) - 1, topk);
            const double thr = sorted[static_cast<size_t>(kstar)];
            for (int64_t i = sl * s; i < (sl + 1) * s; ++i) {
                for (int64_t j = 0; j < nk; ++j) {
                    o[h][i][j] = p[i][j] > thr;
                }
            }
        }
    }
    return out;
}

}  // namespace

TEST(DitLocalMask, SymmetricDiagonalRowCounts) {
    for (int64_t range : {1, 3, 5, 11}) {
        const int64_t hb = 5, wb = 7;
        const auto m = local_window_mask(hb, wb, range);
        ASSERT_EQ(m.sizes(), at::IntArrayRef({35, 35}));
        EXPECT_TRUE(at::equal(m, m.t())) << "range " << range;
        EXPECT_TRUE(m.diagonal().all().item<bool>());
        auto overlap = [&](int64_t i, int64_t n) {
            return std::min(n - 1, i - range / 2 + range - 1) - std::max<int64_t>(0, i - range / 2) + 1;
        };
        const auto counts = m.sum(1);
        for (int64_t r = 0; r < hb; ++r) {
            for (int64_t c = 0; c < wb; ++c) {
                EXPECT_EQ(counts[r * wb + c].item<int64_t>(), overlap(r, hb) * overlap(c, wb));
            }
        }
    }
    // Even range: window [r-R/2, r+R/2-1], not symmetric, still contains the diagonal.
    const auto m4 = local_window_mask(1, 6, 4);
    EXPECT_TRUE(m4[2][0].item<bool>());
    EXPECT_FALSE(m4[0][2].item<bool>());
    EXPECT_TRUE(m4.diagonal().all().item<bool>());
}

TEST(DitDraftMask, OfficialTopkExpression) {
    EXPECT_EQ(draft_topk(2.0, 768, 1408, 66), 7919);  // MODEL.md §2.9
    EXPECT_EQ(draft_topk(2.0, 256, 384, 6), 719);
    EXPECT_EQ(draft_topk(1.5, 1024, 1024, 64),
              static_cast<int64_t>(64.0 * 64 * (1.5 * 768 * 1280 / (1024.0 * 1024))) - 1);
    EXPECT_THROW(draft_topk(0.001, 128, 128, 1), c10::Error);
}

TEST(DitDraftMask, MatchesIndependentImplementationAndContract) {
    at::manual_seed(7);
    const int64_t heads = 2, hb = 2, wb = 3, s = 6, c = 64, range = 3;
    const auto local = local_window_mask(hb, wb, range);
    for (int64_t nk_slices : {3, 4}) {
        for (int64_t topk : {0, 5, 17, 40}) {
            const auto qw = at::randn({2 * s, 128, c}, kF64) + at::randn({2 * s, 1, c}, kF64);
            const auto kw = at::randn({nk_slices * s, 128, c}, kF64) + at::randn({nk_slices * s, 1, c}, kF64);
            const auto mask = draft_block_mask(qw, kw, heads, local, topk);
            ASSERT_EQ(mask.sizes(), at::IntArrayRef({heads, 2 * s, nk_slices * s}));
            EXPECT_TRUE(at::equal(mask, reference_draft_mask(qw, kw, heads, hb, wb, range, topk)))
                << "nk_slices " << nk_slices << " topk " << topk;
            const auto allowed = local.repeat({2, nk_slices});
            EXPECT_FALSE((mask & allowed.logical_not()).any().item<bool>())
                << "selected outside the local mask";
            const int64_t len = s * nk_slices * s;
            const int64_t kstar = std::min(topk, len - 1);
            const int64_t allowed_per_slice = allowed.narrow(0, 0, s).sum().item<int64_t>();
            const auto per_slice = mask.view({heads, 2, s * nk_slices * s}).sum(-1);
            // Distinct (random) probabilities and enough allowed entries: exactly k* selected.
            ASSERT_GT(allowed_per_slice, kstar);
            EXPECT_TRUE(per_slice.eq(kstar).all().item<bool>()) << per_slice;
        }
    }
    // Dense regime (k* = len - 1, everything visible): all but the minimum of each slice.
    const auto full = local_window_mask(hb, wb, 11);
    const auto qw = at::randn({s, 128, c}, kF64), kw = at::randn({3 * s, 128, c}, kF64);
    const auto mask = draft_block_mask(qw, kw, heads, full, 100000);
    EXPECT_TRUE(mask.view({heads, -1}).sum(-1).eq(s * 3 * s - 1).all().item<bool>());
    EXPECT_TRUE(at::equal(mask, reference_draft_mask(qw, kw, heads, hb, wb, 11, 100000)));
}

TEST(DitBlockSparse, EmptyBlocksZeroAndMatchesDenseOracle) {
    at::manual_seed(3);
    const int64_t heads = 2, nq = 6, nk = 12, c = 64, hd = 32;
    const auto q = at::randn({nq, 128, c}, kF64), k = at::randn({nk, 128, c}, kF64),
               v = at::randn({nk, 128, c}, kF64);
    auto mask = at::rand({heads, nq, nk}, kF64).lt(0.3);
    mask[0][1].fill_(false);
    mask[1][4].fill_(false);
    mask[1][0].fill_(true);  // one full row next to sparse ones (padding path)
    const auto fast = block_sparse_attention(q, k, v, mask, heads);
    const auto dense = masked_dense_attention(q, k, v, mask, heads);
    ASSERT_EQ(fast.sizes(), q.sizes());
    EXPECT_TRUE(fast[1].narrow(-1, 0, hd).eq(0).all().item<bool>());
    EXPECT_TRUE(fast[4].narrow(-1, hd, hd).eq(0).all().item<bool>());
    EXPECT_FALSE(fast[1].narrow(-1, hd, hd).eq(0).all().item<bool>());
    EXPECT_TRUE(dense[1].narrow(-1, 0, hd).eq(0).all().item<bool>());
    EXPECT_LT(max_abs(fast, dense), 1e-12);
    EXPECT_FALSE(fast.isnan().any().item<bool>());

    // All blocks selected (no padding): plain attention over all keys, per head.
    const auto all = at::ones({heads, nq, nk}, at::kBool);
    const auto got = block_sparse_attention(q, k, v, all, heads);
    const auto qh = q.reshape({nq * 128, heads, hd}).permute({1, 0, 2});
    const auto kh = k.reshape({nk * 128, heads, hd}).permute({1, 0, 2});
    const auto vh = v.reshape({nk * 128, heads, hd}).permute({1, 0, 2});
    const auto ref = at::matmul(at::softmax(at::matmul(qh, kh.transpose(1, 2)) / std::sqrt(32.0), -1), vh)
                         .permute({1, 0, 2})
                         .reshape({nq, 128, c});
    EXPECT_LT(max_abs(got, ref), 1e-12);

    // Nothing selected at all: exactly zero.
    EXPECT_TRUE(block_sparse_attention(q, k, v, at::zeros({heads, nq, nk}, at::kBool), heads)
                    .eq(0)
                    .all()
                    .item<bool>());
}

TEST(DitWindows, PartitionReverseIdentityAndOrder) {
    const int64_t f = 4, h = 16, w = 24, c = 5;
    const auto x = at::randn({1, f * h * w, c}, kF64);
    const auto win = window_partition(x, f, h, w);
    ASSERT_EQ(win.sizes(), at::IntArrayRef({2 * 2 * 3, 128, c}));
    EXPECT_TRUE(at::equal(window_reverse(win, f, h, w), x));
    // Token (t=3, y=10, x=17): window (1, 1, 2) -> 1*6 + 1*3 + 2 = 11; inside (1, 2, 1) -> 64 + 16 + 1 = 81.
    EXPECT_TRUE(at::equal(win[11][81], x[0][(3 * h + 10) * w + 17]));
    EXPECT_THROW(window_partition(x, f, h, w + 1), c10::Error);
}

TEST(DitRope, SplitPairingAndTables) {
    EXPECT_EQ(rope_split(128).t, 44);
    EXPECT_EQ(rope_split(128).h, 42);
    EXPECT_EQ(rope_split(128).w, 42);
    EXPECT_EQ(rope_split(32).t, 12);
    EXPECT_EQ(rope_split(32).h, 10);
    EXPECT_EQ(rope_split(96).t, 32);
    EXPECT_THROW(rope_split(64), c10::Error);  // floor(64/3) = 21 channels: no pairing
    // One token at (t=1, y=1, x=1); one-hot inputs at the first pair of each axis.
    const auto tab = rope_tables(128, 1, 1, 2, 2, at::kCPU);
    ASSERT_EQ(tab.cos.sizes(), at::IntArrayRef({4, 64}));
    for (int64_t ch : {0, 44, 86}) {
        auto x = at::zeros({1, 4, 256}, kF64);
        x[0][3][128 + ch] = 1.0;  // head 1, token (y=1, x=1)
        const auto y = apply_rope(x, tab, 2)[0][3];
        EXPECT_NEAR(y[128 + ch].item<double>(), std::cos(1.0), 1e-15) << ch;
        EXPECT_NEAR(y[128 + ch + 1].item<double>(), std::sin(1.0), 1e-15) << ch;
        EXPECT_NEAR(y.abs().sum().item<double>(), std::cos(1.0) + std::sin(1.0), 1e-15);
    }
    // Second height pair: theta_1 = 10000^(-2/42); second temporal pair: 10000^(-2/44).
    EXPECT_NEAR(tab.sin[3][23].item<double>(), std::sin(std::pow(10000.0, -2.0 / 42)), 1e-15);
    EXPECT_NEAR(tab.sin[3][1].item<double>(), std::sin(std::pow(10000.0, -2.0 / 44)), 1e-15);
    // Token (y=0, x=1): height pairs unrotated.
    EXPECT_EQ(tab.cos[1][22].item<double>(), 1.0);
    // No table cap: position 100000.
    EXPECT_NEAR(rope_tables(128, 100000, 1, 1, 1, at::kCPU).cos[0][0].item<double>(), std::cos(100000.0),
                1e-12);
}

TEST(DitRope, ScoresDependOnlyOnOffsets) {
    at::manual_seed(11);
    const int64_t heads = 2, hd = 128, f = 2, h = 8, w = 8, l = f * h * w;
    const auto q = at::randn({1, l, heads * hd}, kF64), k = at::randn({1, l, heads * hd}, kF64);
    auto scores = [&](int64_t tq, int64_t tk) {
        const auto qr = apply_rope(q, rope_tables(hd, tq, f, h, w, at::kCPU), heads).view({l, heads, hd});
        const auto kr = apply_rope(k, rope_tables(hd, tk, f, h, w, at::kCPU), heads).view({l, heads, hd});
        return at::matmul(qr.permute({1, 0, 2}), kr.permute({1, 2, 0}));  // [heads, L, L]
    };
    const auto s0 = scores(4, 4);
    EXPECT_LT(max_abs(s0, scores(1004, 1004)), 1e-10);
    EXPECT_LT(max_abs(scores(6, 4), scores(1006, 1004)), 1e-10);
    EXPECT_GT(max_abs(s0, scores(5, 4)), 1e-3);  // a changed offset does change the scores
    // Rotation is norm-preserving and acts on q (not the identity).
    const auto tab = rope_tables(hd, 4, f, h, w, at::kCPU);
    const auto qr = apply_rope(q, tab, heads);
    EXPECT_LT(max_abs(qr.norm(2, -1), q.norm(2, -1)), 1e-10);
    EXPECT_GT(max_abs(qr, q), 1e-2);
}

TEST(DitKvTrim, Rule) {
    // after chunk 0 (3 slices) / after a later chunk (cache + 1 slice)
    EXPECT_EQ(kv_slices_to_keep(3, 1.0), 2);
    EXPECT_EQ(kv_slices_to_keep(3, 2.5), 2);
    EXPECT_EQ(kv_slices_to_keep(3, 3.0), 3);
    EXPECT_EQ(kv_slices_to_keep(4, 3.9), 3);
    EXPECT_EQ(kv_slices_to_keep(3, 4.0), 3);
    EXPECT_EQ(kv_slices_to_keep(4, 4.0), 4);
    EXPECT_EQ(kv_slices_to_keep(5, 4.0), 4);
    EXPECT_THROW(kv_slices_to_keep(3, 0.5), c10::Error);
}
