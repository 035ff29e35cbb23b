// Process-memory helpers for tests that assert memory bounds.
#pragma once

#include <malloc.h>

#include <fstream>

#include "csrc/core/proc_status.h"

namespace flashvsr::testing {

/// proc_status_kib("VmRSS") / ("VmHWM"): the process memory figures in KiB (core/proc_status.h).
using flashvsr::proc_status_kib;

/// Resets VmHWM (peak RSS) to the current RSS.
inline void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

/// Large blocks come from mmap and go back to the kernel when freed, so RSS measures what is live now
/// (with glibc's dynamic threshold, memory freed by earlier tests would be reused invisibly).
inline void return_freed_memory() {
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    malloc_trim(0);
}

}  // namespace flashvsr::testing
