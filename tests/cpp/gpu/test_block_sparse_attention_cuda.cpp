// CUDA twin of block_sparse_attention against the CPU twin (needs a GPU; label `gpu`).
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>

#include "kernels/block_sparse_attention/block_sparse_attention.h"

TEST(BlockSparseAttentionCuda, EqualsCpuTwin) {
    ASSERT_TRUE(at::globalContext().hasCUDA()) << "this binary needs a CUDA device";
    at::manual_seed(0);
    const int64_t heads = 3, hd = 128, nq = 6, nk = 20;
    const at::Tensor q = at::randn({nq, 128, heads * hd}), k = at::randn({nk, 128, heads * hd}),
                     v = at::randn({nk, 128, heads * hd});
    at::Tensor mask = at::rand({heads, nq, nk}).lt(0.4);
    mask[0][0].fill_(false);
    mask[2][5].fill_(true);
    struct Tol {
        at::ScalarType type;
        double max_abs;
    };
    for (const Tol t :
         {Tol{at::kFloat, 1e-5}, Tol{at::kDouble, 1e-12}, Tol{at::kHalf, 4e-3}, Tol{at::kBFloat16, 3e-2}}) {
        const auto cpu =
            flashvsr::kernels::block_sparse_attention(q.to(t.type), k.to(t.type), v.to(t.type), mask, heads);
        const auto gpu = flashvsr::kernels::block_sparse_attention(q.to(t.type).cuda(), k.to(t.type).cuda(),
                                                                   v.to(t.type).cuda(), mask.cuda(), heads);
        ASSERT_EQ(gpu.scalar_type(), t.type);
        EXPECT_LE((gpu.cpu().to(at::kDouble) - cpu.to(at::kDouble)).abs().max().item<double>(), t.max_abs)
            << t.type;
        EXPECT_TRUE(gpu.cpu()[0].narrow(-1, 0, hd).eq(0).all().item<bool>()) << t.type;  // empty row
    }
}
