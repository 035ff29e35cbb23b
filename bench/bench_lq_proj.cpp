// The LQ projector at full width (random weights of the "full" preset, fp32): its two causal convolutions
// direct (at::conv3d, oneDNN) and in F(2x2, 3x3) Winograd form (models/common/winograd_conv), per 4-frame
// clip, against the fp32 matmul rate of this process. Useful FLOPs count the direct convolution's
// multiply-adds (2 per tap), so the Winograd rate can exceed the matmul rate. Prints; asserts nothing.
// Usage: bench_lq_proj [--height 256] [--width 384] (output pixels) [--clips 4] [--threads N]
// Each path streams --clips clips (the first is a warm-up) alternating with the other; the best clip is
// shown.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "bench/matmul_rate.h"
#include "models/common/random_weights.h"
#include "models/lq_proj.h"

namespace {

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
    int64_t height = 256, width = 384, clips = 4, threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--height") {
            height = std::atoll(v.c_str());
        } else if (k == "--width") {
            width = std::atoll(v.c_str());
        } else if (k == "--clips") {
            clips = std::atoll(v.c_str());
        } else if (k == "--threads") {
            threads = std::atoll(v.c_str());
        } else {
            std::fprintf(stderr, "bench_lq_proj: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    if (threads > 0) {
        at::set_num_threads(static_cast<int>(threads));
    }
    namespace m = flashvsr::models;
    const m::LQProjConfig c = m::LQProjConfig::preset("full");
    const m::TensorMap w = m::random_weights(m::LQProj::manifest(c), 1);
    const int64_t tokens = (height / 16) * (width / 16);
    // Per steady clip: conv1 gives 2 frames (768 -> C1), conv2 1 frame (C1 -> C2), 36 taps each.
    const double flops = 2.0 * 36 * tokens *
                         (2.0 * c.in_channels * c.conv1_channels + 1.0 * c.conv1_channels * c.conv2_channels);
    // The reference: the faster fp32 GEMM of the process, MKL's at::mm or oneDNN's (models::dense_linear).
    const double rates[2] = {flashvsr::bench::matmul_rate(flashvsr::bench::Gemm::kMkl),
                             flashvsr::bench::matmul_rate(flashvsr::bench::Gemm::kOneDnn)};
    const double mm_rate = std::max(rates[0], rates[1]);
    std::printf(
        "bench_lq_proj: %lldx%lld output (%lld tokens), full width, fp32, %d threads; %.1f GFLOP per clip; "
        "fp32 matmul %.0f GFLOP/s (MKL at::mm %.0f, oneDNN %.0f)\n",
        static_cast<long long>(height), static_cast<long long>(width), static_cast<long long>(tokens),
        at::get_num_threads(), flops / 1e9, mm_rate, rates[0], rates[1]);
    at::manual_seed(0);
    const at::Tensor video = at::rand({1, 3, 1 + 4 * clips, height, width}) * 2 - 1;
    // Both forms built once (the load time includes the weight transform), then clips timed alternately.
    struct Path {
        const char* name;
        std::unique_ptr<m::LQProj> proj;
        m::LQProjState state;
        double load_s = 0, best = 1e30;
        at::Tensor last;
    };
    Path paths[2] = {{"direct", nullptr, {}}, {"winograd", nullptr, {}}};
    double t0 = 0;
    for (int p = 0; p < 2; ++p) {
        t0 = now();
        paths[p].proj =
            std::make_unique<m::LQProj>(w, "random", m::LoadOptions{at::kFloat, at::kCPU, p == 1});
        paths[p].load_s = now() - t0;
        (void)paths[p].proj->stream(video.narrow(2, 0, 1), paths[p].state);
    }
    for (int64_t i = 0; i < clips; ++i) {
        for (Path& p : paths) {
            t0 = now();
            p.last = p.proj->stream(video.narrow(2, 1 + 4 * i, 4), p.state);
            if (i > 0) {  // clip 0 warms up
                p.best = std::min(p.best, now() - t0);
            }
        }
    }
    for (const Path& p : paths) {
        const double diff = ((p.last - paths[0].last).abs().max() / paths[0].last.abs().max()).item<double>();
        std::printf(
            "  %-9s %8.1f ms per clip  %6.1f GFLOP/s  %5.1f%% of matmul  load %.2f s, weights %.0f MiB  "
            "(max rel diff to direct %.1e)\n",
            p.name, p.best * 1e3, flops / p.best / 1e9, 100 * flops / p.best / 1e9 / mm_rate, p.load_s,
            static_cast<double>(p.proj->weight_bytes()) / (1 << 20), diff);
    }
    return 0;
}
