// Throughput of the tile-blend accumulate (CPU twin; CUDA twin when a device exists) and the process
// memory around it. Usage: bench_blend [frames=8] [height=1080] [width=1920] [tile=512] [overlap=64]
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "csrc/core/proc_status.h"
#include "kernels/blend_accumulate/blend_accumulate.h"

namespace {

std::vector<int64_t> starts(int64_t n, int64_t t, int64_t o) {
    std::vector<int64_t> s{0};
    while (s.back() + t < n) {
        s.push_back(std::min(s.back() + t - o, n - t));
    }
    return s;
}

double run(const at::Device dev, int64_t F, int64_t H, int64_t W, int64_t T, int64_t O, int reps) {
    at::Tensor canvas = at::zeros({F, H, W, 3}, at::TensorOptions().device(dev));
    const int64_t th = std::min(T, H), tw = std::min(T, W);
    const at::Tensor tile = at::rand({F, th, tw, 3}, at::TensorOptions().device(dev));
    const auto ys = starts(H, th, O), xs = starts(W, tw, O);
    auto once = [&] {
        for (size_t i = 0; i < ys.size(); ++i) {
            for (size_t j = 0; j < xs.size(); ++j) {
                const int64_t rt = i ? ys[i - 1] + th - ys[i] : 0,
                              rb = i + 1 < ys.size() ? ys[i] + th - ys[i + 1] : 0;
                const int64_t rl = j ? xs[j - 1] + tw - xs[j] : 0,
                              rr = j + 1 < xs.size() ? xs[j] + tw - xs[j + 1] : 0;
                flashvsr::kernels::blend_accumulate(canvas, tile, ys[i], xs[j], {rt, rb, rl, rr});
            }
        }
    };
    once();  // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) {
        once();
    }
    if (dev.is_cuda()) {
        canvas.cpu();  // synchronises
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return static_cast<double>(F) * reps / s;
}

}  // namespace

int main(int argc, char** argv) {
    auto arg = [&](int i, int64_t d) { return argc > i ? std::atoll(argv[i]) : d; };
    const int64_t F = arg(1, 8), H = arg(2, 1080), W = arg(3, 1920), T = arg(4, 512), O = arg(5, 64);
    std::printf("bench_blend: %lld frames of %lldx%lld, tiles %lld px, overlap %lld px, %d threads\n",
                static_cast<long long>(F), static_cast<long long>(H), static_cast<long long>(W),
                static_cast<long long>(T), static_cast<long long>(O), at::get_num_threads());
    const double cpu_fps = run(at::kCPU, F, H, W, T, O, 3);
    std::printf("cpu : %8.1f frames/s blended   rss %lld KiB  peak rss %lld KiB\n", cpu_fps,
                static_cast<long long>(flashvsr::proc_status_kib("VmRSS")),
                static_cast<long long>(flashvsr::proc_status_kib("VmHWM")));
    if (at::globalContext().hasCUDA()) {
        const double gpu_fps = run(at::Device(at::kCUDA, 0), F, H, W, T, O, 10);
        std::printf("cuda: %8.1f frames/s blended\n", gpu_fps);
    } else {
        std::printf("cuda: no device\n");
    }
    return 0;
}
