// Speed of the streaming engine, per network, against the machine's measured matmul rate.
// Usage: bench_speed [--model-dir DIR | --size full|small|tiny] [--mode tiny-long|tiny|full]
//                    [--width 96] [--height 64] [--frames 37] [--scale 4] [--dtype fp32|bf16|int8]
//                    [--threads N] [--no-profile]
// Prints: the fp32 matmul rate of this process (the faster of MKL's at::mm and oneDNN's; and the int8 _int_mm
// rate for --dtype int8); first-chunk, steady-state and overall frames/s; seconds, GFLOP and GFLOP/s per
// network (prep, LQ projector, DiT with its linears and attention, decoder with its convolution time, blend,
// colour fix + output) with the peak RSS above the weights inside each; peak RSS and peak RSS minus the
// weight bytes, and minus the checkpoints' parameter bytes (what a PyTorch pipeline counts as weights). The
// per-network figures come from the engine's named ranges (flashvsr::prep, ::lq_proj, ::dit, ::decoder,
// ::blend_accumulate, ::color_fix) through an ATen RecordFunction observer installed only by this program
// (--no-profile runs without it).
// Full-size random weights take ~7 GB on disk and ~2 minutes to write: make them once with
// `flashvsr make-test-weights DIR/FlashVSR-v1.1 --size full --version v1.1` and pass --model-dir.
#include <flashvsr/flashvsr.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/matmul_rate.h"
#include "csrc/core/proc_status.h"
#include "models/test_weights.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// User + system CPU seconds of the process (all threads): on a shared machine, comparable where wall time
/// is not.
double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    auto sec = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return sec(u.ru_utime) + sec(u.ru_stime);
}

// ---- what the observer accumulates ------------------------------------------------------------------
enum Cat { kNone = -1, kPrep, kLQProj, kDiT, kAttention, kLinears, kDecoder, kBlend, kColor, kCount };
const char* const kCatName[kCount] = {"prep (bicubic, pad)", "LQ projector", "DiT",   "  attention",
                                      "  linears",           "decoder",      "blend", "colour fix + output"};

struct Totals {
    std::array<double, kCount> seconds{}, gflop{}, conv_seconds{};
    std::array<int64_t, kCount> conv_calls{};
    std::array<int64_t, kCount> peak_kib{};  // peak RSS inside the network's outermost ranges
};

struct Observer {
    std::thread::id thread;
    std::vector<int> open;  // categories of the open ranges, innermost last
    int nominal = 0;        // > 0 inside a range whose FLOPs were booked as a whole (Winograd conv)
    Totals t;
} g_obs;

/// The process's peak RSS (KiB) over resets of VmHWM: the observer resets it when a network's outermost
/// range opens (to read that network's own peak when it closes) and books the peak so far first.
int64_t g_peak_kib = 0;

void reset_peak_rss() {
    g_peak_kib = std::max(g_peak_kib, flashvsr::proc_status_kib("VmHWM"));
    std::ofstream("/proc/self/clear_refs") << "5";  // VmHWM := VmRSS
}

struct Frame : at::ObserverContext {
    Clock::time_point t0;
    int cat = kNone;         // >= 0: this event opened a category range
    bool outermost = false;  // a network range with no range around it: its peak RSS is read at the end
    bool conv = false;
    bool nominal = false;  // a range booked as a whole: the ops inside book no FLOPs
};

bool starts_with(const char* s, const char* p) { return std::strncmp(s, p, std::strlen(p)) == 0; }

int range_category(const char* name) {
    static const std::pair<const char*, int> kRanges[] = {{"flashvsr::prep", kPrep},
                                                          {"flashvsr::lq_proj", kLQProj},
                                                          {"flashvsr::dit", kDiT},
                                                          {"flashvsr::decoder", kDecoder},
                                                          {"flashvsr::blend_accumulate", kBlend},
                                                          {"flashvsr::color_fix", kColor},
                                                          {"flashvsr::block_sparse_attention", kAttention}};
    for (const auto& [n, c] : kRanges) {
        if (std::strcmp(name, n) == 0) {
            return c;
        }
    }
    return kNone;
}

/// Inside the DiT (and outside attention/linears already): the ops that make the attention (self and
/// cross SDPA, the gather of kept key/value blocks and its scatter back) and the linear layers.
int dit_sub_category(const char* name) {
    static const char* const kAttn[] = {"aten::scaled_dot_product_attention", "aten::index_select",
                                        "aten::index_copy_", "aten::sort"};
    static const char* const kLin[] = {"aten::linear", "aten::addmm", "aten::mm", "aten::matmul",
                                       "aten::_int_mm"};
    for (const char* n : kAttn) {
        if (std::strcmp(name, n) == 0) {
            return kAttention;
        }
    }
    for (const char* n : kLin) {
        if (std::strcmp(name, n) == 0) {
            return kLinears;
        }
    }
    if ((starts_with(name, "flashvsr::") || starts_with(name, "mkldnn::")) &&
        std::strstr(name, "linear") != nullptr) {
        return kLinears;
    }
    return kNone;
}

double numel_of(const std::vector<int64_t>& v) {
    double n = 1;
    for (const int64_t x : v) {
        n *= static_cast<double>(x);
    }
    return n;
}

/// Floating-point (or int8) operations of the leaf compute ops, from their input shapes.
double op_flop(const at::RecordFunction& fn) {
    const char* name = fn.name();
    const auto in = fn.inputs();
    auto dims = [&](size_t i) {
        return in.size() > i && in[i].isTensor() ? in[i].toTensor().sizes().vec() : std::vector<int64_t>{};
    };
    if (std::strcmp(name, "aten::mm") == 0 || std::strcmp(name, "aten::_int_mm") == 0) {
        const auto a = dims(0), b = dims(1);
        return a.size() == 2 && b.size() == 2 ? 2.0 * a[0] * a[1] * b[1] : 0.0;
    }
    if (std::strcmp(name, "aten::addmm") == 0) {
        const auto a = dims(1), b = dims(2);
        return a.size() == 2 && b.size() == 2 ? 2.0 * a[0] * a[1] * b[1] : 0.0;
    }
    if (std::strcmp(name, "mkldnn::_linear_pointwise") == 0) {  // x [..., K], w [N, K]
        const auto x = dims(0), w = dims(1);
        return w.size() == 2 ? 2.0 * numel_of(x) * static_cast<double>(w[0]) : 0.0;
    }
    if (std::strcmp(name, "flashvsr::winograd_conv3d") == 0 && in.size() >= 3) {
        // the direct convolution's multiply-adds (the ops inside, fewer, are not booked): x [1, Ci, F, Hp,
        // Wp], w [Co, Ci, kt, 3, 3]
        const auto x = dims(0), w = dims(1);
        const int64_t st = in[2].toInt();
        if (x.size() != 5 || w.size() != 5) {
            return 0.0;
        }
        const int64_t kt = w[2];
        const double out = static_cast<double>(w[0]) * static_cast<double>((x[2] - kt) / st + 1) *
                           static_cast<double>(x[3] - 2) * static_cast<double>(x[4] - 2);
        return 2.0 * out * static_cast<double>(w[1] * kt) * 9;
    }
    if (std::strcmp(name, "aten::bmm") == 0 || std::strcmp(name, "aten::baddbmm") == 0) {
        const size_t o = std::strcmp(name, "aten::bmm") == 0 ? 0 : 1;
        const auto a = dims(o), b = dims(o + 1);
        return a.size() == 3 && b.size() == 3 ? 2.0 * a[0] * a[1] * a[2] * b[2] : 0.0;
    }
    if (std::strcmp(name, "aten::_scaled_dot_product_flash_attention_for_cpu") == 0) {
        const auto q = dims(0), k = dims(1);  // [B, H, L, D]
        return q.size() == 4 && k.size() == 4 ? 4.0 * q[0] * q[1] * q[2] * k[2] * q[3] : 0.0;
    }
    if (std::strcmp(name, "flashvsr::block_sparse_attention") == 0 && in.size() >= 5) {
        // 4 * 128 * 128 * head_dim per kept (head, query window, key window) block
        const auto q = dims(0);
        const int64_t heads = in[4].toInt();
        const at::RecordFunctionGuard no_nested_records(false);  // the sum below is not part of the run
        const double kept = in[3].toTensor().sum().item<double>();
        return q.size() == 3 && heads > 0 ? 4.0 * 128 * 128 * static_cast<double>(q[2] / heads) * kept : 0.0;
    }
    if (std::strcmp(name, "aten::convolution") == 0 && in.size() >= 9) {
        const auto x = dims(0), w = dims(1);
        if (x.size() < 3 || w.size() != x.size() || in[6].toBool()) {
            return 0.0;  // transposed: not used here
        }
        // stride/padding/dilation may come as one value for every spatial dimension
        auto param = [&](size_t i, size_t j) {
            const auto v = in[i].toIntVector();
            return v.empty() ? int64_t{i == 4 ? 0 : 1} : v[std::min(j, v.size() - 1)];
        };
        double out = static_cast<double>(x[0]) * static_cast<double>(w[0]);
        for (size_t i = 2; i < x.size(); ++i) {
            const size_t j = i - 2;
            const int64_t stride = std::max<int64_t>(1, param(3, j)), pad = param(4, j), dil = param(5, j);
            out *= static_cast<double>((x[i] + 2 * pad - dil * (w[i] - 1) - 1) / stride + 1);
        }
        return 2.0 * out * numel_of(std::vector<int64_t>(w.begin() + 1, w.end()));
    }
    return 0.0;
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
    if (std::this_thread::get_id() != g_obs.thread) {
        return nullptr;
    }
    auto f = std::make_unique<Frame>();
    const int inner = g_obs.open.empty() ? kNone : g_obs.open.back();
    int cat = range_category(fn.name());
    if (cat == kNone && inner == kDiT) {
        cat = dit_sub_category(fn.name());
    }
    if (cat != kNone) {
        f->cat = cat;
        f->outermost = g_obs.open.empty();
        g_obs.open.push_back(cat);
        if (f->outermost) {
            reset_peak_rss();
        }
    }
    const int where = g_obs.open.empty() ? kNone : g_obs.open.back();
    if (where != kNone && g_obs.nominal == 0) {
        g_obs.t.gflop[where] += op_flop(fn) / 1e9;
        f->nominal = std::strcmp(fn.name(), "flashvsr::winograd_conv3d") == 0;
        g_obs.nominal += f->nominal ? 1 : 0;
        f->conv = f->nominal || std::strcmp(fn.name(), "aten::convolution") == 0;
        if (f->conv) {
            ++g_obs.t.conv_calls[where];
        }
    }
    f->t0 = Clock::now();
    return f;
}

void on_end(const at::RecordFunction& fn, at::ObserverContext* ctx) {
    (void)fn;
    auto* f = static_cast<Frame*>(ctx);
    if (f == nullptr) {
        return;
    }
    const double s = seconds_since(f->t0);
    g_obs.nominal -= f->nominal ? 1 : 0;
    if (f->cat != kNone) {
        g_obs.open.pop_back();
        g_obs.t.seconds[f->cat] += s;
        if (f->outermost) {
            g_obs.t.peak_kib[f->cat] = std::max(g_obs.t.peak_kib[f->cat], flashvsr::proc_status_kib("VmHWM"));
        }
    }
    if (f->conv) {
        const int where = g_obs.open.empty() ? kNone : g_obs.open.back();
        if (where != kNone) {
            g_obs.t.conv_seconds[where] += s;
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string size = "full", mode = "tiny-long", dtype = "fp32", model_dir;
    int64_t width = 96, height = 64, frames = 37, scale = 4, threads = 0;
    bool profile = true;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        if (k == "--no-profile") {
            profile = false;
            continue;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "bench_speed: option %s needs a value\n", k.c_str());
            return 2;
        }
        const std::string v = argv[++i];
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
            std::fprintf(stderr, "bench_speed: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    if (threads > 0) {
        at::set_num_threads(static_cast<int>(threads));
    }
    // The reference rate is the faster fp32 GEMM of the two (on AMD CPUs MKL runs AVX2 code, oneDNN AVX-512).
    using flashvsr::bench::Gemm;
    at::manual_seed(1);
    const double mkl_rate = flashvsr::bench::matmul_rate(Gemm::kMkl);
    const double onednn_rate = flashvsr::bench::matmul_rate(Gemm::kOneDnn);
    const double mm_rate = std::max(mkl_rate, onednn_rate);
    const double int8_rate = dtype == "int8" ? flashvsr::bench::matmul_rate(Gemm::kInt8) : 0.0;
    namespace fs = std::filesystem;
    fs::path tmp;
    try {
        if (model_dir.empty()) {
            tmp = fs::temp_directory_path() / ("flashvsr_bench_speed_" + std::to_string(::getpid()));
            model_dir = (tmp / "FlashVSR-v1.1").string();
            flashvsr::models::TestWeightsOptions o;
            o.size = size;
            flashvsr::models::make_test_weights(model_dir, o);
        }
        flashvsr::EngineOptions eo;
        eo.model_dir = model_dir;
        eo.mode = mode;
        eo.dtype = dtype;
        const auto engine = flashvsr::Engine::load(eo);
        const int64_t weight_bytes = engine->info().weight_bytes;
        std::printf(
            "bench_speed: %s (%s, %s, %s), mode %s, %lldx%lld x%lld -> %lldx%lld, %lld frames, %d threads\n",
            model_dir.c_str(), engine->info().version.c_str(), engine->info().device.c_str(),
            engine->info().dtype.c_str(), mode.c_str(), static_cast<long long>(width),
            static_cast<long long>(height), static_cast<long long>(scale),
            static_cast<long long>(width * scale), static_cast<long long>(height * scale),
            static_cast<long long>(frames), at::get_num_threads());
        std::printf("matmul rate of this process: fp32 %.0f GFLOP/s (MKL at::mm %.0f, oneDNN %.0f)", mm_rate,
                    mkl_rate, onednn_rate);
        if (int8_rate > 0) {
            std::printf(", int8 product %.0f GOP/s (%s)", int8_rate,
                        flashvsr::kernels::int_mm_is_fast() ? "at::_int_mm" : "exact float32 slices");
        }
        std::printf("\n");

        at::manual_seed(0);
        const at::Tensor video = at::rand({frames, height, width, 3});
        flashvsr::UpscaleOptions uo;
        uo.scale = scale;
        flashvsr::Stream s = engine->stream(uo);
        std::vector<double> chunk_s;
        std::vector<int64_t> chunk_frames;
        int64_t last_done = 0;
        auto last = Clock::now();
        s.set_progress([&](int64_t done, int64_t) {
            chunk_s.push_back(seconds_since(last));
            chunk_frames.push_back(done - last_done);
            last_done = done;
            last = Clock::now();
            return true;
        });
        at::CallbackHandle handle = 0;
        if (profile) {
            g_obs = Observer{};
            g_obs.thread = std::this_thread::get_id();
            handle =
                at::addGlobalCallback(at::RecordFunctionCallback(&on_start, &on_end)
                                          .needsInputs(true)
                                          .scopes({at::RecordScope::FUNCTION, at::RecordScope::USER_SCOPE}));
        }
        const double cpu0 = cpu_seconds();
        const auto t0 = Clock::now();
        last = t0;
        s.push(video);
        s.finish();
        const at::Tensor out = s.pull();
        const double total = seconds_since(t0);
        const double cpu_run = cpu_seconds() - cpu0;
        if (profile) {
            at::removeCallback(handle);
        }

        std::printf("run %.2f s, %lld frames out (%lldx%lld): %.3f frames/s overall\n", total,
                    static_cast<long long>(out.size(0)), static_cast<long long>(out.size(2)),
                    static_cast<long long>(out.size(1)), out.size(0) / total);
        std::printf("run CPU seconds (user + system, all threads): %.1f -> %.2f per frame\n", cpu_run,
                    cpu_run / static_cast<double>(out.size(0)));
        if (!chunk_s.empty()) {
            const double first = chunk_s[0] / std::max<int64_t>(1, chunk_frames[0]);
            std::printf("first chunk: %lld frames in %.2f s = %.3f frames/s",
                        static_cast<long long>(chunk_frames[0]), chunk_s[0], 1.0 / first);
            if (chunk_s.size() > 1) {
                double later = 0;
                int64_t later_frames = 0;
                for (size_t i = 1; i < chunk_s.size(); ++i) {
                    later += chunk_s[i];
                    later_frames += chunk_frames[i];
                }
                const double steady = later / std::max<int64_t>(1, later_frames);
                std::printf(
                    "; later chunks: %zu, %.2f s each = %.3f frames/s steady; first/steady per frame %.2f",
                    chunk_s.size() - 1, later / (chunk_s.size() - 1), 1.0 / steady, first / steady);
            }
            std::printf("\n");
        }
        if (profile) {
            const Totals& t = g_obs.t;
            const double n_out = static_cast<double>(out.size(0));
            double all_flop = 0;
            std::printf("%-22s %9s %7s %9s %9s %8s %9s %12s\n", "network", "seconds", "share", "GFLOP",
                        "GFLOP/s", "of mm", "peak-w", "conv s/frame");
            for (int c = 0; c < kCount; ++c) {
                const double sec = t.seconds[c];
                // FLOPs are booked to the innermost range; the DiT row also holds its attention and linears.
                const double gf = t.gflop[c] + (c == kDiT ? t.gflop[kAttention] + t.gflop[kLinears] : 0.0);
                all_flop += t.gflop[c];
                std::printf("%-22s %9.2f %6.1f%% %9.1f %9.1f %7.1f%%", kCatName[c], sec, 100.0 * sec / total,
                            gf, sec > 0 ? gf / sec : 0.0, sec > 0 ? 100.0 * gf / sec / mm_rate : 0.0);
                if (t.peak_kib[c] > 0) {  // MiB above the weights at the network's peak
                    std::printf(" %9.0f",
                                static_cast<double>(t.peak_kib[c]) / 1024.0 - weight_bytes / 1048576.0);
                } else {
                    std::printf(" %9s", "");
                }
                if (t.conv_calls[c] > 0) {
                    std::printf(" %8.3f (%lld convs, %.1f s)", t.conv_seconds[c] / n_out,
                                static_cast<long long>(t.conv_calls[c]), t.conv_seconds[c]);
                }
                std::printf("\n");
            }
            const double dit_other = t.seconds[kDiT] - t.seconds[kAttention] - t.seconds[kLinears];
            double accounted = 0;
            for (int c : {kPrep, kLQProj, kDiT, kDecoder, kBlend, kColor}) {
                accounted += t.seconds[c];
            }
            std::printf("%-22s %9.2f %6.1f%%   (norms, RoPE, modulation, GELU, draft mask, residuals)\n",
                        "  DiT other", dit_other, 100.0 * dit_other / total);
            std::printf("%-22s %9.2f %6.1f%%\n", "outside the networks", total - accounted,
                        100.0 * (total - accounted) / total);
            const double conv_s = t.conv_seconds[kLQProj] + t.conv_seconds[kDecoder];
            std::printf("convolution (LQ projector + decoder): %.2f s = %.3f s per output frame\n", conv_s,
                        conv_s / n_out);
            std::printf("whole run: %.1f GFLOP in %.2f s = %.1f GFLOP/s = %.1f%% of the fp32 matmul rate\n",
                        all_flop, total, all_flop / total, 100.0 * all_flop / total / mm_rate);
        }
        flashvsr::MemoryReport mem = flashvsr::memory_report();
        if (profile) {  // the observer reset VmHWM at each network: the peak over all of them
            mem.peak_rss_bytes =
                std::max<int64_t>(mem.peak_rss_bytes, std::max(g_peak_kib, int64_t{0}) * 1024);
        }
        std::printf(
            "weights %.1f MiB, stream state %.1f MiB, RSS %.1f MiB, peak RSS %.1f MiB, peak RSS - weights "
            "%.1f MiB\n",
            weight_bytes / 1048576.0, s.state_bytes() / 1048576.0, mem.rss_bytes / 1048576.0,
            mem.peak_rss_bytes / 1048576.0, (mem.peak_rss_bytes - weight_bytes) / 1048576.0);
        // What a PyTorch pipeline of the same networks counts as its weights: the checkpoints' parameters.
        const int64_t ckpt_bytes = engine->info().checkpoint_bytes;
        std::printf(
            "checkpoint parameters %.1f MiB (the weights above add %.1f MiB made at load: phase weights, "
            "prompt constants), peak RSS - checkpoint parameters %.1f MiB\n",
            ckpt_bytes / 1048576.0, (weight_bytes - ckpt_bytes) / 1048576.0,
            (mem.peak_rss_bytes - ckpt_bytes) / 1048576.0);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_speed: %s\n", e.what());
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
