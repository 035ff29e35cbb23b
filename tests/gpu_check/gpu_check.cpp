// flashvsr_gpu_check: the measuring program behind scripts/gpu_check.sh. One step per process (the script
// gives each its own timeout, so a crash or a hang costs one step, not the report); each step writes one JSON
// object of results and checks and exits 0 (every check true), 3 (a check false) or 1 (an error).
//
//   flashvsr_gpu_check STEP --device cpu|cuda --work DIR --out FILE [--size tiny|small|full] [--quick]
//   flashvsr_gpu_check merge --work DIR --steps "a b c" --mode gpu|cpu --out report.json --summary
//   summary.txt
//
// Steps: env, weights, parity, offload, cycles, bench, budget (see scripts/gpu_check.sh). --quick: the small
// sizes of the CPU dry run (`gpu_check.sh --cpu`), which runs every step on the CPU with tiny weights so the
// program and the report keys cannot rot unseen; the CUDA-only parts (events, allocator counters, memory
// fraction) are behind `Dev::cuda` and replaced by their CPU counterparts (wall clock, RSS, injected OOM).
#include <flashvsr/flashvsr.h>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#if defined(FLASHVSR_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
namespace at::cuda {
void clearCublasWorkspaces();  // ATen/cuda/CUDAContextLight.h (not included: it pulls in every CUDA library
                               // header)
}
#endif

#include <malloc.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "csrc/core/proc_status.h"
#include "csrc/engine/oom.h"
#include "csrc/engine/stream_access.h"
#include "csrc/engine/tiling/planner.h"
#include "models/test_weights.h"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

constexpr int64_t kMiB = 1024 * 1024;

struct Args {
    std::string step, device = "cpu", work, out, size = "tiny", mode = "cpu", steps, summary;
    bool quick = false;
};

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int64_t status_bytes(const char* field) {  // /proc/self/status "VmRSS" etc. in bytes, -1 when absent
    const int64_t kib = flashvsr::proc_status_kib(field);
    return kib < 0 ? -1 : kib * 1024;
}

// ---- the device: CUDA counters where there is a GPU, their CPU counterparts otherwise ---------------------

struct Dev {
    bool cuda = false;
    at::Device device{at::kCPU};
    std::string name() const { return cuda ? "cuda" : "cpu"; }

    void sync() const {
#if defined(FLASHVSR_WITH_CUDA)
        if (cuda) {
            c10::cuda::device_synchronize();
        }
#endif
    }
    /// Frees what is cached so that the counters show live memory: cuBLAS workspaces (kept per handle and
    /// stream until cleared), the caching allocator's free blocks, glibc's free pages.
    void release_cached() const {
        sync();
#if defined(FLASHVSR_WITH_CUDA)
        if (cuda) {
            at::cuda::clearCublasWorkspaces();
            c10::cuda::CUDACachingAllocator::emptyCache();
        }
#endif
        malloc_trim(0);
    }
    int64_t allocated() const { return stat(0, false); }
    int64_t reserved() const { return stat(1, false); }
    int64_t peak_allocated() const { return stat(0, true); }
    int64_t peak_reserved() const { return stat(1, true); }
    void reset_peak() const {
#if defined(FLASHVSR_WITH_CUDA)
        if (cuda) {
            c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
        }
#endif
        std::ofstream("/proc/self/clear_refs") << "5";  // VmHWM = VmRSS
    }
    int64_t total_memory() const {
#if defined(FLASHVSR_WITH_CUDA)
        if (cuda) {
            size_t free_b = 0, total_b = 0;
            cudaMemGetInfo(&free_b, &total_b);
            return static_cast<int64_t>(total_b);
        }
#endif
        return 0;
    }
    /// The caching allocator's per-process limit (fraction of the device's memory); 1.0 lifts it.
    void set_memory_fraction(double f) const {
#if defined(FLASHVSR_WITH_CUDA)
        if (cuda) {
            c10::cuda::CUDACachingAllocator::setMemoryFraction(f, device.index());
        }
#endif
        (void)f;
    }

  private:
    int64_t stat(int which, bool peak) const {
#if defined(FLASHVSR_WITH_CUDA)
        if (cuda) {
            const auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
            constexpr auto kAll = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
            const auto& st = which == 0 ? s.allocated_bytes[kAll] : s.reserved_bytes[kAll];
            return peak ? st.peak : st.current;
        }
#endif
        (void)which;
        return status_bytes(peak ? "VmHWM" : "VmRSS");  // CPU: process memory for both
    }
};

Dev make_dev(const std::string& device) {
    Dev d;
    if (device == "cuda") {
        if (!at::globalContext().hasCUDA()) {
            throw flashvsr::InputError("--device cuda: no CUDA device is available");
        }
#if !defined(FLASHVSR_WITH_CUDA)
        throw flashvsr::InputError("--device cuda: this build has no CUDA support (FLASHVSR_CUDA=OFF)");
#endif
        d.cuda = true;
        d.device = at::Device(at::kCUDA, 0);
        (void)at::empty({1},
                        at::TensorOptions().device(d.device));  // creates the context before any baseline
    } else if (device != "cpu") {
        throw flashvsr::InputError("--device must be cpu or cuda, got '" + device + "'");
    }
    return d;
}

// ---- per-stage timing: CUDA events on a GPU, the wall clock on the CPU
// --------------------------------------

class StageTimer {
  public:
    explicit StageTimer(const Dev& d) : dev_(d) {}
    ~StageTimer() { clear(); }
    StageTimer(const StageTimer&) = delete;
    StageTimer& operator=(const StageTimer&) = delete;

    void on(const char* stage, bool begin) {
        if (!enabled) {
            return;
        }
        Mark m{stage, begin, now_s(), nullptr};
#if defined(FLASHVSR_WITH_CUDA)
        if (dev_.cuda) {
            cudaEvent_t e = nullptr;
            cudaEventCreate(&e);
            cudaEventRecord(e, c10::cuda::getCurrentCUDAStream().stream());
            m.event = e;
        }
#endif
        marks_.push_back(m);
    }
    /// Milliseconds per stage since the last reset (pairs begin/end; an unmatched begin is ignored).
    std::map<std::string, double> totals() {
        dev_.sync();
        std::map<std::string, double> ms;
        std::map<std::string, const Mark*> open;
        for (const Mark& m : marks_) {
            if (m.begin) {
                open[m.stage] = &m;
                continue;
            }
            const auto it = open.find(m.stage);
            if (it == open.end() || it->second == nullptr) {
                continue;
            }
            double t = (m.wall - it->second->wall) * 1e3;
#if defined(FLASHVSR_WITH_CUDA)
            if (dev_.cuda) {
                float f = 0;
                if (cudaEventElapsedTime(&f, static_cast<cudaEvent_t>(it->second->event),
                                         static_cast<cudaEvent_t>(m.event)) == cudaSuccess) {
                    t = f;
                }
            }
#endif
            ms[m.stage] += t;
            it->second = nullptr;
        }
        return ms;
    }
    void clear() {
#if defined(FLASHVSR_WITH_CUDA)
        for (const Mark& m : marks_) {
            if (m.event != nullptr) {
                cudaEventDestroy(static_cast<cudaEvent_t>(m.event));
            }
        }
#endif
        marks_.clear();
    }
    bool enabled = false;

  private:
    struct Mark {
        std::string stage;
        bool begin;
        double wall;
        void* event;
    };
    const Dev& dev_;
    std::vector<Mark> marks_;
};

// ---- helpers ---------------------------------------------------------------------------------------------

std::shared_ptr<flashvsr::Engine> load(const std::string& dir, const std::string& mode, const Dev& d,
                                       const std::string& dtype = "auto") {
    flashvsr::EngineOptions eo;
    eo.model_dir = dir;
    eo.mode = mode;
    eo.device = d.name();
    eo.dtype = dtype;
    return flashvsr::Engine::load(eo);
}

/// uint8 frames [n, h, w, 3] on the host: a smooth moving pattern plus noise (what a decoder would push).
at::Tensor make_video(int64_t n, int64_t h, int64_t w, uint64_t seed) {
    at::manual_seed(seed);
    const at::Tensor t = at::arange(n, at::kFloat).view({n, 1, 1, 1});
    const at::Tensor y = at::arange(h, at::kFloat).view({1, h, 1, 1});
    const at::Tensor x = at::arange(w, at::kFloat).view({1, 1, w, 1});
    const at::Tensor c = at::arange(3, at::kFloat).view({1, 1, 1, 3});
    const at::Tensor base = 0.5 + 0.35 * at::sin(0.11 * x + 0.07 * y + 0.3 * t + 2.1 * c);
    const at::Tensor v = base + 0.08 * at::randn({n, h, w, 3});
    return (v.clamp(0, 1) * 255).round().to(at::kByte);
}

double psnr(const at::Tensor& a, const at::Tensor& ref) {
    const double mse = (a.to(at::kDouble) - ref.to(at::kDouble)).pow(2).mean().item<double>();
    return mse <= 0 ? 999.0 : 10.0 * std::log10(1.0 / mse);
}

double max_abs(const at::Tensor& a, const at::Tensor& b) {
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

std::string fmt(double v, int prec = 3) {
    std::ostringstream os;
    os.precision(prec);
    os << v;
    return os.str();
}

std::string mib(int64_t b) { return fmt(static_cast<double>(b) / kMiB, 4) + " MiB"; }

/// One step's results and checks.
struct Report {
    json results = json::object();
    json checks = json::object();
    std::vector<std::string> summary;
    void check(const std::string& name, bool ok) { checks[name] = ok; }
    bool ok() const {
        for (const auto& [k, v] : checks.items()) {
            if (!v.get<bool>()) {
                return false;
            }
        }
        return true;
    }
};

// ---- one video through a stream, measured
// ------------------------------------------------------------------

struct Run {
    at::Tensor out;
    double first_chunk_s = 0, steady_s = 0, total_s = 0;
    int64_t first_chunk_frames = 0;  // frames out of chunk 0 (21 of the first 25 in)
    int64_t steady_frames = 0, steady_chunks = 0, chunks = 0;
    std::map<std::string, double> steady_stage_ms;  // summed over the steady chunks
    flashvsr::engine::TransferBytes transfers;
    int64_t peak_allocated = 0, peak_reserved = 0;  // above the allocated/reserved bytes before the stream
    std::vector<flashvsr::TileRect> tiles;
    bool parked = false;
    int64_t oom_fallbacks = 0;
};

Run run_video(const flashvsr::Engine& e, const at::Tensor& video, const flashvsr::UpscaleOptions& uo,
              const Dev& d, flashvsr::engine::TilingHooks hooks = {}) {
    Run r;
    StageTimer timer(d);
    hooks.stage = [&timer](const char* s, bool b) { timer.on(s, b); };
    d.release_cached();
    const int64_t base_alloc = d.allocated(), base_reserved = d.reserved();
    d.reset_peak();
    const double t0 = now_s();
    flashvsr::Stream s = e.stream(uo);
    flashvsr::engine::StreamAccess::set_hooks(s, std::move(hooks));
    std::vector<at::Tensor> outs;
    const int64_t n = video.size(0);
    const int64_t first = std::min<int64_t>(25, n);
    s.push(video.narrow(0, 0, first));
    outs.push_back(s.pull());
    r.first_chunk_frames = outs.back().size(0);
    d.sync();
    const double t1 = now_s();
    r.first_chunk_s = t1 - t0;
    const int64_t chunks0 = s.chunks_done();
    timer.enabled = true;
    for (int64_t i = first; i + 8 <= n; i += 8) {
        s.push(video.narrow(0, i, 8));
        outs.push_back(s.pull());
        r.steady_frames += 8;
    }
    d.sync();
    const double t2 = now_s();
    r.steady_s = t2 - t1;
    r.steady_chunks = s.chunks_done() - chunks0;
    r.steady_stage_ms = timer.totals();
    timer.enabled = false;
    const int64_t rest = n - first - r.steady_frames;
    if (rest > 0) {
        s.push(video.narrow(0, n - rest, rest));
    }
    s.finish();
    outs.push_back(s.pull());
    d.sync();
    r.total_s = now_s() - t0;
    r.out = at::cat(outs, 0);
    r.chunks = s.chunks_done();
    r.transfers = flashvsr::engine::StreamAccess::transfers(s);
    r.tiles = s.tiles();
    r.parked = s.parks_tile_state();
    r.oom_fallbacks = flashvsr::engine::StreamAccess::oom_fallbacks(s);
    r.peak_allocated = d.peak_allocated() - base_alloc;
    r.peak_reserved = d.peak_reserved() - base_reserved;
    return r;
}

json run_json(const Run& r, const Dev& d) {
    json j;
    j["frames"] = r.out.size(0);
    j["output"] = std::to_string(r.out.size(2)) + "x" + std::to_string(r.out.size(1));
    j["chunks"] = r.chunks;
    j["tiles"] = static_cast<int64_t>(r.tiles.size());
    j["tile"] =
        r.tiles.empty() ? "" : std::to_string(r.tiles[0].width) + "x" + std::to_string(r.tiles[0].height);
    j["parked"] = r.parked;
    j["oom_fallbacks"] = r.oom_fallbacks;
    j["first_chunk_s"] = r.first_chunk_s;
    j["first_chunk_fps"] =
        r.first_chunk_s > 0 ? static_cast<double>(r.first_chunk_frames) / r.first_chunk_s : 0.0;
    j["steady_fps"] = r.steady_s > 0 ? static_cast<double>(r.steady_frames) / r.steady_s : 0.0;
    j["steady_chunks"] = r.steady_chunks;
    j["total_s"] = r.total_s;
    json st = json::object();
    for (const auto& [k, v] : r.steady_stage_ms) {
        st[k] = r.steady_chunks > 0 ? v / static_cast<double>(r.steady_chunks) : v;
    }
    j["ms_per_steady_chunk"] = st;  // CUDA events on a GPU, wall clock on the CPU
    j["timing"] = d.cuda ? "cuda_events" : "wall_clock";
    const double c = static_cast<double>(std::max<int64_t>(r.chunks, 1));
    j["host_to_device_bytes_per_chunk"] = static_cast<double>(r.transfers.host_to_device) / c;
    j["device_to_host_bytes_per_chunk"] = static_cast<double>(r.transfers.device_to_host) / c;
    j["peak_allocated_bytes"] =
        r.peak_allocated;  // above the weights (CUDA allocator; CPU: peak RSS above start)
    j["peak_reserved_bytes"] = r.peak_reserved;
    return j;
}

// ---- steps
// -------------------------------------------------------------------------------------------------

std::string weights_dir(const Args& a, const std::string& size) {
    return (fs::path(a.work) / ("weights-" + size) / "FlashVSR-v1.1").string();
}

void step_env(const Args& a, const Dev& d, Report& rep) {
    rep.results["build_info"] = json::parse(flashvsr::build_info_json(flashvsr::build_info()));
    rep.results["intra_op_threads"] = at::get_num_threads();
    rep.results["device"] = d.name();
#if defined(FLASHVSR_WITH_CUDA)
    if (d.cuda) {
        cudaDeviceProp p{};
        cudaGetDeviceProperties(&p, d.device.index());
        int drv = 0, rt = 0;
        cudaDriverGetVersion(&drv);
        cudaRuntimeGetVersion(&rt);
        rep.results["gpu"] = {{"name", p.name},
                              {"compute_capability", std::to_string(p.major) + "." + std::to_string(p.minor)},
                              {"total_memory_bytes", static_cast<int64_t>(p.totalGlobalMem)},
                              {"multiprocessors", p.multiProcessorCount},
                              {"driver_version", drv},
                              {"runtime_version", rt}};
        rep.summary.push_back(std::string(p.name) + ", sm " + std::to_string(p.major) +
                              std::to_string(p.minor) + ", " + mib(static_cast<int64_t>(p.totalGlobalMem)));
    }
#endif
    rep.check("device_usable", !d.cuda || at::globalContext().hasCUDA());
    rep.check("cuda_compiled_for_cuda_device",
              !d.cuda || rep.results["build_info"].value("cuda_compiled", false));
    if (!d.cuda) {
        rep.summary.push_back("CPU dry run, " + std::to_string(at::get_num_threads()) + " threads");
    }
}

void step_weights(const Args& a, const Dev& d, Report& rep) {
    const std::string dir = weights_dir(a, a.size);
    const double t0 = now_s();
    const bool cached = fs::exists(fs::path(dir) / "flashvsr_manifest.json");
    if (!cached) {
        flashvsr::models::TestWeightsOptions o;
        o.size = a.size;
        o.seed = 11;
        o.prompt_tokens = a.size == "tiny" ? 64 : 512;
        o.draw_on = d.name();  // full size on the CPU would take a minute of random numbers
        flashvsr::models::make_test_weights(dir, o);
    }
    int64_t bytes = 0;
    for (const auto& f : fs::directory_iterator(dir)) {
        bytes += static_cast<int64_t>(f.file_size());
    }
    rep.results["size"] = a.size;
    rep.results["dir"] = dir;
    rep.results["cached"] = cached;
    rep.results["bytes_on_disk"] = bytes;
    rep.results["seconds"] = now_s() - t0;
    rep.check("written", bytes > 0);
    rep.summary.push_back(a.size + " random weights, " + mib(bytes) + (cached ? " (cached)" : ""));
}

/// Whether the CPU has AVX512-BF16 (native bf16 dot products; without them ATen's bf16 convolutions are
/// slow).
bool cpu_has_avx512_bf16() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    return __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
}

/// CUDA vs CPU end to end: fp32 within 1e-4, bf16 and fp16 PSNR against CPU fp32 (bf16 >= 38 dB).
void step_parity(const Args& a, const Dev& d, Report& rep) {
    const std::string dir = weights_dir(a, a.size);
    // TF32 would make CUDA "fp32" a 10-bit-mantissa computation; the check is about the kernels.
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
    const Dev cpu;
    const at::Tensor video = a.quick ? make_video(9, 32, 48, 1) : make_video(17, 64, 96, 1);
    flashvsr::UpscaleOptions uo;
    uo.scale = a.quick ? 2 : 4;
    for (const std::string mode : {"tiny", "full"}) {
        json m;
        const at::Tensor ref = load(dir, mode, cpu, "fp32")->upscale(video, uo);
        for (const std::string dtype : {"fp32", "bf16", "fp16"}) {
            if (!d.cuda && dtype == "fp16") {  // the dry run: LibTorch's CPU fp16 kernels take minutes here
                m[dtype] = {{"skipped", "fp16 on the CPU (no fast kernels)"}, {"psnr_db", nullptr}};
                continue;
            }
            if (!d.cuda && dtype == "bf16" && mode == "full" && !cpu_has_avx512_bf16()) {
                // the dry run: without AVX512-BF16 LibTorch's CPU bf16 convolutions (the Wan VAE) take
                // minutes
                m[dtype] = {{"skipped", "bf16 Wan VAE on a CPU without AVX512-BF16 (no fast kernels)"},
                            {"psnr_db", nullptr}};
                continue;
            }
            if (!d.cuda && dtype == "fp32") {  // the dry run: the reference itself
                m[dtype] = {{"seconds", 0.0},
                            {"max_abs", 0.0},
                            {"mean_abs", 0.0},
                            {"psnr_db", psnr(ref, ref)},
                            {"note", "CPU: the reference run"}};
                continue;
            }
            try {
                const double t0 = now_s();
                const at::Tensor out = load(dir, mode, d, dtype)->upscale(video, uo);
                d.sync();
                json r = {
                    {"seconds", now_s() - t0},
                    {"max_abs", max_abs(out, ref)},
                    {"mean_abs", (out.to(at::kDouble) - ref.to(at::kDouble)).abs().mean().item<double>()},
                    {"psnr_db", psnr(out, ref)}};
                m[dtype] = r;
            } catch (const std::exception& e) {
                m[dtype] = {{"error", flashvsr::engine::first_line(e.what())}};
            }
        }
        const auto get = [&](const char* dt, const char* k) {
            return m[dt].contains(k) && m[dt][k].is_number() ? m[dt][k].get<double>() : std::nan("");
        };
        rep.check(mode + "_fp32_max_abs_le_1e-4", get("fp32", "max_abs") <= 1e-4);
        if (!m["bf16"].contains("skipped")) {
            rep.check(mode + "_bf16_psnr_ge_38db", get("bf16", "psnr_db") >= 38.0);
        }
        rep.summary.push_back(mode + ": fp32 max " + fmt(get("fp32", "max_abs")) + ", bf16 " +
                              fmt(get("bf16", "psnr_db")) + " dB, fp16 " + fmt(get("fp16", "psnr_db")) +
                              " dB");
        rep.results[mode] = m;
    }
    rep.results["input"] = std::to_string(video.size(2)) + "x" + std::to_string(video.size(1)) + "x" +
                           std::to_string(video.size(0)) + " frames, scale " + std::to_string(uo.scale);
    rep.results["weights"] = a.size;
}

/// Engine::to: to host RAM and back without the disk; device memory back to the baseline; same output.
void step_offload(const Args& a, const Dev& d, Report& rep) {
    const std::string dir = weights_dir(a, a.size);
    const at::Tensor video = a.quick ? make_video(5, 32, 48, 2) : make_video(5, 64, 96, 2);
    flashvsr::UpscaleOptions uo;
    uo.scale = a.quick ? 2 : 4;
    d.release_cached();
    const int64_t base = d.allocated();
    auto e = load(dir, "tiny", d);
    const at::Tensor before = e->upscale(video, uo);
    bool refused = false;
    {
        flashvsr::Stream s = e->stream(uo);
        try {
            e->to("cpu");
        } catch (const flashvsr::InputError&) {
            refused = true;
        }
    }
    d.release_cached();
    const int64_t loaded = d.allocated();
    const int64_t rss0 = status_bytes("VmRSS");
    double t0 = now_s();
    e->to("cpu");
    d.sync();
    const double to_host_s = now_s() - t0;
    d.release_cached();
    const int64_t offloaded = d.allocated(), offloaded_reserved = d.reserved();
    const int64_t rss_host = status_bytes("VmRSS") - rss0;
    const std::string host_device = e->info().device;
    t0 = now_s();
    e->to(d.name());
    d.sync();
    const double to_device_s = now_s() - t0;
    const at::Tensor after = e->upscale(video, uo);
    const double diff = max_abs(after, before);
    rep.results = {{"weight_bytes", e->info().weight_bytes},
                   {"dtype", e->info().dtype},
                   {"allocated_before_load_bytes", base},
                   {"allocated_loaded_bytes", loaded},
                   {"allocated_offloaded_bytes", offloaded},
                   {"reserved_offloaded_bytes", offloaded_reserved},
                   {"host_rss_growth_bytes", rss_host},
                   {"device_while_offloaded", host_device},
                   {"to_host_s", to_host_s},
                   {"to_device_s", to_device_s},
                   {"max_abs_after_round_trip", diff},
                   {"refused_with_live_stream", refused}};
    rep.check("refused_with_live_stream", refused);
    rep.check("output_unchanged_after_round_trip", diff <= 1e-6);
    rep.check("device_while_offloaded_is_cpu", host_device == "cpu");
    if (d.cuda) {
        rep.check("allocated_back_to_baseline_when_offloaded", offloaded == base);
        rep.check("weights_were_on_device", loaded - base >= e->info().weight_bytes / 2);
    }
    rep.summary.push_back("weights " + mib(e->info().weight_bytes) + ": to host " + fmt(to_host_s) +
                          " s, back " + fmt(to_device_s) + " s; device memory offloaded " +
                          mib(offloaded - base) + " above baseline; output diff " + fmt(diff));
}

/// Ten load/unload cycles: allocated bytes exactly back to the baseline, reserved within 64 MB.
void step_cycles(const Args& a, const Dev& d, Report& rep) {
    const std::string dir = weights_dir(a, a.size);
    const at::Tensor video = make_video(5, 32, 48, 3);
    flashvsr::UpscaleOptions uo;
    uo.scale = 2;
    d.release_cached();
    const int64_t base_alloc = d.allocated(), base_reserved = d.reserved();
    json cycles = json::array();
    int64_t worst_alloc = 0, worst_reserved = 0, rss2 = 0, rss_last = 0;
    for (int i = 0; i < 10; ++i) {
        const double t0 = now_s();
        {
            // Both decoders on a GPU; the dry run keeps to tiny (the CPU's fp32 VAE takes 15 s a video).
            auto e = load(dir, i % 2 == 0 || a.quick ? "tiny" : "full", d);
            (void)e->upscale(video, uo);
        }
        d.release_cached();
        const int64_t al = d.allocated() - base_alloc, re = d.reserved() - base_reserved;
        const int64_t rss = status_bytes("VmRSS");
        if (i == 1) {
            rss2 = rss;
        }
        rss_last = rss;
        worst_alloc = std::max(worst_alloc, std::abs(al));
        worst_reserved = std::max(worst_reserved, re);
        cycles.push_back({{"allocated_above_baseline", al},
                          {"reserved_above_baseline", re},
                          {"rss_bytes", rss},
                          {"seconds", now_s() - t0}});
    }
    rep.results = {{"cycles", cycles},
                   {"baseline_allocated_bytes", base_alloc},
                   {"baseline_reserved_bytes", base_reserved},
                   {"worst_allocated_above_baseline", worst_alloc},
                   {"worst_reserved_above_baseline", worst_reserved},
                   {"rss_growth_cycle2_to_10_bytes", rss_last - rss2},
                   {"modes", a.quick ? "tiny" : "tiny and full alternating"}};
    if (d.cuda) {
        rep.check("allocated_exactly_baseline", worst_alloc == 0);
        rep.check("reserved_within_64MB", worst_reserved <= 64 * kMiB);
    }
    rep.check("rss_growth_cycle2_to_10_le_64MB", rss_last - rss2 <= 64 * kMiB);
    rep.summary.push_back("10 cycles: allocated off by at most " + std::to_string(worst_alloc) +
                          " B, reserved +" + mib(worst_reserved) + ", RSS cycle 2->10 " +
                          mib(rss_last - rss2));
}

/// Full-size weights: steady and first-chunk frames/s, peak memory, per-network ms, transfers per chunk.
void step_bench(const Args& a, const Dev& d, Report& rep) {
    const std::string dir = weights_dir(a, a.size);
    struct Case {
        std::string name, mode;
        int64_t h, w, scale, frames, max_memory_above_weights;
    };
    const std::vector<Case> cases =
        a.quick
            ? std::vector<Case>{{"tiny_768x1408", "tiny", 32, 48, 2, 33, 0},
                                {"tiny_long_768x1408", "tiny-long", 32, 48, 2, 33, 0},
                                {"tiny_1920x1088_tiled", "tiny", 64, 128, 2, 33, 95 * kMiB}}
            : std::vector<Case>{{"tiny_768x1408", "tiny", 192, 352, 4, 57, 0},
                                {"tiny_long_768x1408", "tiny-long", 192, 352, 4, 57, 0},
                                {"tiny_1920x1088_tiled", "tiny", 272, 480, 4, 41, int64_t{12} * 1024 * kMiB}};
    at::Tensor tiny_out;
    for (const Case& c : cases) {
        const at::Tensor video = make_video(c.frames, c.h, c.w, 4);
        const double t0 = now_s();
        auto e = load(dir, c.mode, d);
        d.sync();
        const double load_s = now_s() - t0;
        flashvsr::UpscaleOptions uo;
        uo.scale = c.scale;
        if (c.max_memory_above_weights > 0) {
            uo.max_memory = e->info().weight_bytes + c.max_memory_above_weights;
        }
        const Run r = run_video(*e, video, uo, d);
        json j = run_json(r, d);
        j["load_s"] = load_s;
        j["mode"] = c.mode;
        j["dtype"] = e->info().dtype;
        j["weight_bytes"] = e->info().weight_bytes;
        j["max_memory_bytes"] = uo.max_memory;
        rep.results[c.name] = j;
        rep.summary.push_back(c.name + " (" + j["output"].get<std::string>() + ", " +
                              std::to_string(r.tiles.size()) + " tile(s)): steady " +
                              fmt(j["steady_fps"].get<double>()) + " fps, first chunk " +
                              fmt(r.first_chunk_s) + " s, peak alloc " + mib(r.peak_allocated));
        if (c.mode == "tiny") {
            if (!tiny_out.defined()) {
                tiny_out = r.out;
            }
        } else if (c.mode == "tiny-long") {
            rep.check("tiny_long_equals_tiny", tiny_out.defined() && at::equal(r.out, tiny_out));
        }
        rep.check(c.name + "_frames_out_equal_frames_in", r.out.size(0) == c.frames);
    }
    rep.results["weights"] = a.size;
}

/// Parking on/off (equal output) and the out-of-memory fallback under a real budget (CUDA: the caching
/// allocator's per-process memory fraction; CPU: the injected allocation limit of the tiling tests).
void step_budget(const Args& a, const Dev& d, Report& rep) {
    const std::string dir = weights_dir(a, a.size);
    auto e = load(dir, "tiny", d);
    const int64_t h = a.quick ? 40 : 192, w = a.quick ? 72 : 352, scale = a.quick ? 2 : 4,
                  n = a.quick ? 22 : 33;
    const at::Tensor video = make_video(n, h, w, 5);
    flashvsr::UpscaleOptions uo;
    uo.scale = scale;

    // Parking: the same tiles with states resident and parked give the same output.
    flashvsr::UpscaleOptions tiled = uo;
    tiled.tile_size = w / 2;
    tiled.park_tile_state = "off";
    const Run off = run_video(*e, video, tiled, d);
    tiled.park_tile_state = "on";
    const Run on = run_video(*e, video, tiled, d);
    rep.results["parking"] = {{"off", run_json(off, d)}, {"on", run_json(on, d)}};
    rep.check("parking_output_equal", at::equal(off.out, on.out));
    rep.check("parking_parks", on.parked && !off.parked);

    // The whole frame, then the fallback's first smaller layout forced by injection (chunk 0: exact).
    const Run whole = run_video(*e, video, uo, d);
    const flashvsr::TileRect full = whole.tiles.at(0);
    const int64_t whole_area = full.height * full.width;
    flashvsr::engine::TilingHooks inject;
    inject.before_tile = [whole_area](int64_t chunk, int64_t, const flashvsr::TileRect& r) {
        if (chunk == 0 && r.height * r.width >= whole_area) {
            TORCH_CHECK_WITH(OutOfMemoryError, false, "injected: out of memory");
        }
    };
    const Run injected = run_video(*e, video, uo, d, inject);
    rep.results["whole_frame"] = run_json(whole, d);
    rep.results["injected_fallback"] = run_json(injected, d);
    rep.check("injected_fallback_retiled", injected.tiles.size() > 1 && injected.oom_fallbacks == 1);

    json real;
    Run limited;
    if (d.cuda) {
        // Between the smaller layout's peak and the whole frame's: the whole frame must fail, the tiles fit.
        d.release_cached();
        const int64_t base = d.reserved();
        const int64_t need_small = injected.peak_reserved, need_whole = whole.peak_reserved;
        const int64_t limit = base + (need_small + need_whole) / 2;
        const double fraction = static_cast<double>(limit) / static_cast<double>(d.total_memory());
        real = {{"mechanism", "set_per_process_memory_fraction"},
                {"reserved_before_bytes", base},
                {"limit_bytes", limit},
                {"fraction", fraction}};
        if (need_small >= need_whole * 9 / 10) {
            real["note"] = "the smaller tiles do not save 10 % of the peak: no budget separates them";
        } else {
            struct Lift {  // the limit is lifted whatever happens
                const Dev& d;
                ~Lift() { d.set_memory_fraction(1.0); }
            } lift{d};
            d.set_memory_fraction(fraction);
            try {
                limited = run_video(*e, video, uo, d);
            } catch (const std::exception& x) {
                real["error"] = flashvsr::engine::first_line(x.what());
            }
        }
    } else {
        real = {{"mechanism", "injected"}};  // no allocator limit on the CPU: the same hook as above
        limited = run_video(*e, video, uo, d, inject);
    }
    if (limited.out.defined()) {
        real["run"] = run_json(limited, d);
        real["same_layout_as_injected"] = limited.tiles.size() == injected.tiles.size();
        real["equal_to_injected"] =
            limited.tiles.size() == injected.tiles.size() && at::equal(limited.out, injected.out);
        real["max_abs_vs_whole_frame"] = max_abs(limited.out, whole.out);
        rep.check("budget_fell_back", limited.oom_fallbacks >= 1);
        rep.check("budget_output_equals_smaller_tiles_from_the_start", real["equal_to_injected"].get<bool>());
    } else {
        rep.check("budget_run_completed", false);
    }
    rep.results["budget"] = real;
    rep.summary.push_back(
        "parking equal " + std::string(at::equal(off.out, on.out) ? "yes" : "NO") + " (peak " +
        mib(off.peak_allocated) + " -> " + mib(on.peak_allocated) + "); budget: " +
        (limited.out.defined() ? std::to_string(limited.oom_fallbacks) + " fallback(s) to " +
                                     std::to_string(limited.tiles.size()) + " tiles"
                               : std::string("not run")));
}

// ---- merge: steps/*.json + steps/*.status -> report.json + summary.txt
// --------------------------------------

json read_status(const fs::path& p) {  // "key=value" lines written by the script
    json s = json::object();
    std::ifstream f(p);
    std::string line;
    while (std::getline(f, line)) {
        const size_t eq = line.find('=');
        if (eq == std::string::npos) {
            continue;
        }
        const std::string k = line.substr(0, eq), v = line.substr(eq + 1);
        try {
            size_t used = 0;
            const long long n = std::stoll(v, &used);
            if (used == v.size()) {
                s[k] = n;
                continue;
            }
        } catch (...) {
        }
        s[k] = v;
    }
    return s;
}

int merge(const Args& a) {
    json report;
    report["schema"] = 1;
    report["mode"] = a.mode;
    json steps = json::object();
    bool ok = true;
    std::ostringstream text;
    text << "flashvsr gpu_check (" << a.mode << ")\n";
    std::istringstream names(a.steps);
    std::string name;
    while (names >> name) {
        const fs::path dir = fs::path(a.work) / "steps";
        json st = read_status(dir / (name + ".status"));
        json step;
        std::string status;
        const int64_t rc = st.value("rc", int64_t{-1});
        if (st.contains("skipped")) {
            status = "skipped";
            step["reason"] = st["skipped"];
        } else if (rc == 0) {
            status = "pass";
        } else if (rc == 3) {
            status = "fail";
        } else if (rc == 124 || rc == 137) {
            status = "timeout";
        } else {
            status = "error";
        }
        step["status"] = status;
        step["rc"] = rc;
        step["seconds"] = st.value("seconds", int64_t{0});
        step["timeout_s"] = st.value("timeout_s", int64_t{0});
        step["log"] = "logs/" + name + ".log";
        json body = json::object();
        std::ifstream f(dir / (name + ".json"));
        if (f) {
            try {
                body = json::parse(f);
            } catch (const std::exception& x) {
                body = {{"error", std::string("unreadable results: ") + x.what()}};
            }
        }
        step["results"] = body.value("results", json::object());
        step["checks"] = body.value("checks", json::object());
        if (body.contains("error")) {
            step["error"] = body["error"];
        }
        const std::string summary = body.value("summary", std::string());
        step["summary"] = summary;
        ok = ok && (status == "pass" || (status == "skipped" && st.value("optional", int64_t{0}) == 1));
        text << "  " << name << std::string(name.size() < 8 ? 8 - name.size() : 1, ' ') << status
             << std::string(status.size() < 8 ? 8 - status.size() : 1, ' ') << step["seconds"].get<int64_t>()
             << " s  " << (step.contains("error") ? "error: " + step["error"].get<std::string>() : summary);
        if (status == "skipped") {
            text << " (" << step["reason"].get<std::string>() << ")";
        }
        for (const auto& [k, v] : step["checks"].items()) {
            if (!v.get<bool>()) {
                text << "  [check failed: " << k << "]";
            }
        }
        text << "\n";
        steps[name] = step;
    }
    report["ok"] = ok;
    report["steps"] = steps;
    text << (ok ? "ALL PASSED" : "NOT ALL PASSED") << "\n";
    std::ofstream(a.out) << report.dump(2) << "\n";
    std::ofstream(a.summary) << text.str();
    std::cout << text.str();
    return 0;
}

Args parse(int argc, char** argv) {
    Args a;
    if (argc < 2) {
        throw flashvsr::InputError("usage: flashvsr_gpu_check STEP --device cpu|cuda --work DIR --out FILE");
    }
    a.step = argv[1];
    for (int i = 2; i < argc; ++i) {
        const std::string k = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                throw flashvsr::InputError(k + " needs a value");
            }
            return argv[++i];
        };
        if (k == "--device") {
            a.device = value();
        } else if (k == "--work") {
            a.work = value();
        } else if (k == "--out") {
            a.out = value();
        } else if (k == "--size") {
            a.size = value();
        } else if (k == "--mode") {
            a.mode = value();
        } else if (k == "--steps") {
            a.steps = value();
        } else if (k == "--summary") {
            a.summary = value();
        } else if (k == "--quick") {
            a.quick = true;
        } else {
            throw flashvsr::InputError("unknown option '" + k + "'");
        }
    }
    if (a.work.empty() || a.out.empty()) {
        throw flashvsr::InputError("--work and --out are required");
    }
    return a;
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    try {
        a = parse(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return 2;
    }
    if (a.step == "merge") {
        return merge(a);
    }
    const std::map<std::string, std::function<void(const Args&, const Dev&, Report&)>> steps = {
        {"env", step_env},         {"weights", step_weights}, {"parity", step_parity},
        {"offload", step_offload}, {"cycles", step_cycles},   {"bench", step_bench},
        {"budget", step_budget}};
    const auto it = steps.find(a.step);
    if (it == steps.end()) {
        std::cerr << "unknown step '" << a.step << "'\n";
        return 2;
    }
    Report rep;
    int rc = 0;
    json body;
    const double t0 = now_s();
    try {
        c10::InferenceMode guard;
        const Dev d = make_dev(a.device);
        it->second(a, d, rep);
        rc = rep.ok() ? 0 : 3;
    } catch (const std::exception& e) {
        body["error"] = flashvsr::engine::first_line(e.what());
        std::cerr << a.step << ": " << e.what() << "\n";
        rc = 1;
    }
    body["results"] = rep.results;
    body["checks"] = rep.checks;
    std::string summary;
    for (const auto& s : rep.summary) {
        summary += (summary.empty() ? "" : "; ") + s;
    }
    body["summary"] = summary;
    body["seconds"] = now_s() - t0;
    std::ofstream(a.out) << body.dump(2) << "\n";
    std::cout << a.step << ": " << (rc == 0 ? "pass" : rc == 3 ? "FAIL" : "ERROR") << "  " << summary << "\n";
    return rc;
}
