// The DiT alone, streamed chunk by chunk at a real output size: seconds, minor page faults and useful GFLOP/s
// of the first chunk (6 latent frames) and of the later ones (2 latent frames), the first chunk's cost per
// output frame over a later chunk's, and the process's peak RSS. Prints; asserts nothing.
// Usage: bench_dit [--model-dir DIR | random "full" weights] [--height 512] [--width 896] (output pixels)
//                  [--chunks 3] [--threads N] [--dtype fp32|int8]
// A minor page fault is a first touch of a fresh page: large temporaries that the allocator hands back to the
// kernel after each use fault again on the next, which is what this benchmark shows besides the time.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/matmul_rate.h"
#include "csrc/core/proc_status.h"
#include "models/checkpoint/load.h"
#include "models/common/random_weights.h"
#include "models/dit.h"

namespace {

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

long minor_faults() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

}  // namespace

int main(int argc, char** argv) {
    namespace m = flashvsr::models;
    std::string model_dir, dtype = "fp32";
    int64_t height = 512, width = 896, chunks = 3, threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--model-dir") {
            model_dir = v;
        } else if (k == "--height") {
            height = std::atoll(v.c_str());
        } else if (k == "--width") {
            width = std::atoll(v.c_str());
        } else if (k == "--chunks") {
            chunks = std::atoll(v.c_str());
        } else if (k == "--threads") {
            threads = std::atoll(v.c_str());
        } else if (k == "--dtype") {
            dtype = v;
        } else {
            std::fprintf(stderr, "bench_dit: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    if (threads > 0) {
        at::set_num_threads(static_cast<int>(threads));
    }
    if (height % 128 != 0 || width % 128 != 0 || chunks < 2 || (dtype != "fp32" && dtype != "int8")) {
        std::fprintf(
            stderr,
            "bench_dit: height and width must be multiples of 128, --chunks >= 2, --dtype fp32|int8\n");
        return 2;
    }
    const double t_load = now();
    std::unique_ptr<m::DiT> dit;
    at::Tensor prompt;
    if (!model_dir.empty()) {
        dit = std::make_unique<m::DiT>(
            m::load_tensors(model_dir + "/diffusion_pytorch_model_streaming_dmd.safetensors"), "DiT",
            m::LoadOptions{});
        prompt = m::load_tensors(model_dir + "/posi_prompt.pth").at("");
    } else {
        const auto cfg = m::DiTConfig::preset("full");
        dit = std::make_unique<m::DiT>(m::random_weights(m::DiTConfig::manifest(cfg), 1), "random",
                                       m::LoadOptions{});
        prompt = at::randn({1, 512, cfg.text_dim});
    }
    if (dtype == "int8") {
        dit->quantize_int8(at::kFloat);
    }
    const m::DiTConfig& c = dit->config();
    const m::DiTConstants consts = dit->prepare(prompt.to(at::kFloat));
    const double rate = flashvsr::bench::matmul_rate(flashvsr::bench::Gemm::kOneDnn);
    std::printf(
        "bench_dit: %lldx%lld output, %s, %d threads, load %.1f s, weights %.0f MiB, oneDNN fp32 matmul %.0f "
        "GFLOP/s\n",
        static_cast<long long>(width), static_cast<long long>(height), dtype.c_str(), at::get_num_threads(),
        now() - t_load, static_cast<double>(dit->weight_bytes()) / (1 << 20), rate);

    const int64_t lh = height / 8, lw = width / 8, tokens_per_frame = (lh / 2) * (lw / 2);
    m::DiTState state;
    at::manual_seed(0);
    double first_per_frame = 0, steady_per_frame = 1e30;
    for (int64_t i = 0; i < chunks; ++i) {
        const int64_t f = i == 0 ? 6 : 2, out_frames = i == 0 ? 21 : 8, l = f * tokens_per_frame;
        const at::Tensor lat = at::randn({1, c.in_dim, f, lh, lw});
        const at::Tensor lq = at::randn({1, l, c.dim}) * 0.1;
        const long faults0 = minor_faults();
        const double t0 = now();
        (void)dit->forward_chunk(lat, lq, consts, state);
        const double s = now() - t0;
        const long faults = minor_faults() - faults0;
        // Linears only (6 of dim x dim, 2 of dim x ffn per block and token): the useful FLOPs at the matmul
        // rate.
        const double lin =
            2.0 * static_cast<double>(l) * c.num_layers *
            (6.0 * static_cast<double>(c.dim * c.dim) + 2.0 * static_cast<double>(c.dim * c.ffn_dim));
        std::printf(
            "  chunk %lld: %2lld latent frames, %6lld tokens  %7.2f s  %6.3f s/frame  %8ld minor faults "
            "(%5.2f GiB)  linears %5.1f%% of the time at the matmul rate\n",
            static_cast<long long>(i), static_cast<long long>(f), static_cast<long long>(l), s,
            s / static_cast<double>(out_frames), faults, static_cast<double>(faults) * 4096 / (1 << 30),
            100 * lin / 1e9 / rate / s);
        if (i == 0) {
            first_per_frame = s / static_cast<double>(out_frames);
        } else {
            steady_per_frame = std::min(steady_per_frame, s / static_cast<double>(out_frames));
        }
    }
    std::printf(
        "  first chunk per frame / best later chunk per frame: %.2f; state %.0f MiB; peak RSS %.2f GiB\n",
        first_per_frame / steady_per_frame, static_cast<double>(state.bytes()) / (1 << 20),
        static_cast<double>(flashvsr::proc_status_kib("VmHWM")) / (1 << 20));
    return 0;
}
