// CUDA part of the memory report (compiled only in CUDA builds): the caching allocator's counters for the
// current device.
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>

#include "csrc/engine/engine_impl.h"

namespace flashvsr::engine {

void fill_cuda_memory(MemoryReport& r) {
    if (c10::cuda::device_count() <= 0) {
        return;  // no device or no driver: cuda stays false
    }
    const c10::DeviceIndex dev = c10::cuda::current_device();
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(dev);
    constexpr auto kAll = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    r.cuda = true;
    r.cuda_allocated_bytes = stats.allocated_bytes[kAll].current;
    r.cuda_reserved_bytes = stats.reserved_bytes[kAll].current;
    r.cuda_peak_allocated_bytes = stats.allocated_bytes[kAll].peak;
}

void empty_cuda_cache() {
    if (c10::cuda::device_count() > 0) {
        c10::cuda::CUDACachingAllocator::emptyCache();
    }
}

}  // namespace flashvsr::engine
