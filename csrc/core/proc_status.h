// The one reader of /proc/self/status (Linux): process memory figures for memory_report(), the CLI's
// --report, tests that bound memory, benchmarks and the GPU check.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

namespace flashvsr {

/// A "kB" field of /proc/self/status in KiB: proc_status_kib("VmRSS") (resident now), "VmHWM" (peak
/// resident since start or the last reset of the peak). -1 when the field or the file is absent.
inline int64_t proc_status_kib(const char* field) {
    std::ifstream f("/proc/self/status");
    const std::string key = std::string(field) + ":";
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind(key, 0) == 0) {
            return std::stoll(line.substr(key.size()));
        }
    }
    return -1;
}

}  // namespace flashvsr
