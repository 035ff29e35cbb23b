#include "csrc/core/heap.h"

#include <cstdlib>
#include <initializer_list>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace flashvsr::core {

bool keep_freed_heap_memory() {
#if defined(__GLIBC__)
    for (const char* v : {"MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"}) {
        if (std::getenv(v) != nullptr) {
            return false;
        }
    }
    return mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, -1) == 1;
#else
    return false;
#endif
}

}  // namespace flashvsr::core
