// int8_linear on CUDA (the ATen reference: CUDA's _int_mm with the zero-row padding for M <= 16) against the
// fused CPU kernel (needs a GPU; label `gpu`).
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>

#include "kernels/int8_linear/int8_linear.h"

TEST(Int8LinearCuda, EqualsCpuKernel) {
    ASSERT_TRUE(at::globalContext().hasCUDA()) << "this binary needs a CUDA device";
    at::manual_seed(0);
    for (const int64_t m : {1, 16, 17, 77}) {  // CUDA's _int_mm needs M > 16: smaller M is padded
        const int64_t k = 1536, n = 8960;
        const at::Tensor w = at::randn({n, k}) * 0.05;
        const at::Tensor scale = (w.abs().amax(1, true) / 127.0).clamp_min(1e-20);
        const at::Tensor qw = (w / scale).round_().clamp_(-127, 127).to(at::kChar).t().contiguous();
        const at::Tensor ws = scale.view({-1}).contiguous();
        const at::Tensor x = at::randn({1, m, k}), bias = at::randn({n});
        const at::Tensor cpu = flashvsr::kernels::int8_linear(x, qw, ws, bias);
        const at::Tensor gpu = flashvsr::kernels::int8_linear(x.cuda(), qw.cuda(), ws.cuda(), bias.cuda());
        ASSERT_EQ(gpu.sizes(), cpu.sizes());
        const double rel = (gpu.cpu() - cpu).abs().max().item<double>() / cpu.abs().max().item<double>();
        EXPECT_LE(rel, 1e-6) << "M=" << m;
        // bfloat16 activations (the CUDA compute dtype)
        const at::Tensor gb = flashvsr::kernels::int8_linear(x.cuda().to(at::kBFloat16), qw.cuda(), ws.cuda(),
                                                             bias.cuda().to(at::kBFloat16));
        EXPECT_EQ(gb.scalar_type(), at::kBFloat16);
        const at::Tensor cb =
            flashvsr::kernels::int8_linear(x.to(at::kBFloat16), qw, ws, bias.to(at::kBFloat16));
        EXPECT_LE((gb.cpu().to(at::kFloat) - cb.to(at::kFloat)).abs().max().item<double>(),
                  1e-2 * cb.to(at::kFloat).abs().max().item<double>())
            << "M=" << m;
    }
}
