#include "csrc/core/parallel.h"

#include <ATen/Parallel.h>

#include <mutex>
#include <set>
#include <thread>

namespace flashvsr::core {

int parallel_for_threads() {
    std::mutex mu;
    std::set<std::thread::id> seen;
    at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t begin, int64_t end) {
        const std::lock_guard<std::mutex> lock(mu);
        seen.insert(std::this_thread::get_id());
    });
    return static_cast<int>(seen.size());
}

}  // namespace flashvsr::core
