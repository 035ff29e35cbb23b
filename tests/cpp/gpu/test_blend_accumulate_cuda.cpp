// CUDA twin of blend_accumulate against the CPU twin (needs a GPU; label `gpu`).
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>

#include "kernels/blend_accumulate/blend_accumulate.h"

TEST(BlendAccumulateCuda, EqualsCpuTwin) {
    ASSERT_TRUE(at::globalContext().hasCUDA()) << "this binary needs a CUDA device";
    at::manual_seed(0);
    const at::Tensor canvas = at::rand({3, 70, 90, 3});
    const at::Tensor tile = at::rand({3, 40, 50, 3});
    for (const auto dtype : {at::kFloat, at::kHalf, at::kBFloat16}) {
        at::Tensor cpu = canvas.clone();
        flashvsr::kernels::blend_accumulate(cpu, tile.to(dtype), 20, 33, {7, 5, 9, 11});
        at::Tensor gpu = canvas.to(at::kCUDA);
        flashvsr::kernels::blend_accumulate(gpu, tile.to(dtype).to(at::kCUDA), 20, 33, {7, 5, 9, 11});
        EXPECT_LE((gpu.cpu() - cpu).abs().max().item<float>(), 1e-6f) << dtype;
    }
}
