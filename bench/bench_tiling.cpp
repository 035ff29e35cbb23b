// The tiled streaming engine on random weights (CPU): frames/s, peak RSS, bytes of state per tile, and the
// per-tile memory model's estimate next to the measured working set (docs/TILING.md).
// Usage: bench_tiling [size=tiny] [height=128] [width=192] [scale=2]
#include <flashvsr/flashvsr.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "csrc/engine/engine_impl.h"
#include "csrc/engine/stream_access.h"
#include "csrc/engine/tiling/planner.h"
#include "models/test_weights.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
    const std::string size = argc > 1 ? argv[1] : "tiny";
    const int64_t h = argc > 2 ? std::atoll(argv[2]) : 128;
    const int64_t w = argc > 3 ? std::atoll(argv[3]) : 192;
    const int64_t scale = argc > 4 ? std::atoll(argv[4]) : 2;
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);  // RSS follows live memory (freed blocks go back to the kernel)
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    const fs::path dir =
        fs::temp_directory_path() / ("flashvsr_bench_tiling_" + std::to_string(::getpid())) / "FlashVSR-v1.1";
    flashvsr::models::TestWeightsOptions wo;
    wo.size = size;
    wo.prompt_tokens = 64;
    flashvsr::models::make_test_weights(dir.string(), wo);
    flashvsr::EngineOptions eo;
    eo.model_dir = dir.string();
    eo.device = "cpu";
    const auto engine = flashvsr::Engine::load(eo);
    const auto& impl = engine->impl();
    std::printf("weights %s (%.1f MB fp32), input %lldx%lld, scale %lld, threads %d\n", size.c_str(),
                engine->info().weight_bytes / 1e6, static_cast<long long>(w), static_cast<long long>(h),
                static_cast<long long>(scale), at::get_num_threads());
    flashvsr::UpscaleOptions base;
    base.scale = scale;
    const auto model = flashvsr::engine::tile_memory_model(impl, base);
    std::printf("model: state %.1f B/px, transient %.1f B/px, frame buffers %.1f B/px, fixed %.1f MB\n",
                model.state_per_px, model.transient_per_px, model.frame_per_px, model.fixed_bytes / 1e6);
    std::printf(
        "| tile (in px) | tiles | frames | frames/s | peak RSS above baseline (MB) | model working set (MB) "
        "| "
        "model, parked (MB) | state per tile (KB) | state, all tiles (KB) | replay buffer (KB) |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n");
    at::manual_seed(0);
    const at::Tensor batch = at::rand({8, h, w, 3});
    for (int64_t tile : {int64_t{0}, int64_t{128}, int64_t{64}}) {
        for (int64_t frames : {int64_t{25}, int64_t{100}, int64_t{400}}) {
            flashvsr::UpscaleOptions u = base;
            u.tile_size = tile;
            malloc_trim(0);
            const long before = static_cast<long>(flashvsr::memory_report().rss_bytes / 1024);
            std::ofstream("/proc/self/clear_refs") << "5";
            const auto t0 = std::chrono::steady_clock::now();
            flashvsr::Stream s = engine->stream(u);
            int64_t tile_bytes = 0, all_bytes = 0, ring_bytes = 0;
            for (int64_t i = 0; i < frames; i += 8) {
                s.push(batch.narrow(0, 0, std::min<int64_t>(8, frames - i)));
                (void)s.pull();
                tile_bytes = s.tile_state_bytes(0);
                all_bytes = s.state_bytes();
                ring_bytes = s.replay_buffer_bytes();
            }
            s.finish();
            (void)s.pull();
            const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const long peak = static_cast<long>(flashvsr::memory_report().peak_rss_bytes / 1024);
            flashvsr::engine::TileLayout layout{};
            const auto rects = s.tiles();
            const auto pad_h = rects.back().top + rects.back().height,
                       pad_w = rects.back().left + rects.back().width;
            layout = flashvsr::engine::initial_plan(impl, u, pad_h, pad_w).layout;
            std::printf("| %s | %zu | %lld | %.1f | %.1f | %.1f | %.1f | %.0f | %.0f | %.0f |\n",
                        tile == 0 ? "whole frame" : std::to_string(tile).c_str(), rects.size(),
                        static_cast<long long>(frames), static_cast<double>(frames) / sec,
                        (peak - before) / 1024.0, model.working_set(layout) / 1e6,
                        model.working_set(layout, true) / 1e6, tile_bytes / 1e3, all_bytes / 1e3,
                        ring_bytes / 1e3);
        }
    }
    fs::remove_all(dir.parent_path());
    return 0;
}
