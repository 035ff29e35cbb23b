// csrc/core/heap: the heap setting the flashvsr command makes, and that a user's MALLOC_* variables win.
#include <gtest/gtest.h>

#include <cstdlib>

#include "csrc/core/heap.h"

TEST(Heap, KeepsFreedMemoryUnlessTheUserSetMallocVariables) {
#if defined(__GLIBC__)
    ASSERT_EQ(::setenv("MALLOC_TRIM_THRESHOLD_", "1000000", 1), 0);
    EXPECT_FALSE(flashvsr::core::keep_freed_heap_memory());
    ASSERT_EQ(::unsetenv("MALLOC_TRIM_THRESHOLD_"), 0);
    EXPECT_TRUE(flashvsr::core::keep_freed_heap_memory());
    // A large block now comes from the heap and is reused: freeing and allocating it again gives it back.
    void* a = std::malloc(size_t{64} << 20);
    ASSERT_NE(a, nullptr);
    std::free(a);
    void* b = std::malloc(size_t{64} << 20);
    EXPECT_EQ(a, b);
    std::free(b);
#else
    EXPECT_FALSE(flashvsr::core::keep_freed_heap_memory());
#endif
}
