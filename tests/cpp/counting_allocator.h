// Allocator bytes for tests that assert what is alive at a point of a run: a CPU allocator that wraps
// ATen's, counting the live bytes, their peak and the live blocks by size. Installed for the lifetime of a
// CountingCpuAllocator (one at a time); blocks allocated before keep their own deleters, blocks allocated
// through it and freed after it is gone are still freed and uncounted (the registry is never destroyed).
// Assert differences of live() / peak() taken while it is installed.
#pragma once

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace flashvsr::testing {

class CountingCpuAllocator final : public c10::Allocator {
  public:
    CountingCpuAllocator() : inner_(c10::GetCPUAllocator()) {
        reset_peak();  // blocks of an earlier instance still alive stay counted (live) until freed
        c10::SetCPUAllocator(this, kPriority);
    }
    ~CountingCpuAllocator() override { c10::SetCPUAllocator(inner_, kPriority); }
    CountingCpuAllocator(const CountingCpuAllocator&) = delete;
    CountingCpuAllocator& operator=(const CountingCpuAllocator&) = delete;

    // The context is the data pointer (ATen's raw_allocate() requires it); the inner block waits in the
    // registry until `release`.
    c10::DataPtr allocate(size_t n) override {
        c10::DataPtr d = inner_->allocate(n);
        void* data = d.get();
        const c10::Device device = d.device();
        Registry& r = registry();
        const std::lock_guard<std::mutex> lock(r.mu);
        r.live += n;
        r.peak = std::max(r.peak, r.live);
        ++r.sizes[n];
        r.blocks.emplace(data, std::make_pair(n, std::move(d)));
        return {data, data, &release, device};
    }
    c10::DeleterFnPtr raw_deleter() const override { return &release; }
    void copy_data(void* dest, const void* src, size_t count) const override {
        default_copy_data(dest, src, count);
    }

    /// Bytes allocated through this allocator and not yet freed.
    size_t live() const {
        const std::lock_guard<std::mutex> lock(registry().mu);
        return registry().live;
    }
    /// Most bytes live at once since construction or the last reset_peak().
    size_t peak() const {
        const std::lock_guard<std::mutex> lock(registry().mu);
        return registry().peak;
    }
    void reset_peak() const {
        const std::lock_guard<std::mutex> lock(registry().mu);
        registry().peak = registry().live;
    }
    /// Live blocks of exactly `n` bytes.
    int blocks_of(size_t n) const {
        const std::lock_guard<std::mutex> lock(registry().mu);
        const auto it = registry().sizes.find(n);
        return it == registry().sizes.end() ? 0 : it->second;
    }
    /// Live blocks by size (bytes -> count).
    std::map<size_t, int> sizes() const {
        const std::lock_guard<std::mutex> lock(registry().mu);
        return registry().sizes;
    }

  private:
    static constexpr uint8_t kPriority = 100;  // above ATen's own registration
    struct Registry {
        std::mutex mu;
        size_t live = 0, peak = 0;
        std::map<size_t, int> sizes;
        std::unordered_map<void*, std::pair<size_t, c10::DataPtr>> blocks;
    };
    static Registry& registry() {
        static auto* r = new Registry;  // never destroyed: blocks may be freed at exit
        return *r;
    }
    static void release(void* data) {
        c10::DataPtr inner;
        {
            Registry& r = registry();
            const std::lock_guard<std::mutex> lock(r.mu);
            const auto it = r.blocks.find(data);
            const size_t n = it->second.first;
            inner = std::move(it->second.second);
            r.blocks.erase(it);
            r.live -= n;
            if (--r.sizes[n] == 0) {
                r.sizes.erase(n);
            }
        }
        // `inner` frees the block here, outside the lock
    }

    c10::Allocator* inner_;
};

}  // namespace flashvsr::testing
