// Test and profiling hooks of a Stream (internal: tests/cpp/test_tiling.cpp, tests/gpu_check, bench/):
// what the public header does not offer, reached through the streams' opaque state.
#pragma once

#include <flashvsr/flashvsr.h>

#include <cstdint>
#include <exception>
#include <functional>

#include "csrc/engine/transfers.h"

namespace flashvsr::engine {

/// Test hooks of one stream.
struct TilingHooks {
    uint64_t order_seed = 0;  // != 0: tiles run in a pseudo-random order (the output must not change)
    int64_t replay_chunks =
        0;  // > 0: replay this many chunks instead of replay_chunks(options) (measurements)
    std::function<void(int64_t chunk, int64_t tile, const TileRect&)>
        before_tile;  // may throw (OOM injection)
    std::function<void(int64_t chunk, int64_t tile)> after_tile;
    /// Called around each step of a tile's chunk ("lq_proj", "dit", "decoder", "blend") and of the chunk
    /// ("color_fix"): `begin` true before, false after (profiling: scripts/gpu_check.sh).
    std::function<void(const char* stage, bool begin)> stage;
    /// Called after each trim of the host heap (CPU runs: between the networks of a chunk, after each DiT
    /// block and after each decoder step).
    std::function<void()> heap_trimmed;
};

/// Calls hooks.stage(name, true) now and hooks.stage(name, false) when it goes out of scope normally.
class StageScope {
  public:
    StageScope(const TilingHooks& h, const char* name) : h_(h), name_(name) {
        if (h_.stage) {
            h_.stage(name_, true);
        }
    }
    ~StageScope() {
        if (h_.stage && std::uncaught_exceptions() == 0) {
            h_.stage(name_, false);
        }
    }
    StageScope(const StageScope&) = delete;
    StageScope& operator=(const StageScope&) = delete;

  private:
    const TilingHooks& h_;
    const char* name_;
};

struct StreamAccess {
    static void set_hooks(Stream& s, TilingHooks hooks);
    static TransferBytes transfers(const Stream& s);
    static int64_t oom_fallbacks(const Stream& s);  // out-of-memory errors the fallback caught so far
};

}  // namespace flashvsr::engine
