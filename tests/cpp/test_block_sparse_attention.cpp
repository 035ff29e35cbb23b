// block_sparse_attention op (CPU twin): against the dense masked oracle over random and structured masks,
// in every dtype; a size whose rows split into several pieces; grouped work items whose windows keep
// different key windows (one empty, one full, ragged) in every tuning and softmax form; the Meta kernel;
// bad input.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "csrc/core/cpu_isa.h"
#include "kernels/block_sparse_attention/block_sparse_attention.h"
#include "kernels/block_sparse_attention/block_sparse_attention_cpu.h"
#include "models/dit_attention.h"

namespace {

using flashvsr::kernels::AttentionGeometry;
using flashvsr::kernels::AttentionWorkItem;
using flashvsr::kernels::block_sparse_attention;
using flashvsr::kernels::CpuAttentionGemm;
using flashvsr::kernels::CpuAttentionTuning;
using flashvsr::models::masked_dense_attention;

/// max |got - ref| / max |ref|
double rel_error(const at::Tensor& got, const at::Tensor& ref) {
    const auto r = ref.to(at::kDouble);
    return (got.to(at::kDouble) - r).abs().max().item<double>() / r.abs().max().item<double>();
}

struct Case {
    at::Tensor q, k, v, mask;
    int64_t heads;
};

/// Random q/k/v (float64) and a mask with every kind of row: empty, full, a single block, ragged counts,
/// a different pattern per head.
Case make_case(int64_t heads, int64_t hd, int64_t nq, int64_t nk, uint64_t seed) {
    at::manual_seed(seed);
    const auto f64 = at::TensorOptions().dtype(at::kDouble);
    Case c;
    c.heads = heads;
    c.q = at::randn({nq, 128, heads * hd}, f64);
    c.k = at::randn({nk, 128, heads * hd}, f64);
    c.v = at::randn({nk, 128, heads * hd}, f64);
    c.mask = at::rand({heads, nq, nk}, f64).lt(at::linspace(0.1, 0.9, heads, f64).view({heads, 1, 1}));
    c.mask[0][0].fill_(false);              // empty row
    c.mask[heads - 1][nq - 1].fill_(true);  // full row
    if (nq > 1) {
        c.mask[0][1].fill_(false);  // one block only
        c.mask[0][1][nk / 2] = true;
    }
    return c;
}

TEST(BlockSparseAttentionOp, MatchesDenseOracleInEveryDtype) {
    const Case c = make_case(/*heads=*/3, /*hd=*/32, /*nq=*/5, /*nk=*/9, 1);
    const at::Tensor oracle = masked_dense_attention(c.q, c.k, c.v, c.mask, c.heads);
    ASSERT_GT(oracle.abs().max().item<double>(), 0.1);
    struct Tol {
        at::ScalarType type;
        double rel;
    };
    // fp32 1e-5; fp64 1e-12; bf16/fp16: a few units of their epsilon (inputs rounded, then float math).
    for (const Tol t : {Tol{at::kDouble, 1e-12}, Tol{at::kFloat, 1e-5}, Tol{at::kHalf, 4 * 9.77e-4},
                        Tol{at::kBFloat16, 4 * 7.81e-3}}) {
        const at::Tensor got =
            block_sparse_attention(c.q.to(t.type), c.k.to(t.type), c.v.to(t.type), c.mask, c.heads);
        ASSERT_EQ(got.scalar_type(), t.type);
        ASSERT_EQ(got.sizes(), c.q.sizes());
        EXPECT_LE(rel_error(got, oracle), t.rel) << t.type;
        EXPECT_FALSE(got.isnan().any().item<bool>()) << t.type;
        // The empty row (head 0, window 0) is exactly 0; a non-empty one is not.
        EXPECT_TRUE(got[0].narrow(-1, 0, 32).eq(0).all().item<bool>()) << t.type;
        EXPECT_FALSE(got[0].narrow(-1, 32, 32).eq(0).all().item<bool>()) << t.type;
    }
}

TEST(BlockSparseAttentionOp, FullMaskIsPlainAttention) {
    const int64_t heads = 2, hd = 64, nq = 3, nk = 7;
    const Case c = make_case(heads, hd, nq, nk, 2);
    const at::Tensor all = at::ones({heads, nq, nk}, at::kBool);
    const at::Tensor got = block_sparse_attention(c.q, c.k, c.v, all, heads);
    const auto split = [&](const at::Tensor& x) {  // [n,128,C] -> [heads, n*128, hd]
        return x.reshape({-1, heads, hd}).permute({1, 0, 2});
    };
    const at::Tensor ref =
        at::matmul(at::softmax(at::matmul(split(c.q), split(c.k).transpose(1, 2)) / std::sqrt(64.0), -1),
                   split(c.v))
            .permute({1, 0, 2})
            .reshape({nq, 128, heads * hd});
    EXPECT_LE(rel_error(got, ref), 1e-12);
    // Nothing kept anywhere: exactly zero.
    EXPECT_TRUE(block_sparse_attention(c.q, c.k, c.v, at::zeros({heads, nq, nk}, at::kBool), heads)
                    .eq(0)
                    .all()
                    .item<bool>());
}

TEST(BlockSparseAttentionOp, LongRowsSplitIntoSeveralPieces) {
    // 150 key windows: a row is scored 8 windows at a time and merged by the online softmax (many pieces).
    const int64_t heads = 2, hd = 16, nq = 3, nk = 150;
    Case c = make_case(heads, hd, nq, nk, 3);
    c.mask = at::rand({heads, nq, nk}).lt(0.8);
    c.mask[1][2].fill_(true);  // 150 windows in one run: 19 pieces
    c.mask[0][2].fill_(false);
    c.mask[0][2].narrow(0, 10, 140).fill_(true);  // a run across piece boundaries
    ASSERT_GT(c.mask.sum(-1).max().item<int64_t>(), 128);
    const at::Tensor oracle = masked_dense_attention(c.q, c.k, c.v, c.mask, heads);
    EXPECT_LE(rel_error(block_sparse_attention(c.q, c.k, c.v, c.mask, heads), oracle), 1e-12);
    const at::Tensor got32 =
        block_sparse_attention(c.q.to(at::kFloat), c.k.to(at::kFloat), c.v.to(at::kFloat), c.mask, heads);
    EXPECT_LE(rel_error(got32, oracle), 1e-5);
}

/// The work items of mask [heads, nq, nk] under `tuning`.
std::vector<AttentionWorkItem> items_of(const at::Tensor& mask, const CpuAttentionTuning& tuning) {
    AttentionGeometry g;
    g.heads = mask.size(0);
    g.nq = mask.size(1);
    g.nk = mask.size(2);
    const at::Tensor mc = mask.contiguous();
    return flashvsr::kernels::attention_work_items(mc.const_data_ptr<bool>(), g, tuning);
}

TEST(BlockSparseAttentionOp, DefaultPlanGroupsSimilarWindowsOnly) {
    const int64_t heads = 1, hd = 16, nq = 6, nk = 60;
    Case c = make_case(heads, hd, nq, nk, 5);
    c.mask.fill_(false);
    c.mask[0][0].fill_(true);                    // full
    c.mask[0][1].narrow(0, 8, 52).fill_(true);   // misses all of the group's first piece (windows 0-6)
    c.mask[0][3].narrow(0, 0, 30).fill_(true);   // window 2 keeps nothing; 3 and 4 are disjoint
    c.mask[0][4].narrow(0, 30, 30).fill_(true);  //
    c.mask[0][5].narrow(0, 30, 30).fill_(true);  // ragged: as window 4 less one block
    c.mask[0][5][31] = false;
    const std::vector<AttentionWorkItem> items = items_of(c.mask, CpuAttentionTuning{});
    ASSERT_EQ(items.size(), 3u);
    const int64_t expect[3][2] = {{0, 2}, {3, 1}, {4, 2}};  // (first, count): 112 >= 0.9 * 2 * 60, ...
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(items[i].h, 0);
        EXPECT_EQ(items[i].first, expect[i][0]) << i;
        EXPECT_EQ(items[i].count, expect[i][1]) << i;
    }
    const at::Tensor oracle = masked_dense_attention(c.q, c.k, c.v, c.mask, heads);
    const at::Tensor got = block_sparse_attention(c.q, c.k, c.v, c.mask, heads);
    EXPECT_LE(rel_error(got, oracle), 1e-12);
    const at::Tensor got32 =
        block_sparse_attention(c.q.to(at::kFloat), c.k.to(at::kFloat), c.v.to(at::kFloat), c.mask, heads);
    EXPECT_LE(rel_error(got32, oracle), 1e-5);
    EXPECT_FALSE(got32.isnan().any().item<bool>());
    EXPECT_TRUE(got32[2].eq(0).all().item<bool>());  // window 2 keeps nothing: exactly 0
    EXPECT_FALSE(got32[1].eq(0).all().item<bool>());
}

TEST(BlockSparseAttentionOp, GroupedWorkItemsMatchTheOracleInEveryTuning) {
    const int64_t heads = 3, hd = 16, nq = 7, nk = 11;
    Case c = make_case(heads, hd, nq, nk, 6);  // head 0 window 0 empty, head 2 window 6 full, ...
    c.mask[1][2].fill_(false);                 // a group with an empty window between full and ragged ones
    c.mask[1][3].fill_(true);
    c.mask[1][4].fill_(false);
    c.mask[1][4][0] = true;
    c.mask[1][4][10] = true;
    const at::Tensor oracle = masked_dense_attention(c.q, c.k, c.v, c.mask, heads);
    const auto q32 = c.q.to(at::kFloat), k32 = c.k.to(at::kFloat), v32 = c.v.to(at::kFloat);
    const at::Tensor kept = c.mask.any(-1);  // [heads, nq]
    const int64_t non_empty = kept.sum().item<int64_t>();
    namespace sr = flashvsr::kernels::softmax_rows;
    for (const int64_t group : {1, 2, 3, 7}) {
        for (const int64_t piece : {1, 3, 8}) {
            for (const sr::Isa isa : flashvsr::core::supported_cpu_isas()) {
                for (const CpuAttentionGemm gemm :
                     {CpuAttentionGemm::kBlas, CpuAttentionGemm::kBrgemm, CpuAttentionGemm::kTiles}) {
                    CpuAttentionTuning t;
                    t.max_group = group;
                    t.min_fill = 0.0;  // group every run of windows that keep something
                    t.piece_blocks = piece;
                    t.isa = isa;
                    t.gemm = gemm;
                    const std::string where = "group " + std::to_string(group) + " piece " +
                                              std::to_string(piece) + " isa " +
                                              std::to_string(static_cast<int>(isa)) + " gemm " +
                                              std::to_string(static_cast<int>(gemm));
                    // Every window that keeps something is in exactly one item; groups of up to `group`.
                    at::Tensor covered = at::zeros({heads, nq}, at::kInt);
                    int64_t largest = 0;
                    for (const AttentionWorkItem& it : items_of(c.mask, t)) {
                        covered[it.h].narrow(0, it.first, it.count).add_(1);
                        largest = std::max(largest, it.count);
                    }
                    EXPECT_TRUE(at::equal(covered, kept.to(at::kInt))) << where;
                    EXPECT_GE(largest, std::min<int64_t>(group, 4)) << where;  // head 1: windows 3-6
                    EXPECT_LE(largest, group) << where;
                    EXPECT_EQ(covered.sum().item<int64_t>(), non_empty) << where;
                    const at::Tensor got =
                        flashvsr::kernels::block_sparse_attention_cpu(c.q, c.k, c.v, c.mask, heads, t);
                    EXPECT_LE(rel_error(got, oracle), 1e-12) << where;
                    const at::Tensor got32 =
                        flashvsr::kernels::block_sparse_attention_cpu(q32, k32, v32, c.mask, heads, t);
                    EXPECT_LE(rel_error(got32, oracle), 1e-5) << where;
                    EXPECT_FALSE(got32.isnan().any().item<bool>()) << where;
                    // Empty windows: head 0 window 0, head 1 window 2: exactly 0.
                    EXPECT_TRUE(got32[0].narrow(-1, 0, hd).eq(0).all().item<bool>()) << where;
                    EXPECT_TRUE(got32[2].narrow(-1, hd, hd).eq(0).all().item<bool>()) << where;
                }
            }
        }
    }
}

TEST(BlockSparseAttentionOp, EqualsTheGatheredPath) {
    const Case c = make_case(4, 32, 6, 12, 4);
    const auto q = c.q.to(at::kFloat), k = c.k.to(at::kFloat), v = c.v.to(at::kFloat);
    const at::Tensor op = flashvsr::models::block_sparse_attention(q, k, v, c.mask, c.heads,
                                                                   flashvsr::models::AttentionKernel::kOp);
    const at::Tensor gathered = flashvsr::models::gathered_block_sparse_attention(q, k, v, c.mask, c.heads);
    EXPECT_LE(rel_error(op, gathered), 1e-5);
    EXPECT_TRUE(at::equal(op, block_sparse_attention(q, k, v, c.mask, c.heads)));  // kAuto on CPU = the op
}

TEST(BlockSparseAttentionOp, MetaKernelAndBadInput) {
    const auto meta = at::TensorOptions().device(at::kMeta);
    const at::Tensor out = block_sparse_attention(
        at::empty({4, 128, 64}, meta.dtype(at::kHalf)), at::empty({6, 128, 64}, meta.dtype(at::kHalf)),
        at::empty({6, 128, 64}, meta.dtype(at::kHalf)), at::empty({2, 4, 6}, meta.dtype(at::kBool)), 2);
    EXPECT_EQ(out.sizes(), at::IntArrayRef({4, 128, 64}));
    EXPECT_EQ(out.scalar_type(), at::kHalf);
    EXPECT_TRUE(out.is_meta());

    const auto q = at::randn({2, 128, 8}), k = at::randn({3, 128, 8});
    const auto m = at::ones({2, 2, 3}, at::kBool);
    const auto message = [](auto&& f) {
        try {
            f();
        } catch (const c10::Error& e) {
            return std::string(e.what_without_backtrace());
        }
        return std::string("no error");
    };
    EXPECT_NE(message([&] { block_sparse_attention(q, k, k, m, 3); }).find("do not split into 3 heads"),
              std::string::npos);
    EXPECT_NE(
        message([&] { block_sparse_attention(q, k, k, m.to(at::kFloat), 2); }).find("mask must be bool"),
        std::string::npos);
    EXPECT_NE(message([&] {
                  block_sparse_attention(q, k, k, at::ones({2, 3, 3}, at::kBool), 2);
              }).find("mask must be [2, 2, 3]"),
              std::string::npos);
    EXPECT_NE(message([&] { block_sparse_attention(q, k.to(at::kDouble), k, m, 2); }).find("share one dtype"),
              std::string::npos);
    EXPECT_NE(message([&] {
                  block_sparse_attention(at::randn({2, 64, 8}), k, k, m, 2);
              }).find("q must be [nq, 128"),
              std::string::npos);
}

}  // namespace
