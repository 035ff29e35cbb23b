// One DiT linear layer at the engine's sizes: fp32 at::linear, the unfused int8 path (plain ATen:
// int8_linear_reference) and the fused op (torch.ops.flashvsr.int8_linear), with at::_int_mm alone on the
// same shape and the fp32 / int8 matmul rates of this process. Prints; asserts nothing.
// Usage: bench_int8_linear [--height 256] [--width 384] (output pixels) [--dim 1536] [--ffn 8960]
//                          [--reps 7] [--threads 2] [--blocks 30]
// Tokens: a steady chunk has 2 latent frames of (H/16) x (W/16) tokens (768 at 256x384), the first chunk 6.
// Per DiT block the chunk runs 6 linears of dim -> dim on its tokens (self q, k, v, o; cross q, o) and the
// FFN dim -> ffn -> dim; "per chunk" sums them over --blocks blocks.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "kernels/int8_linear/int8_linear.h"

namespace {

double seconds(const std::function<void()>& fn, int64_t reps) {
    fn();  // warm-up
    double best = 1e30;
    for (int64_t r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

/// [n x n] x [n x n] in this process, GFLOP/s (GOP/s for int8), best of 3.
double matmul_rate(bool int8) {
    constexpr int64_t n = 2048;
    const at::Tensor a = int8 ? at::randint(-64, 64, {n, n}, at::kChar) : at::randn({n, n});
    const at::Tensor b = int8 ? at::randint(-64, 64, {n, n}, at::kChar) : at::randn({n, n});
    const double s = seconds([&] { int8 ? at::_int_mm(a, b) : at::mm(a, b); }, 3);
    return 2.0 * n * n * n / 1e9 / s;
}

struct Times {
    double fp32 = 0, unfused = 0, fused = 0, int_mm = 0;
};

Times run_shape(int64_t m, int64_t k, int64_t n, int64_t reps) {
    at::manual_seed(0);
    const at::Tensor x = at::randn({1, m, k});
    const at::Tensor w = at::randn({n, k}) * 0.02;
    const at::Tensor bias = at::randn({n}) * 0.02;
    const at::Tensor scale = (w.abs().amax(1, true) / 127.0).clamp_min(1e-20);
    const at::Tensor qw = (w / scale).round_().clamp_(-127, 127).to(at::kChar).t().contiguous();
    const at::Tensor ws = scale.view({-1}).contiguous();
    const at::Tensor xq = at::randint(-127, 128, {m, k}, at::kChar);
    Times t;
    t.fp32 = seconds([&] { at::linear(x, w, bias); }, reps);
    t.unfused = seconds([&] { flashvsr::kernels::int8_linear_reference(x, qw, ws, bias); }, reps);
    t.fused = seconds([&] { flashvsr::kernels::int8_linear(x, qw, ws, bias); }, reps);
    t.int_mm = seconds([&] { at::_int_mm(xq, qw); }, reps);
    return t;
}

}  // namespace

int main(int argc, char** argv) {
    int64_t height = 256, width = 384, dim = 1536, ffn = 8960, reps = 7, threads = 2, blocks = 30;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i];
        const int64_t v = std::atoll(argv[i + 1]);
        if (key == "--height") {
            height = v;
        } else if (key == "--width") {
            width = v;
        } else if (key == "--dim") {
            dim = v;
        } else if (key == "--ffn") {
            ffn = v;
        } else if (key == "--reps") {
            reps = v;
        } else if (key == "--threads") {
            threads = v;
        } else if (key == "--blocks") {
            blocks = v;
        } else {
            std::fprintf(stderr, "bench_int8_linear: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (threads > 0) {
        at::set_num_threads(static_cast<int>(threads));
    }
    const at::InferenceMode inference;
    std::printf("threads %d; fp32 at::mm %.0f GFLOP/s, int8 at::_int_mm %.0f GOP/s (2048^3, this process)\n",
                at::get_num_threads(), matmul_rate(false), matmul_rate(true));
    const int64_t per_frame = (height / 16) * (width / 16);
    for (const int64_t frames : {int64_t{2}, int64_t{6}}) {
        const int64_t m = frames * per_frame;
        std::printf("\n%s chunk: %lld tokens (%lldx%lld output, %lld latent frames)\n",
                    frames == 2 ? "steady" : "first", static_cast<long long>(m),
                    static_cast<long long>(width), static_cast<long long>(height),
                    static_cast<long long>(frames));
        std::printf("%-18s %9s %9s %9s %9s | %8s %8s | %8s %8s\n", "M x K -> N", "fp32 ms", "unfus ms",
                    "fused ms", "int_mm", "fused/fp", "unf/fp", "fus GOP", "ovh ms");
        Times chunk;
        struct Layer {
            int64_t k, n, per_block;
        };
        const Layer layers[] = {{dim, dim, 6}, {dim, ffn, 1}, {ffn, dim, 1}};
        for (const auto& l : layers) {
            const Times t = run_shape(m, l.k, l.n, reps);
            const double ops =
                2.0 * static_cast<double>(m) * static_cast<double>(l.k) * static_cast<double>(l.n);
            std::printf("%5lld x %5lld -> %5lld %9.2f %9.2f %9.2f %9.2f | %8.2f %8.2f | %8.0f %8.2f\n",
                        static_cast<long long>(m), static_cast<long long>(l.k), static_cast<long long>(l.n),
                        t.fp32 * 1e3, t.unfused * 1e3, t.fused * 1e3, t.int_mm * 1e3, t.fused / t.fp32,
                        t.unfused / t.fp32, ops / 1e9 / t.fused, (t.fused - t.int_mm) * 1e3);
            const double w = static_cast<double>(l.per_block * blocks);
            chunk.fp32 += w * t.fp32;
            chunk.unfused += w * t.unfused;
            chunk.fused += w * t.fused;
            chunk.int_mm += w * t.int_mm;
        }
        std::printf(
            "per chunk (%lld blocks x (6 + 2 FFN) linears): fp32 %.2f s, int8 unfused %.2f s, int8 fused "
            "%.2f s (of which _int_mm %.2f s, quantize + epilogue %.2f s)\n",
            static_cast<long long>(blocks), chunk.fp32, chunk.unfused, chunk.fused, chunk.int_mm,
            chunk.fused - chunk.int_mm);
        std::printf("fused vs unfused: %.2fx faster; fused vs fp32: %.2fx faster\n",
                    chunk.unfused / chunk.fused, chunk.fp32 / chunk.fused);
    }
    return 0;
}
