// LCSA block-sparse attention of one DiT block at a real geometry: the op (kernels/block_sparse_attention),
// the gathered-SDPA path and the dense masked oracle, against the fp32 matmul rate of this process (the
// faster of MKL's at::mm and oneDNN's). Usage: bench_attention [--height 256] [--width 384] (output pixels)
// [--heads 12] [--head-dim 128]
//                        [--slices 3] (key slices of 2 latent frames; 3 = steady state) [--first 0|1]
//                        [--sparse-ratio 2] [--local-range 11] [--reps 5] [--threads N] [--dtype fp32|bf16]
//                        [--only-op 0|1] (1: time the op alone, e.g. under perf)
//                        [--piece-blocks N] [--max-group N] [--gemm blas|brgemm|tiles] (CPU tuning of the op;
//                        adds a row "op (tuned)" timed beside the defaults)
// Useful FLOPs: 4 * 128 * 128 * head_dim per (head, query window, kept key window).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "bench/matmul_rate.h"
#include "kernels/block_sparse_attention/block_sparse_attention_cpu.h"
#include "models/dit_attention.h"

namespace {

double seconds(const std::function<void()>& fn, int reps) {
    fn();  // warm-up
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    int64_t height = 256, width = 384, heads = 12, hd = 128, slices = 3, first = 0, local = 11, reps = 5,
            threads = 0, only_op = 0;
    flashvsr::kernels::CpuAttentionTuning tuning;
    bool tuned = false;
    double sparse = 2.0;
    std::string dtype = "fp32";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--height") {
            height = std::atoll(v.c_str());
        } else if (k == "--width") {
            width = std::atoll(v.c_str());
        } else if (k == "--heads") {
            heads = std::atoll(v.c_str());
        } else if (k == "--head-dim") {
            hd = std::atoll(v.c_str());
        } else if (k == "--slices") {
            slices = std::atoll(v.c_str());
        } else if (k == "--first") {
            first = std::atoll(v.c_str());
        } else if (k == "--sparse-ratio") {
            sparse = std::atof(v.c_str());
        } else if (k == "--local-range") {
            local = std::atoll(v.c_str());
        } else if (k == "--reps") {
            reps = std::atoll(v.c_str());
        } else if (k == "--threads") {
            threads = std::atoll(v.c_str());
        } else if (k == "--only-op") {
            only_op = std::atoll(v.c_str());
        } else if (k == "--piece-blocks") {
            tuning.piece_blocks = std::atoll(v.c_str());
            tuned = true;
        } else if (k == "--max-group") {
            tuning.max_group = std::atoll(v.c_str());
            tuned = true;
        } else if (k == "--gemm") {
            using G = flashvsr::kernels::CpuAttentionGemm;
            if (v != "blas" && v != "brgemm" && v != "tiles") {
                std::fprintf(stderr, "bench_attention: --gemm must be blas, brgemm or tiles, got %s\n",
                             v.c_str());
                return 2;
            }
            tuning.gemm = v == "blas" ? G::kBlas : v == "brgemm" ? G::kBrgemm : G::kTiles;
            tuned = true;
        } else if (k == "--dtype") {
            dtype = v;
        } else {
            std::fprintf(stderr, "bench_attention: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    if (threads > 0) {
        at::set_num_threads(static_cast<int>(threads));
    }
    namespace m = flashvsr::models;
    const at::ScalarType dt = dtype == "bf16" ? at::kBFloat16 : at::kFloat;
    // Token grid: output / 16; windows of 8x8 tokens; one slice = 2 latent frames.
    const int64_t hb = height / 16 / 8, wb = width / 16 / 8, s = hb * wb, c = heads * hd;
    const int64_t nq = (first ? 3 : 1) * s, nk = (first ? 3 : slices) * s;
    at::manual_seed(0);
    const auto opt = at::TensorOptions().dtype(dt);
    const auto q = at::randn({nq, 128, c}, opt), k = at::randn({nk, 128, c}, opt),
               v = at::randn({nk, 128, c}, opt);
    const auto mask = m::draft_block_mask(q, k, heads, m::local_window_mask(hb, wb, local),
                                          m::draft_topk(sparse, height, width, s));
    const int64_t kept = mask.sum().item<int64_t>();
    const double flops = 4.0 * 128 * 128 * static_cast<double>(hd) * static_cast<double>(kept);
    // The reference: the faster fp32 GEMM of the process, MKL's at::mm or oneDNN's (models::dense_linear).
    const double mm_rate = std::max(flashvsr::bench::matmul_rate(flashvsr::bench::Gemm::kMkl, 1024),
                                    flashvsr::bench::matmul_rate(flashvsr::bench::Gemm::kOneDnn, 1024));
    std::printf(
        "bench_attention: %lldx%lld output, S=%lld windows/slice, nq=%lld nk=%lld, %lld heads x %lld, %s, "
        "%d threads; kept %lld of %lld blocks (%.1f%%); fp32 matmul %.0f GFLOP/s\n",
        static_cast<long long>(height), static_cast<long long>(width), static_cast<long long>(s),
        static_cast<long long>(nq), static_cast<long long>(nk), static_cast<long long>(heads),
        static_cast<long long>(hd), dtype.c_str(), at::get_num_threads(), static_cast<long long>(kept),
        static_cast<long long>(heads * nq * nk), 100.0 * kept / (heads * nq * nk), mm_rate);
    struct Path {
        const char* name;
        std::function<at::Tensor()> run;
    };
    const Path paths[] = {
        {"op (in place)",
         [&] { return m::block_sparse_attention(q, k, v, mask, heads, m::AttentionKernel::kOp); }},
        {"gathered SDPA", [&] { return m::gathered_block_sparse_attention(q, k, v, mask, heads); }},
        {"dense masked", [&] { return m::masked_dense_attention(q, k, v, mask, heads); }},
        {"op (tuned)",
         [&] { return flashvsr::kernels::block_sparse_attention_cpu(q, k, v, mask, heads, tuning); }},
    };
    const at::Tensor ref = paths[0].run();
    for (const Path& p : paths) {
        const std::string name = p.name;
        if ((only_op && name != "op (in place)" && name != "op (tuned)") ||
            (name == "op (tuned)" && !tuned)) {
            continue;
        }
        if (name == "dense masked" && nq * nk * 128 * 128 * heads > (int64_t{1} << 28)) {
            continue;  // its [heads, Lq, Lk] scores would not fit
        }
        at::Tensor out;
        const double t = seconds([&] { out = p.run(); }, static_cast<int>(reps));
        const double diff = (out.to(at::kFloat) - ref.to(at::kFloat)).abs().max().item<double>();
        std::printf("  %-14s %8.2f ms  %6.1f GFLOP/s  %5.1f%% of matmul  (max diff to the op %.1e)\n", p.name,
                    t * 1e3, flops / t / 1e9, 100.0 * flops / t / 1e9 / mm_rate, diff);
    }
    return 0;
}
