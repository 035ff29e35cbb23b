// The core's CPU kernels (attention rows, int8 rows, blend, Winograd transforms) use at::parallel_for, which
// is serial in code compiled without OpenMP: check that the core gets the threads it asks for.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include "csrc/core/parallel.h"

TEST(Parallel, CoreParallelForUsesEveryIntraOpThread) {
    const int before = at::get_num_threads();
    at::set_num_threads(2);
    EXPECT_EQ(flashvsr::core::parallel_for_threads(), 2);
    at::set_num_threads(1);
    EXPECT_EQ(flashvsr::core::parallel_for_threads(), 1);
    at::set_num_threads(before);
}
