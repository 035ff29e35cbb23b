// Process-memory helpers for tests that assert memory bounds.
#pragma once

#include <malloc.h>

#include <fstream>
#include <string>

namespace flashvsr::testing {

/// A field of /proc/self/status in KiB ("VmRSS:", "VmHWM:"), -1 when absent.
inline long status_kib(const char* field) {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::string(field).size()));
    }
    return -1;
}

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
