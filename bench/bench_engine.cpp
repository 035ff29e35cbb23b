// Streaming engine throughput and memory on random weights (or a real model folder).
// Usage: bench_engine [--size tiny|small] [--mode tiny|tiny-long|full] [--width 64] [--height 48]
//                     [--frames 45] [--scale 4] [--dtype fp32|bf16] [--model-dir DIR] [--threads N]
// Prints frames/s (after the first chunk, and overall), the chunk times, state bytes and peak RSS.
#include <flashvsr/flashvsr.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "models/test_weights.h"

int main(int argc, char** argv) {
    std::string size = "tiny", mode = "tiny", dtype = "fp32", model_dir;
    int64_t width = 64, height = 48, frames = 45, scale = 4, threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--size") {
            size = v;
        } else if (k == "--mode") {
            mode = v;
        } else if (k == "--dtype") {
            dtype = v;
        } else if (k == "--model-dir") {
            model_dir = v;
        } else if (k == "--width") {
            width = std::atoll(v.c_str());
        } else if (k == "--height") {
            height = std::atoll(v.c_str());
        } else if (k == "--frames") {
            frames = std::atoll(v.c_str());
        } else if (k == "--scale") {
            scale = std::atoll(v.c_str());
        } else if (k == "--threads") {
            threads = std::atoll(v.c_str());
        } else {
            std::fprintf(stderr, "bench_engine: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    if (threads > 0) {
        at::set_num_threads(static_cast<int>(threads));
    }
    namespace fs = std::filesystem;
    fs::path tmp;
    if (model_dir.empty()) {
        tmp = fs::temp_directory_path() / ("flashvsr_bench_" + std::to_string(::getpid()));
        model_dir = (tmp / "FlashVSR-v1.1").string();
        flashvsr::models::TestWeightsOptions o;
        o.size = size;
        flashvsr::models::make_test_weights(model_dir, o);
    }
    try {
        flashvsr::EngineOptions eo;
        eo.model_dir = model_dir;
        eo.mode = mode;
        eo.dtype = dtype;
        const auto engine = flashvsr::Engine::load(eo);
        std::printf(
            "bench_engine: weights %s (%s, %s, %s), mode %s, %lldx%lld x%lld -> %lldx%lld, %lld frames, %d "
            "threads\n",
            model_dir.c_str(), engine->info().version.c_str(), engine->info().device.c_str(),
            engine->info().dtype.c_str(), mode.c_str(), static_cast<long long>(width),
            static_cast<long long>(height), static_cast<long long>(scale),
            static_cast<long long>(width * scale), static_cast<long long>(height * scale),
            static_cast<long long>(frames), at::get_num_threads());
        at::manual_seed(0);
        const at::Tensor video = at::rand({frames, height, width, 3});
        flashvsr::UpscaleOptions uo;
        uo.scale = scale;
        flashvsr::Stream s = engine->stream(uo);
        using clock = std::chrono::steady_clock;
        std::vector<double> chunk_s;
        auto last = clock::now();
        const auto t0 = last;
        s.set_progress([&](int64_t, int64_t) {
            const auto now = clock::now();
            chunk_s.push_back(std::chrono::duration<double>(now - last).count());
            last = now;
            return true;
        });
        s.push(video);
        s.finish();
        const at::Tensor out = s.pull();
        const double total = std::chrono::duration<double>(clock::now() - t0).count();
        double later = 0;
        for (size_t i = 1; i < chunk_s.size(); ++i) {
            later += chunk_s[i];
        }
        std::printf("chunks %zu: first %.2f s", chunk_s.size(), chunk_s.empty() ? 0.0 : chunk_s[0]);
        if (chunk_s.size() > 1) {
            std::printf(", later %.2f s each -> %.2f frames/s steady", later / (chunk_s.size() - 1),
                        8.0 * (chunk_s.size() - 1) / later);
        }
        std::printf("\noverall %.2f frames/s (%lld frames in %.2f s), out %lldx%lld\n", frames / total,
                    static_cast<long long>(out.size(0)), total, static_cast<long long>(out.size(2)),
                    static_cast<long long>(out.size(1)));
        const flashvsr::MemoryReport mem = flashvsr::memory_report();
        std::printf("stream state %.1f MiB, weights %.1f MiB, RSS %.1f MiB, peak RSS %.1f MiB\n",
                    s.state_bytes() / 1048576.0, engine->info().weight_bytes / 1048576.0,
                    mem.rss_bytes / 1048576.0, mem.peak_rss_bytes / 1048576.0);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_engine: %s\n", e.what());
        if (!tmp.empty()) {
            fs::remove_all(tmp);
        }
        return 1;
    }
    if (!tmp.empty()) {
        fs::remove_all(tmp);
    }
    return 0;
}
