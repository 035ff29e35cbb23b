// `flashvsr upscale IN -o OUT` and `flashvsr demo`: argument parsing, signals and the progress line around
// the library's transcode pipeline (pipeline/transcode.h: decode -> engine Stream -> encode in bounded
// memory, on three threads). SIGINT/SIGTERM cancel through a CancelToken: the frames finished so far are
// flushed to OUT.partial.EXT (a valid, playable file) and the exit code is 130.
#include <flashvsr/flashvsr.h>
#include <flashvsr/options.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "csrc/cli/args.h"
#include "csrc/cli/commands.h"
#include "csrc/core/proc_status.h"
#include "csrc/io/av_ptr.h"
#include "csrc/io/image_sequence.h"
#include "csrc/io/synth_clip.h"
#include "csrc/pipeline/model_search.h"
#include "csrc/pipeline/transcode.h"
#include "csrc/pipeline/transcode_options.h"
#include "models/test_weights.h"

namespace flashvsr::cli {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

// ---- options: one table drives parsing and --help; the engine, upscale and job rows come from the
// library's option tables (flashvsr/options.h, pipeline/transcode_options.h), with the CLI's own words for
// the few it treats specially; -o and the run's own flags (--report, progress, --verbose) are the CLI's ---

struct OptSpec {
    std::string name;
    std::string meta;  // "": a flag
    std::string def;   // "" = none
    std::string help;
    bool repeated = false;
};

/// The CLI's rows for an option of the library's tables: its help, or the CLI's own meta/default/help for
/// those it parses specially (--model-dir searches, --version defaults to the folder, --max-memory takes
/// sizes).
OptSpec cli_row(const OptionSpec& s) {
    if (s.name == "model_dir") {
        return {s.cli_flag(), "DIR", "search",
                "model folder; without it: $FLASHVSR_MODEL_DIR, then ./models/<name>, "
                "$XDG_DATA_HOME/flashvsr/<name> (~/.local/share), $XDG_CACHE_HOME/flashvsr/<name> (~/.cache, "
                "where "
                "`flashvsr download` puts it); <name> is FlashVSR-v1.1 (FlashVSR for v1.0)"};
    }
    if (s.name == "version") {
        return {s.cli_flag(), s.meta, "from the folder", "model version (manifest, else folder name)"};
    }
    if (s.name == "max_memory") {
        return {s.cli_flag(), "SIZE", "none",
                "memory budget for weights + working set, e.g. 8G, 512M; picks the tile size (not with "
                "--tile-size)"};
    }
    if (s.type == OptionType::Bool) {  // a flag: present = not the default (--no-audio)
        return {s.cli_flag(), "", "", (std::get<bool>(s.default_value) ? "do not " : "") + s.help};
    }
    return {s.cli_flag(), s.meta, s.cli_default.empty() ? s.default_text() : s.cli_default, s.help,
            s.type == OptionType::KeyValues};
}

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
    if (rest == "K" || rest == "k" || rest == "KB" || rest == "KiB") {
        mult = 1024.0;
    } else if (rest == "M" || rest == "m" || rest == "MB" || rest == "MiB") {
        mult = 1024.0 * 1024;
    } else if (rest == "G" || rest == "g" || rest == "GB" || rest == "GiB") {
        mult = 1024.0 * 1024 * 1024;
    } else if (rest == "T" || rest == "t" || rest == "TB" || rest == "TiB") {
        mult = 1024.0 * 1024 * 1024 * 1024;
    } else if (!rest.empty()) {
        used = 0;
    }
    if (used == 0 || !(x > 0)) {
        throw UsageError(std::string(flag) + " needs a size like 8G or 512M, got '" + v + "'");
    }
    return static_cast<int64_t>(x * mult);
}

/// The run's own flags (not options of the job), placed after the job option named first.
const std::vector<std::pair<std::string, OptSpec>>& run_flags() {
    static const std::vector<std::pair<std::string, OptSpec>> f = {
        {"end",
         {"--report", "FILE.json", "",
          "write a JSON summary (timings per stage, fps, peak memory, model files)"}},
        {"overwrite", {"--no-progress", "", "", "no progress output"}},
        {"overwrite",
         {"--progress-interval", "S", "0.25 on a terminal, 5 otherwise", "seconds between progress updates"}},
        {"pipeline_depth",
         {"--verbose", "", "", "show FFmpeg's own log messages (encoder settings, demuxer warnings)"}},
    };
    return f;
}

std::vector<OptSpec> upscale_options() {
    std::vector<OptSpec> rows = {
        {"-o", "OUT", "",
         "output: a video file (the container follows the extension: .mp4, .mkv, .mov, ...) or an image "
         "sequence DIR/%05d.png (.tif, .tiff, .exr) or DIR/ (= DIR/%06d.png), numbered from 0. Required"},
    };
    for (const auto* table : {&engine_option_specs(), &upscale_option_specs()}) {
        for (const OptionSpec& s : *table) {
            rows.push_back(cli_row(s));
        }
    }
    for (const OptionSpec& s : pipeline::transcode_option_specs()) {
        if ((s.faces & kCliFace) != 0) {
            rows.push_back(cli_row(s));
        }
        for (const auto& [after, row] : run_flags()) {
            if (after == s.name) {
                rows.push_back(row);
            }
        }
    }
    return rows;
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
        std::string head = "  " + o.name + (o.meta.empty() ? "" : " " + o.meta);
        os << std::left << std::setw(34) << head << " " << o.help;
        if (!o.def.empty()) {
            os << " [default: " << o.def << "]";
        }
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
            if (used != part.size() || x < 0) {
                throw std::invalid_argument("bad");
            }
            total = total * 60 + x;
            ++parts;
            if (colon == std::string::npos) {
                break;
            }
            pos = colon + 1;
        }
    } catch (const std::exception&) {
        throw UsageError("option " + name + " needs a time (seconds or [hh:]mm:ss), got '" + v + "'");
    }
    if (parts > 3) {
        throw UsageError("option " + name + " needs a time (seconds or [hh:]mm:ss), got '" + v + "'");
    }
    return total;
}

// ---- memory, progress, signals ----------------------------------------------------------------------

std::atomic<CancelToken*> g_cancel{nullptr};

extern "C" void on_sigint(int) {
    if (CancelToken* t = g_cancel.load()) {
        t->cancel();
    }
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
    if (!(s >= 0) || s > 1e7) {
        return "--:--";
    }
    const int64_t t = static_cast<int64_t>(s + 0.5);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", static_cast<long long>(t / 3600),
                  static_cast<long long>(t / 60 % 60), static_cast<long long>(t % 60));
    return buf;
}

/// The progress line: one updating line on a terminal, plain lines every `interval` seconds otherwise.
class Progress {
  public:
    Progress(bool enabled, double interval_s)
        : enabled_(enabled),
          tty_(::isatty(2) != 0),
          interval_(interval_s >= 0 ? interval_s
                    : tty_          ? 0.25
                                    : 5.0) {}
    void update(const pipeline::TranscodeProgress& p) {
        if (!enabled_) {
            return;
        }
        const auto now = Clock::now();
        const double since = std::chrono::duration<double>(now - last_).count();
        if (!p.final && since < interval_) {
            return;
        }
        if (p.final && !tty_ && p.frames_done == last_done_) {
            return;  // already printed
        }
        last_done_ = p.frames_done;
        last_ = now;
        const int64_t done = p.frames_done, total = p.frames_total;
        std::ostringstream s;
        s << "frames " << done;
        if (total > 0) {
            s << "/" << total << " (" << (100 * done / std::max<int64_t>(total, 1)) << "%)";
        }
        s << "  " << std::fixed << std::setprecision(2) << p.fps << " fps";
        if (p.eta_s >= 0) {
            s << "  ETA " << hms(p.eta_s);
        }
        s << "  elapsed " << hms(p.elapsed_s) << "  mem " << proc_status_kib("VmRSS") / 1024 << " MiB";
        if (tty_) {
            std::cerr << "\r" << s.str() << "\033[K" << (p.final ? "\n" : "") << std::flush;
        } else {
            std::cerr << s.str() << "\n";
        }
    }

  private:
    bool enabled_, tty_;
    double interval_;
    int64_t last_done_ = -1;
    Clock::time_point last_ = Clock::now() - std::chrono::hours(1);
};

}  // namespace

// ---- the job -------------------------------------------------------------------------------------------

int run_upscale(const UpscaleRun& run) {
    const pipeline::TranscodeJob& job = run.job;
    if (job.input.empty()) {
        throw UsageError("no input file");
    }
    if (job.output.empty()) {
        throw UsageError("no output file (-o OUT)");
    }
    pipeline::check_output(job);
    if (io::is_image_sequence_input(job.input) && (job.decoder.start_s > 0 || job.decoder.end_s >= 0)) {
        throw UsageError("--start/--end apply to video input, not to an image sequence");
    }

    CancelToken cancel;
    SignalScope signals(&cancel);
    Progress progress(run.progress, run.progress_interval_s);
    pipeline::TranscodeHooks hooks;
    hooks.cancel = &cancel;
    hooks.on_log = [](pipeline::LogLevel level, const std::string& text) {
        std::cerr << "flashvsr: " << (level == pipeline::LogLevel::Note ? "note: " : "warning: ") << text
                  << "\n";
    };
    hooks.on_start = [&run](const pipeline::TranscodeReport& r) {
        if (!run.progress) {
            return;
        }
        const bool video_out = r.encoder != "image sequence";
        std::cerr << "flashvsr: " << r.input << " " << r.input_width << "x" << r.input_height << " "
                  << r.input_pix_fmt << " -> " << run.job.output << " " << r.output_width << "x"
                  << r.output_height << " " << (video_out ? r.encoder + " " + r.pix_fmt : r.pix_fmt)
                  << "\n  engine: " << run.job.engine.to_string() << "\n  upscale: " << r.upscale_options
                  << "\n";
    };
    hooks.on_progress = [&progress](const pipeline::TranscodeProgress& p) { progress.update(p); };
    const pipeline::TranscodeReport r = pipeline::transcode(job, hooks);

    if (!run.report.empty()) {
        std::ofstream f(run.report);
        if (!f) {
            throw InputError("cannot write the report '" + run.report + "'");
        }
        f << pipeline::report_json(r) << "\n";
    }
    if (r.status == "cancelled") {
        std::cerr << "flashvsr: interrupted: " << r.frames_out << " frames done, kept in " << r.output
                  << "\n";
        return 130;
    }
    if (run.progress) {
        std::cerr << "flashvsr: wrote " << r.output << " (" << r.frames_out << " frames, " << std::fixed
                  << std::setprecision(2) << r.fps << " fps, peak memory " << proc_status_kib("VmHWM") / 1024
                  << " MiB)\n";
    }
    return 0;
}

int cmd_upscale(const std::vector<std::string>& argv) {
    std::set<std::string> valued, flags, repeated;
    for (const OptSpec& o : upscale_options()) {
        (o.meta.empty() ? flags : o.repeated ? repeated : valued).insert(o.name);
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
    if (!args.has("-o")) {
        throw UsageError("no output file (-o OUT)");
    }
    io::set_av_logging(args.has("--verbose"));
    UpscaleRun run;
    pipeline::TranscodeJob& job = run.job;
    job.input = args.positionals()[0];
    job.output = args.get("-o", "");
    job.engine.version = args.get("--version", "");
    job.engine.model_dir =
        args.has("--model-dir") ? args.get("--model-dir", "") : pipeline::find_model_dir(job.engine.version);
    // The engine's and the upscale's options, by type (--model-dir and --version above; --seed >= 0 and
    // --max-memory in sizes are the CLI's own rules).
    const auto value_of = [&args](const OptionSpec& s) -> OptionValue {
        const std::string flag = s.cli_flag();
        switch (s.type) {
            case OptionType::Int:
                return args.get_int(flag, 0);
            case OptionType::Float:
                return args.get_double(flag, 0);
            case OptionType::Bool:
                return !std::get<bool>(s.default_value);  // a flag: present = not the default
            default:
                return args.get(flag, "");
        }
    };
    for (const OptionSpec& s : engine_option_specs()) {
        if (s.name != "model_dir" && s.name != "version" && args.has(s.cli_flag())) {
            set_option(job.engine, s.name, value_of(s));
        }
    }
    for (const OptionSpec& s : upscale_option_specs()) {
        if (!args.has(s.cli_flag())) {
            continue;
        }
        if (s.name == "seed") {
            const int64_t seed = args.get_int("--seed", 0);
            if (seed < 0) {
                throw UsageError("--seed must be >= 0, got " + std::to_string(seed));
            }
        }
        if (s.name == "max_memory") {
            if (args.has("--tile-size")) {
                throw UsageError("--max-memory and --tile-size exclude each other");
            }
            job.upscale.max_memory = parse_size("--max-memory", args.get("--max-memory", ""));
            continue;
        }
        set_option(job.upscale, s.name, value_of(s));
    }
    // The job's options: where each applies, its value (times as [hh:]mm:ss, -e as KEY=VALUE), its floor.
    const bool seq_in = io::is_image_sequence_input(job.input);
    const bool seq_out = io::is_image_sequence_output(job.output);
    for (const OptionSpec& s : pipeline::transcode_option_specs()) {
        const std::string flag = s.cli_flag();
        if ((s.faces & kCliFace) == 0 || !args.has(flag)) {
            continue;
        }
        if (s.scope == OptionScope::SequenceInput && !seq_in) {
            throw UsageError(flag +
                             " applies to image-sequence input (a folder or a pattern like in/%05d.png)");
        }
        if (s.scope == OptionScope::SequenceOutput && !seq_out) {
            throw UsageError(flag + " applies to image-sequence output (.png, .tif, .tiff, .exr)");
        }
        if (s.scope == OptionScope::VideoOutput && seq_out) {
            throw UsageError(flag + " applies to video output, not to an image sequence");
        }
        OptionValue value;
        if (s.seconds) {
            value = parse_time(flag, args.get(flag, ""));
        } else if (s.type == OptionType::KeyValues) {
            KeyValues kvs;
            for (const std::string& kv : args.get_all(flag)) {
                const size_t eq = kv.find('=');
                if (eq == std::string::npos || eq == 0) {
                    throw UsageError(flag + " needs KEY=VALUE, got '" + kv + "'");
                }
                kvs.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
            }
            value = kvs;
        } else {
            value = value_of(s);
        }
        if (s.at_least && std::get<int64_t>(value) < *s.at_least) {
            throw UsageError(flag + " must be >= " + std::to_string(*s.at_least));
        }
        try {
            pipeline::set_option(job, s.name, value);
        } catch (const InputError& e) {
            throw UsageError(flag + ": " + e.what());
        }
    }
    if (args.has("--bit-depth") && job.bit_depth != 8 && job.bit_depth != 16 && job.bit_depth != 32) {
        throw UsageError("--bit-depth must be 8, 16 or 32");
    }
    run.report = args.get("--report", "");
    run.progress = !args.has("--no-progress");
    run.progress_interval_s = args.get_double("--progress-interval", -1.0);
    return run_upscale(run);
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
    if (!args.positionals().empty()) {
        throw UsageError("unexpected argument '" + args.positionals()[0] + "'");
    }
    io::set_av_logging(false);
    const fs::path cache = pipeline::cache_dir();
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

    UpscaleRun run;
    pipeline::TranscodeJob& job = run.job;
    job.input = clip.string();
    job.output = args.get("-o", "flashvsr_demo.mp4");
    job.engine.model_dir = weights.string();
    job.engine.device = "cpu";
    job.upscale.scale = 2;
    job.overwrite = args.has("--overwrite");
    std::cout << "flashvsr demo: input " << clip.string() << " (" << so.width << "x" << so.height << ", "
              << so.frames << " frames at 23.976 fps, 440 Hz tone)\n"
              << "flashvsr demo: using RANDOM tiny weights in " << weights.string() << "\n";
    const int rc = run_upscale(run);
    if (rc != 0) {
        return rc;
    }
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
