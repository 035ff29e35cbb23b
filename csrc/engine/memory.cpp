// Memory report: process RSS from /proc/self/status; CUDA allocator counters from memory_cuda.cpp (CUDA
// builds only).
#include <flashvsr/flashvsr.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>

#include "csrc/core/proc_status.h"
#include "csrc/engine/engine_impl.h"

namespace flashvsr {
namespace {

int64_t status_bytes(const char* field) {  // 0 when absent
    return std::max<int64_t>(0, proc_status_kib(field) * 1024);
}

}  // namespace

#if !defined(FLASHVSR_WITH_CUDA)
void engine::fill_cuda_memory(MemoryReport&) {}  // CPU build: no CUDA figures (cuda = false)
void engine::empty_cuda_cache() {}
#endif

void engine::trim_host_heap() {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

void engine::return_free_memory() {
    trim_host_heap();
    empty_cuda_cache();
}

MemoryReport memory_report() {
    MemoryReport r;
    r.rss_bytes = status_bytes("VmRSS");
    r.peak_rss_bytes = status_bytes("VmHWM");
    engine::fill_cuda_memory(r);
    return r;
}

MemoryReport Engine::memory() const { return memory_report(); }

}  // namespace flashvsr
