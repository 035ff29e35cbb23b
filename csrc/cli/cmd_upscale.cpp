// `flashvsr upscale IN -o OUT` and `flashvsr demo`: decode -> engine Stream -> encode, in bounded memory.
//
// Three stages on three threads (--pipeline-depth N, default 2): a decode thread fills a queue of at most N
// frame batches (with the other streams' packets met while reading them), the engine runs on the calling
// thread and puts finished frames with their source timestamps (kept in a FIFO whose length is the engine's
// latency) into a queue of at most N output batches, an encode thread drains it into the muxer (the only
// thread that touches it). Nothing grows with the video's length. --pipeline-depth 0 runs the same stages
// in turn on one thread, with the same output. SIGINT cancels through a CancelToken: the frames finished so
// far are flushed to OUT.partial.EXT (a valid, playable file) and the exit code is 130.
#include <flashvsr/flashvsr.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <type_traits>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/stage_threads.h"
#include "io/av_ptr.h"
#include "io/image_sequence.h"
#include "io/probe.h"
#include "io/synth_clip.h"
#include "io/video_decoder.h"
#include "io/video_encoder.h"
#include "models/test_weights.h"

namespace flashvsr::cli {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

// ---- options: one table drives parsing and --help (defaults come from the option structs) -------------

struct OptSpec {
    const char* name;
    const char* meta;  // nullptr: a flag
    std::string def;   // "" = none
    const char* help;
    bool repeated = false;
};

// "8G", "512M", "1.5G", "123456" (bytes; K/M/G/T are powers of 1024) -> bytes.
int64_t parse_size(const char* flag, const std::string& v) {
    size_t used = 0;
    double x = 0;
    try {
        x = std::stod(v, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    double mult = 1;
    const std::string rest = v.substr(used);
    if (rest == "K" || rest == "k" || rest == "KB" || rest == "KiB") mult = 1024.0;
    else if (rest == "M" || rest == "m" || rest == "MB" || rest == "MiB") mult = 1024.0 * 1024;
    else if (rest == "G" || rest == "g" || rest == "GB" || rest == "GiB") mult = 1024.0 * 1024 * 1024;
    else if (rest == "T" || rest == "t" || rest == "TB" || rest == "TiB") mult = 1024.0 * 1024 * 1024 * 1024;
    else if (!rest.empty()) used = 0;
    if (used == 0 || !(x > 0)) {
        throw UsageError(std::string(flag) + " needs a size like 8G or 512M, got '" + v + "'");
    }
    return static_cast<int64_t>(x * mult);
}

std::vector<OptSpec> upscale_options() {
    const UpscaleOptions u;
    const EngineOptions e;
    const io::EncoderOptions c;
    const auto num = [](double v) {
        std::ostringstream s;
        s << v;
        return s.str();
    };
    return {
        {"-o", "OUT", "",
         "output: a video file (the container follows the extension: .mp4, .mkv, .mov, ...) or an image "
         "sequence DIR/%05d.png (.tif, .tiff, .exr) or DIR/ (= DIR/%06d.png), numbered from 0. Required"},
        {"--model-dir", "DIR", "search",
         "model folder; without it: $FLASHVSR_MODEL_DIR, then ./models/<name>, "
         "$XDG_DATA_HOME/flashvsr/<name> (~/.local/share), $XDG_CACHE_HOME/flashvsr/<name> (~/.cache, where "
         "`flashvsr download` puts it); <name> is FlashVSR-v1.1 (FlashVSR for v1.0)"},
        {"--version", "v1.0|v1.1", "from the folder", "model version (manifest, else folder name)"},
        {"--mode", "tiny|tiny-long|full", e.mode,
         "decoder: tiny (TCDecoder), tiny-long, full (Wan VAE decoder)"},
        {"--scale", "2|3|4", std::to_string(u.scale), "upscaling factor"},
        {"--color-fix", "adain|wavelet|none", u.color_fix, "colour correction toward the input"},
        {"--sparse-ratio", "F", num(u.sparse_ratio), "sparse attention budget (1.5 = faster, 2.0 = quality)"},
        {"--kv-ratio", "F", num(u.kv_ratio), "K/V cache window length (in 2-latent-frame slices)"},
        {"--local-range", "N", std::to_string(u.local_range), "attention locality window (odd)"},
        {"--seed", "N", std::to_string(u.seed), "noise seed"},
        {"--tile-size", "N", std::to_string(u.tile_size),
         "tile size in input pixels (0: no tiling, or chosen by --max-memory)"},
        {"--tile-overlap", "N", std::to_string(u.tile_overlap), "tile overlap in input pixels (0: automatic)"},
        {"--max-memory", "SIZE", "none",
         "memory budget for weights + working set, e.g. 8G, 512M; picks the tile size (not with --tile-size)"},
        {"--park-tile-state", "auto|on|off", u.park_tile_state,
         "keep tile states in host memory between their chunks (auto: on CUDA when the budget needs it)"},
        {"--dtype", "auto|bf16|fp16|fp32|int8", e.dtype,
         "compute type (auto: bf16 on CUDA, fp32 on CPU; int8: DiT linears in int8, opt-in, quality unmeasured)"},
        {"--device", "auto|cpu|cuda|cuda:N", e.device, "device (auto: CUDA if available)"},
        {"-c:v", "ENCODER", c.codec, "any libavcodec video encoder (libx264, libx265, ffv1, prores_ks, ...)"},
        {"-e", "KEY=VALUE", "", "encoder private option, repeatable (e.g. -e preset=slow -e tune=film)",
         true},
        {"--pix-fmt", "FMT", "yuv420p",
         "output pixel format (10-bit input: yuv420p10le where the encoder has it)"},
        {"--crf", "N", std::to_string(c.crf),
         "constant rate factor (encoders with a crf option; -1: encoder's)"},
        {"--no-audio", nullptr, "", "do not copy the audio streams"},
        {"--no-subtitles", nullptr, "", "do not copy the subtitle streams"},
        {"--start", "T", "0", "start time (seconds or [hh:]mm:ss[.ms]); output timestamps start at 0"},
        {"--end", "T", "end", "end time (exclusive)"},
        {"--report", "FILE.json", "",
         "write a JSON summary (timings per stage, fps, peak memory, model files)"},
        {"--fps", "RATE", "25",
         "frame rate of an image-sequence input (25, 29.97, 24000/1001, ...): the output video's rate"},
        {"--start-number", "N", "the lowest present",
         "first frame number of an input pattern like in/%05d.png"},
        {"--bit-depth", "8|16|32", "16 for PNG/TIFF from a >8-bit input, else 8; EXR 16",
         "image-sequence output: PNG/TIFF 8 or 16 bits, EXR 16 (half) or 32 (float)"},
        {"--overwrite", nullptr, "",
         "replace an existing output file (an output folder only when it holds nothing but frames of the "
         "pattern)"},
        {"--no-progress", nullptr, "", "no progress output"},
        {"--progress-interval", "S", "0.25 on a terminal, 5 otherwise", "seconds between progress updates"},
        {"--batch", "N", "4", "frames decoded per step (memory: a few frames)"},
        {"--max-pixels", "N", std::to_string(io::kDefaultMaxPixels),
         "largest input frame (width x height); larger files are refused before decoding"},
        {"--pipeline-depth", "N", std::to_string(UpscaleJob().pipeline_depth),
         "decode and encode run in their own threads beside the engine, with at most N batches queued on "
         "each side (0: one thread, the stages in turn; same output)"},
        {"--verbose", nullptr, "", "show FFmpeg's own log messages (encoder settings, demuxer warnings)"},
    };
}

void print_upscale_help(std::ostream& os) {
    os << "usage: flashvsr upscale IN -o OUT [options]\n\n"
          "Upscales the video stream of IN with FlashVSR; audio and subtitle streams are copied packet for "
          "packet,\n"
          "timestamps are kept (N frames in, N frames out). Ctrl-C stops within a chunk and keeps the frames "
          "done\n"
          "in OUT.partial.EXT (DIR.partial/ for an image sequence; exit code 130).\n\n"
          "Image sequences (PNG/TIFF 8/16-bit, EXR half/float): IN may be a folder (its .png, .tif,\n"
          ".tiff or .exr images in natural order, one extension, all the same size) or a pattern like\n"
          "in/frame_%05d.png; 16-bit stays 16-bit through the engine, EXR values are used as stored and\n"
          "clamped to [0, 1], grey becomes RGB, alpha is dropped (with a note). Sequences carry no audio,\n"
          "subtitles or timestamps: a sequence input plays at --fps, a sequence output drops the input's\n"
          "audio (with a note). A sequence output is written into DIR.tmp-PID/ and renamed to DIR/ when\n"
          "complete.\n\nOptions:\n";
    for (const OptSpec& o : upscale_options()) {
        std::string head = std::string("  ") + o.name + (o.meta ? std::string(" ") + o.meta : "");
        os << std::left << std::setw(34) << head << " " << o.help;
        if (!o.def.empty()) os << " [default: " << o.def << "]";
        os << "\n";
    }
    os << "\nExit codes: 0 done, 1 error (no output file is left), 2 usage error, 130 interrupted.\n";
}

double parse_time(const std::string& name, const std::string& v) {
    double total = 0;
    size_t pos = 0;
    int parts = 0;
    try {
        while (true) {
            const size_t colon = v.find(':', pos);
            const std::string part =
                v.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
            size_t used = 0;
            const double x = std::stod(part, &used);
            if (used != part.size() || x < 0) throw std::invalid_argument("bad");
            total = total * 60 + x;
            ++parts;
            if (colon == std::string::npos) break;
            pos = colon + 1;
        }
    } catch (const std::exception&) {
        throw UsageError("option " + name + " needs a time (seconds or [hh:]mm:ss), got '" + v + "'");
    }
    if (parts > 3)
        throw UsageError("option " + name + " needs a time (seconds or [hh:]mm:ss), got '" + v + "'");
    return total;
}

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::string(v) : std::string();
}

fs::path user_dir(const char* xdg, const char* fallback) {
    const std::string x = env(xdg);
    if (!x.empty()) return fs::path(x) / "flashvsr";
    const std::string home = env("HOME");
    return home.empty() ? fs::path() : fs::path(home) / fallback / "flashvsr";
}

// ---- memory, progress, signals ----------------------------------------------------------------------

int64_t proc_status_kb(const char* key) {
    std::ifstream f("/proc/self/status");
    std::string line;
    const std::string k = std::string(key) + ":";
    while (std::getline(f, line)) {
        if (line.rfind(k, 0) == 0) return std::stoll(line.substr(k.size()));
    }
    return -1;
}

std::atomic<CancelToken*> g_cancel{nullptr};

extern "C" void on_sigint(int) {
    if (CancelToken* t = g_cancel.load()) t->cancel();
    std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

struct SignalScope {
    explicit SignalScope(CancelToken* t) {
        g_cancel.store(t);
        prev_int_ = std::signal(SIGINT, on_sigint);
        prev_term_ = std::signal(SIGTERM, on_sigint);
    }
    ~SignalScope() {
        std::signal(SIGINT, prev_int_);
        std::signal(SIGTERM, prev_term_);
        g_cancel.store(nullptr);
    }
    void (*prev_int_)(int);
    void (*prev_term_)(int);
};

std::string hms(double s) {
    if (!(s >= 0) || s > 1e7) return "--:--";
    const int64_t t = static_cast<int64_t>(s + 0.5);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", static_cast<long long>(t / 3600),
                  static_cast<long long>(t / 60 % 60), static_cast<long long>(t % 60));
    return buf;
}

class Progress {
  public:
    Progress(bool enabled, int64_t total, double interval_s)
        : enabled_(enabled),
          tty_(::isatty(2) != 0),
          total_(total),
          interval_(interval_s >= 0 ? interval_s
                    : tty_          ? 0.25
                                    : 5.0) {}
    void update(int64_t done, bool final = false) {
        if (!enabled_) return;
        const auto now = Clock::now();
        const double since = std::chrono::duration<double>(now - last_).count();
        if (!final && since < interval_) return;
        if (final && !tty_ && done == last_done_) return;  // already printed
        last_done_ = done;
        last_ = now;
        const double el = std::chrono::duration<double>(now - t0_).count();
        const double fps = el > 0 ? done / el : 0;
        std::ostringstream s;
        s << "frames " << done;
        if (total_ > 0) s << "/" << total_ << " (" << (100 * done / std::max<int64_t>(total_, 1)) << "%)";
        s << "  " << std::fixed << std::setprecision(2) << fps << " fps";
        if (total_ > 0 && fps > 0) s << "  ETA " << hms((total_ - done) / fps);
        s << "  elapsed " << hms(el) << "  mem " << proc_status_kb("VmRSS") / 1024 << " MiB";
        if (tty_) {
            std::cerr << "\r" << s.str() << "\033[K" << (final ? "\n" : "") << std::flush;
        } else {
            std::cerr << s.str() << "\n";
        }
    }

  private:
    bool enabled_, tty_;
    int64_t total_;
    double interval_;
    int64_t last_done_ = -1;
    Clock::time_point t0_ = Clock::now(), last_ = Clock::now() - std::chrono::hours(1);
};

}  // namespace

// ---- the job -------------------------------------------------------------------------------------------

std::string find_model_dir(const std::string& version) {
    const std::string name = version == "v1.0" ? "FlashVSR" : "FlashVSR-v1.1";
    std::vector<fs::path> places;
    if (const std::string d = env("FLASHVSR_MODEL_DIR"); !d.empty()) places.emplace_back(d);
    places.push_back(fs::path("models") / name);
    if (const fs::path d = user_dir("XDG_DATA_HOME", ".local/share"); !d.empty()) places.push_back(d / name);
    if (const fs::path d = user_dir("XDG_CACHE_HOME", ".cache"); !d.empty()) places.push_back(d / name);
    std::string tried;
    for (const fs::path& p : places) {
        std::error_code ec;
        if (fs::is_directory(p, ec)) return p.string();
        tried += (tried.empty() ? "" : ", ") + p.string();
    }
    throw ModelError("no model folder found (tried " + tried +
                     "); pass --model-dir DIR, set FLASHVSR_MODEL_DIR, or run `flashvsr download`");
}

std::string default_model_dir(const std::string& version) {
    fs::path cache = user_dir("XDG_CACHE_HOME", ".cache");
    if (cache.empty()) cache = fs::temp_directory_path() / "flashvsr";
    return (cache / (version == "v1.0" ? "FlashVSR" : "FlashVSR-v1.1")).string();
}

namespace {

// ---- the pipeline's threads -----------------------------------------------------------------------------

/// One decode step's result: the frames, and the other streams' packets met while reading them.
struct InBatch {
    io::FrameBatch b;  // n = 0: the end of the input
    std::vector<io::AVPacketPtr> packets;
};

/// One engine step's result for the writer: finished frames with their source timestamps, then the packets
/// that came with the input batch (written first, as the decoder met them).
struct OutBatch {
    at::Tensor rgb;  // [n, H*s, W*s, 3] float, n may be 0
    std::vector<int64_t> pts, dur;
    std::vector<io::AVPacketPtr> packets;
};

/// Load the engine, then decode -> engine -> write with whichever reader (VideoDecoder or
/// ImageSequenceReader) and writer (VideoEncoder or ImageSequenceWriter) the job names.
template <class Source, class Sink>
int run_pipeline(const UpscaleJob& job, Source& dec, Sink& enc, CancelToken& cancel,
                 Clock::time_point t_start) {
    constexpr bool kVideoIn = std::is_same_v<Source, io::VideoDecoder>;
    constexpr bool kVideoOut = std::is_same_v<Sink, io::VideoEncoder>;
    const io::VideoStreamInfo& vi = dec.info();
    const int64_t s = job.upscale.scale;
    std::error_code fec;
    const auto t_load0 = Clock::now();
    const std::shared_ptr<Engine> engine = Engine::load(job.engine);
    const double load_s = std::chrono::duration<double>(Clock::now() - t_load0).count();
    for (const std::string& w : enc.warnings()) std::cerr << "flashvsr: warning: " << w << "\n";
    for (const std::string& w : engine->info().warnings) std::cerr << "flashvsr: warning: " << w << "\n";
    const std::string out_format = kVideoOut ? job.encoder.codec + " " + enc.pix_fmt() : enc.pix_fmt();
    if (job.progress) {
        std::cerr << "flashvsr: " << job.input << " " << vi.width << "x" << vi.height << " " << vi.pix_fmt
                  << " -> " << job.output << " " << vi.width * s << "x" << vi.height * s << " " << out_format
                  << "\n  engine: " << job.engine.to_string() << "\n  upscale: " << job.upscale.to_string()
                  << "\n";
    }

    c10::InferenceMode inference;  // every thread below runs under one (no autograd bookkeeping)
    Stream stream = engine->stream(job.upscale);
    stream.set_cancel(&cancel);
    Progress progress(job.progress, vi.frames_estimate, job.progress_interval_s);
    std::deque<int64_t> pts_q, dur_q;  // timestamps of frames inside the engine (its latency, bounded)
    double decode_s = 0, engine_s = 0, encode_s = 0;  // each written by its own stage's thread only
    int64_t frames_in = 0;

    // The three stages. The decoder's packets of the other streams (audio, subtitles) travel with the
    // frames decoded in the same read, so the muxer is only touched by the encode stage and sees the same
    // packet / frame order as when the stages run in turn.
    std::vector<io::AVPacketPtr> read_packets;  // decode stage only
    if constexpr (kVideoIn && kVideoOut) {
        dec.set_packet_sink([&read_packets](AVPacket* p) { read_packets.push_back(io::clone_packet(p)); });
    }
    const auto decode_step = [&] {
        const auto t0 = Clock::now();
        InBatch x{dec.read(job.batch), {}};
        x.packets = std::move(read_packets);
        read_packets.clear();
        decode_s += std::chrono::duration<double>(Clock::now() - t0).count();
        return x;
    };
    const auto encode_step = [&](OutBatch& o) {
        const auto t0 = Clock::now();
        if constexpr (kVideoOut) {
            for (const io::AVPacketPtr& p : o.packets) enc.write_packet(p.get());
        }
        if (o.rgb.defined() && o.rgb.size(0) > 0) enc.write(o.rgb, o.pts, o.dur);
        encode_s += std::chrono::duration<double>(Clock::now() - t0).count();
        progress.update(enc.frames_written());
    };
    const auto engine_step = [&](InBatch& x, bool last) {
        const auto t0 = Clock::now();
        if (last) {
            stream.finish();
        } else {
            stream.push(x.b.rgb);
        }
        OutBatch o{stream.pull(), {}, {}, std::move(x.packets)};
        engine_s += std::chrono::duration<double>(Clock::now() - t0).count();
        for (int64_t i = 0; i < o.rgb.size(0); ++i) {
            o.pts.push_back(pts_q.front());
            o.dur.push_back(dur_q.front());
            pts_q.pop_front();
            dur_q.pop_front();
        }
        return o;
    };

    StageThreads<InBatch, OutBatch> pipe(job.pipeline_depth);
    if (pipe.threaded()) {
        // The workers run under c10::InferenceMode, as the engine here does, with one intra-op thread each:
        // their ATen work is a few element-wise conversions, and more OpenMP teams beside the engine's
        // would compete for its cores (2 cores, 100 frames: 18 % slower than in turn with them, even
        // without). With OpenMP, at::set_num_threads sizes the calling thread's own team only.
        const auto worker_scope = [](const std::function<void()>& body) {
            c10::InferenceMode inference;
            at::set_num_threads(1);
            body();
        };
        pipe.start(decode_step, [](const InBatch& x) { return x.b.rgb.size(0) == 0; }, encode_step,
                   worker_scope);
    }
    const auto t_run0 = Clock::now();
    bool cancelled = false;
    try {
        while (true) {
            if (cancel.cancelled()) throw Cancelled("interrupted");
            InBatch x = pipe.threaded() ? pipe.pop_input() : decode_step();
            const bool last = x.b.rgb.size(0) == 0;
            frames_in += x.b.rgb.size(0);
            for (size_t i = 0; i < x.b.pts.size(); ++i) {
                pts_q.push_back(x.b.pts[i]);
                dur_q.push_back(x.b.duration[i]);
            }
            if (last && cancel.cancelled()) throw Cancelled("interrupted");
            OutBatch o = engine_step(x, last);
            if (pipe.threaded()) {
                pipe.push_output(std::move(o));
            } else {
                encode_step(o);
            }
            if (last) break;
        }
    } catch (const Cancelled&) {
        cancelled = true;
    }
    pipe.finish();  // the encode stage writes what is queued; its error (if any) is rethrown here
    progress.update(enc.frames_written(), true);
    if constexpr (!kVideoIn) {
        for (const std::string& n : dec.take_notes()) std::cerr << "flashvsr: note: " << n << "\n";
    }

    std::string written;
    {
        const auto t0 = Clock::now();
        written = cancelled ? enc.finish_partial() : enc.finish();
        encode_s += std::chrono::duration<double>(Clock::now() - t0).count();
    }
    if (!cancelled && enc.frames_written() != frames_in) {
        if constexpr (kVideoOut) {
            fs::remove(written, fec);
        } else {
            fs::remove_all(fs::path(written).parent_path(), fec);
        }
        throw Error("internal error: " + std::to_string(frames_in) + " frames in, " +
                    std::to_string(enc.frames_written()) + " out");
    }
    const double total_s = std::chrono::duration<double>(Clock::now() - t_start).count();
    const double run_s = std::chrono::duration<double>(Clock::now() - t_run0).count();
    const double fps = run_s > 0 ? enc.frames_written() / run_s : 0;
    if (!job.report.empty()) {
        nlohmann::json r;
        r["status"] = cancelled ? "cancelled" : "completed";
        r["input"] = job.input;
        r["output"] = written;
        r["frames_in"] = frames_in;
        r["frames_out"] = enc.frames_written();
        r["input_size"] = {vi.width, vi.height};
        r["output_size"] = {vi.width * s, vi.height * s};
        r["input_pix_fmt"] = vi.pix_fmt;
        r["encoder"] = kVideoOut ? job.encoder.codec : std::string("image sequence");
        r["pix_fmt"] = enc.pix_fmt();
        r["timings_s"] = {{"load", load_s},
                          {"decode", decode_s},
                          {"engine", engine_s},
                          {"encode", encode_s},
                          {"run", run_s},
                          {"total", total_s}};
        r["fps"] = fps;
        r["pipeline_depth"] = job.pipeline_depth;
        r["peak_rss_bytes"] = proc_status_kb("VmHWM") * 1024;
        r["stream_state_bytes"] = stream.state_bytes();
        const EngineInfo& ei = engine->info();
        r["model"] = {{"dir", ei.model_dir},
                      {"version", ei.version},
                      {"mode", ei.mode},
                      {"device", ei.device},
                      {"dtype", ei.dtype},
                      {"files", ei.files},
                      {"weight_bytes", ei.weight_bytes}};
        r["engine_options"] = job.engine.to_string();
        r["upscale_options"] = job.upscale.to_string();
        r["warnings"] = enc.warnings();
        std::ofstream f(job.report);
        if (!f) throw InputError("cannot write the report '" + job.report + "'");
        f << r.dump(2) << "\n";
    }
    if (cancelled) {
        std::cerr << "flashvsr: interrupted: " << enc.frames_written() << " frames done, kept in " << written
                  << "\n";
        return 130;
    }
    if (job.progress) {
        std::cerr << "flashvsr: wrote " << written << " (" << enc.frames_written() << " frames, "
                  << std::fixed << std::setprecision(2) << fps << " fps, peak memory "
                  << proc_status_kb("VmHWM") / 1024 << " MiB)\n";
    }
    return 0;
}

/// The writer for `dec`'s frames: an image sequence or a video file.
template <class Source>
int run_with_sink(const UpscaleJob& job, Source& dec, const AVFormatContext* copy_from, int64_t offset_pts,
                  CancelToken& cancel, Clock::time_point t_start) {
    const io::VideoStreamInfo& vi = dec.info();
    const int64_t s = job.upscale.scale;
    const int ow = static_cast<int>(vi.width * s), oh = static_cast<int>(vi.height * s);
    if (!io::is_image_sequence_output(job.output)) {
        // The encoder first: its errors (encoder, pixel format, options, unwritable output) come
        // before the load.
        io::VideoEncoder enc(job.output, ow, oh, vi, copy_from, offset_pts, job.encoder);
        return run_pipeline(job, dec, enc, cancel, t_start);
    }
    std::error_code ec;
    const std::string in_dir = !io::is_image_sequence_input(job.input)
                                   ? fs::path(job.input).parent_path().string()
                               : fs::is_directory(job.input, ec) ? job.input
                                                                 : io::FramePattern(job.input).folder();
    const std::string out_dir = io::ImageSequenceWriter::folder_of(job.output);
    if (fs::equivalent(in_dir.empty() ? "." : in_dir, out_dir, ec)) {
        throw InputError("the output folder '" + out_dir + "' is the input's folder (choose a new one)");
    }
    io::ImageSequenceWriter enc(job.output, ow, oh, vi.bits, job.bit_depth, job.encoder.overwrite);
    if constexpr (std::is_same_v<Source, io::VideoDecoder>) {
        for (const io::StreamInfo& st : io::probe(job.input).streams) {
            if (st.type == "audio" || st.type == "subtitle") {
                std::cerr << "flashvsr: note: an image sequence holds no audio or subtitles: stream "
                          << st.index << " (" << st.type << ") is not written\n";
            }
        }
    }
    return run_pipeline(job, dec, enc, cancel, t_start);
}

}  // namespace

int run_upscale(const UpscaleJob& job) {
    const auto t_start = Clock::now();
    if (job.input.empty()) throw UsageError("no input file");
    if (job.output.empty()) throw UsageError("no output file (-o OUT)");
    const bool seq_in = io::is_image_sequence_input(job.input);
    std::error_code fec;
    if (!io::is_image_sequence_output(job.output)) {
        if (fs::exists(job.output, fec) && fs::equivalent(job.input, job.output, fec)) {
            throw InputError("the output '" + job.output + "' is the input file");
        }
        if (fs::exists(job.output, fec) && !job.encoder.overwrite) {
            throw InputError("the output '" + job.output + "' exists (use --overwrite to replace it)");
        }
    }
    if (seq_in && (job.decoder.start_s > 0 || job.decoder.end_s >= 0)) {
        throw UsageError("--start/--end apply to video input, not to an image sequence");
    }
    job.engine.validate();
    job.upscale.validate();

    CancelToken token;
    SignalScope signals(job.cancel != nullptr ? job.cancel : &token);
    CancelToken& cancel = job.cancel != nullptr ? *job.cancel : token;
    if (seq_in) {
        io::ImageSequenceReader dec(job.input, job.start_number, job.fps_num, job.fps_den,
                                    job.decoder.max_pixels);
        for (const std::string& n : dec.take_notes()) std::cerr << "flashvsr: note: " << n << "\n";
        return run_with_sink(job, dec, nullptr, 0, cancel, t_start);
    }
    io::VideoDecoder dec(job.input, job.decoder);
    return run_with_sink(job, dec, dec.format(), dec.offset_pts(), cancel, t_start);
}

int cmd_upscale(const std::vector<std::string>& argv) {
    std::set<std::string> valued, flags, repeated;
    for (const OptSpec& o : upscale_options()) {
        (o.meta == nullptr ? flags : o.repeated ? repeated : valued).insert(o.name);
    }
    flags.insert("--help");
    flags.insert("-h");
    const Args args(argv, valued, flags, repeated);
    if (args.has("--help") || args.has("-h")) {
        print_upscale_help(std::cout);
        return 0;
    }
    if (args.positionals().size() != 1) {
        throw UsageError("expected one input file (usage: flashvsr upscale IN -o OUT [options]; see --help)");
    }
    if (!args.has("-o")) throw UsageError("no output file (-o OUT)");
    io::set_av_logging(args.has("--verbose"));
    UpscaleJob job;
    job.input = args.positionals()[0];
    job.output = args.get("-o", "");
    job.engine.version = args.get("--version", "");
    job.engine.model_dir =
        args.has("--model-dir") ? args.get("--model-dir", "") : find_model_dir(job.engine.version);
    job.engine.mode = args.get("--mode", job.engine.mode);
    job.engine.device = args.get("--device", job.engine.device);
    job.engine.dtype = args.get("--dtype", job.engine.dtype);
    job.upscale.scale = args.get_int("--scale", job.upscale.scale);
    job.upscale.color_fix = args.get("--color-fix", job.upscale.color_fix);
    job.upscale.sparse_ratio = args.get_double("--sparse-ratio", job.upscale.sparse_ratio);
    job.upscale.kv_ratio = args.get_double("--kv-ratio", job.upscale.kv_ratio);
    job.upscale.local_range = args.get_int("--local-range", job.upscale.local_range);
    const int64_t seed = args.get_int("--seed", 0);
    if (seed < 0) throw UsageError("--seed must be >= 0, got " + std::to_string(seed));
    job.upscale.tile_size = args.get_int("--tile-size", job.upscale.tile_size);
    job.upscale.tile_overlap = args.get_int("--tile-overlap", job.upscale.tile_overlap);
    if (args.has("--max-memory")) {
        if (args.has("--tile-size")) throw UsageError("--max-memory and --tile-size exclude each other");
        job.upscale.max_memory = parse_size("--max-memory", args.get("--max-memory", ""));
    }
    job.upscale.park_tile_state = args.get("--park-tile-state", job.upscale.park_tile_state);
    job.upscale.seed = static_cast<uint64_t>(seed);
    job.encoder.codec = args.get("-c:v", job.encoder.codec);
    job.encoder.pix_fmt = args.get("--pix-fmt", "");
    job.encoder.crf = static_cast<int>(args.get_int("--crf", job.encoder.crf));
    for (const std::string& kv : args.get_all("-e")) {
        const size_t eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) throw UsageError("-e needs KEY=VALUE, got '" + kv + "'");
        job.encoder.private_options.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    job.encoder.copy_audio = !args.has("--no-audio");
    job.encoder.copy_subtitles = !args.has("--no-subtitles");
    job.encoder.overwrite = args.has("--overwrite");
    if (args.has("--start")) job.decoder.start_s = parse_time("--start", args.get("--start", ""));
    if (args.has("--end")) job.decoder.end_s = parse_time("--end", args.get("--end", ""));
    job.report = args.get("--report", "");
    job.progress = !args.has("--no-progress");
    job.progress_interval_s = args.get_double("--progress-interval", -1.0);
    job.batch = args.get_int("--batch", job.batch);
    if (job.batch < 1) throw UsageError("--batch must be >= 1");
    job.decoder.max_pixels = args.get_int("--max-pixels", job.decoder.max_pixels);
    if (job.decoder.max_pixels < 1) throw UsageError("--max-pixels must be >= 1");
    job.pipeline_depth = args.get_int("--pipeline-depth", job.pipeline_depth);
    if (job.pipeline_depth < 0) throw UsageError("--pipeline-depth must be >= 0");
    // Image sequences: which options apply to which side.
    const bool seq_in = io::is_image_sequence_input(job.input);
    const bool seq_out = io::is_image_sequence_output(job.output);
    for (const char* o : {"--fps", "--start-number"}) {
        if (!seq_in && args.has(o)) {
            throw UsageError(std::string(o) +
                             " applies to image-sequence input (a folder or a pattern like "
                             "in/%05d.png)");
        }
    }
    if (!seq_out && args.has("--bit-depth")) {
        throw UsageError("--bit-depth applies to image-sequence output (.png, .tif, .tiff, .exr)");
    }
    for (const char* o : {"-c:v", "--pix-fmt", "--crf", "-e"}) {
        if (seq_out && args.has(o))
            throw UsageError(std::string(o) + " applies to video output, not to an image sequence");
    }
    try {
        io::parse_frame_rate(args.get("--fps", "25"), &job.fps_num, &job.fps_den);
    } catch (const InputError& e) {
        throw UsageError(std::string("--fps: ") + e.what());
    }
    job.start_number = args.get_int("--start-number", -1);
    if (args.has("--start-number") && job.start_number < 0) throw UsageError("--start-number must be >= 0");
    job.bit_depth = static_cast<int>(args.get_int("--bit-depth", 0));
    if (args.has("--bit-depth") && job.bit_depth != 8 && job.bit_depth != 16 && job.bit_depth != 32) {
        throw UsageError("--bit-depth must be 8, 16 or 32");
    }
    return run_upscale(job);
}

// ---- demo ----------------------------------------------------------------------------------------------

int cmd_demo(const std::vector<std::string>& argv) {
    const Args args(argv, {"-o"}, {"--overwrite", "--help", "-h"});
    if (args.has("--help") || args.has("-h")) {
        std::cout
            << "usage: flashvsr demo [-o OUT] [--overwrite]\n\n"
               "Writes a short synthetic clip (moving pattern + 440 Hz tone), makes tiny RANDOM weights in\n"
               "the cache folder ($XDG_CACHE_HOME/flashvsr or ~/.cache/flashvsr) and upscales the clip x2\n"
               "end to end [default OUT: flashvsr_demo.mp4]. Random weights produce no real detail.\n";
        return 0;
    }
    if (!args.positionals().empty()) throw UsageError("unexpected argument '" + args.positionals()[0] + "'");
    io::set_av_logging(false);
    fs::path cache = user_dir("XDG_CACHE_HOME", ".cache");
    if (cache.empty()) cache = fs::temp_directory_path() / "flashvsr";
    const fs::path weights = cache / "demo-random-weights" / "FlashVSR-v1.1";
    if (!fs::exists(weights / "flashvsr_manifest.json")) {
        models::TestWeightsOptions o;
        o.size = "tiny";
        o.prompt_tokens = 64;
        models::make_test_weights(weights.string(), o);
    }
    const fs::path clip = cache / "demo-input.mp4";
    std::error_code ec;
    fs::remove(clip, ec);
    io::SynthClipOptions so;
    so.width = 96;
    so.height = 64;
    so.frames = 33;
    so.fps_num = 24000;
    so.fps_den = 1001;
    io::write_synthetic_clip(clip.string(), so);

    UpscaleJob job;
    job.input = clip.string();
    job.output = args.get("-o", "flashvsr_demo.mp4");
    job.engine.model_dir = weights.string();
    job.engine.device = "cpu";
    job.upscale.scale = 2;
    job.encoder.overwrite = args.has("--overwrite");
    std::cout << "flashvsr demo: input " << clip.string() << " (" << so.width << "x" << so.height << ", "
              << so.frames << " frames at 23.976 fps, 440 Hz tone)\n"
              << "flashvsr demo: using RANDOM tiny weights in " << weights.string() << "\n";
    const int rc = run_upscale(job);
    if (rc != 0) return rc;
    std::cout
        << "flashvsr demo: wrote " << job.output << " (" << so.width * 2 << "x" << so.height * 2
        << ", audio kept)\n\n"
           "NOTE: these weights are random, so the output has NO real detail: it only shows that decoding,\n"
           "the streaming engine, encoding, audio copy and timestamps work on this machine.\n"
           "For real results get the published FlashVSR weights (Hugging Face JunhaoZhuang/FlashVSR-v1.1):\n"
           "  flashvsr download --version v1.1      (or download the folder by hand)\n"
           "  flashvsr upscale input.mp4 -o output.mp4 --model-dir /path/to/FlashVSR-v1.1\n";
    return 0;
}

}  // namespace flashvsr::cli
