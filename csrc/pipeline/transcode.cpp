// The transcode pipeline (transcode.h): decode -> engine Stream -> encode on three threads (or in turn on
// one), templated over the reader (VideoDecoder or ImageSequenceReader) and the writer (VideoEncoder or
// ImageSequenceWriter).
#include "csrc/pipeline/transcode.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <type_traits>
#include <utility>

#include "csrc/core/stage_threads.h"
#include "csrc/io/av_ptr.h"
#include "csrc/io/image_sequence.h"
#include "csrc/io/probe.h"

namespace flashvsr::pipeline {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

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

/// The job's hooks with the defaults filled in, and the cancel token to use.
struct Run {
    const TranscodeJob& job;
    const TranscodeHooks& hooks;
    const CancelToken& cancel;
    Clock::time_point t_start;

    void log(LogLevel level, const std::string& text) const {
        if (hooks.on_log) {
            hooks.on_log(level, text);
        }
    }
};

/// Progress snapshots measured from the moment the engine is ready.
class ProgressClock {
  public:
    explicit ProgressClock(int64_t total) : total_(total) {}
    TranscodeProgress at(int64_t done, bool final) const {
        TranscodeProgress p;
        p.frames_done = done;
        p.frames_total = total_;
        p.elapsed_s = seconds_since(t0_);
        p.fps = p.elapsed_s > 0 ? done / p.elapsed_s : 0;
        p.eta_s = total_ > 0 && p.fps > 0 ? (total_ - done) / p.fps : -1;
        p.final = final;
        return p;
    }

  private:
    int64_t total_;
    Clock::time_point t0_ = Clock::now();
};

/// The frames of a decoded batch that a segment stream reads: global indices [input_begin, input_end) (the
/// batch starts at global frame `first`); pts/duration follow.
io::FrameBatch segment_part(io::FrameBatch b, int64_t first, const SegmentFrames& seg) {
    const int64_t n = static_cast<int64_t>(b.pts.size());
    const int64_t lo = std::clamp<int64_t>(seg.input_begin - first, 0, n);
    const int64_t hi = seg.input_end < 0 ? n : std::clamp<int64_t>(seg.input_end - first, lo, n);
    if (lo == 0 && hi == n) {
        return b;
    }
    io::FrameBatch out;
    out.rgb = b.rgb.narrow(0, lo, hi - lo);
    out.pts.assign(b.pts.begin() + lo, b.pts.begin() + hi);
    out.duration.assign(b.duration.begin() + lo, b.duration.begin() + hi);
    return out;
}

/// Load the engine (unless given), then decode -> engine -> write with the reader and writer of the job.
template <class Source, class Sink>
TranscodeReport run_pipeline(const Run& run, Source& dec, Sink& enc) {
    constexpr bool kVideoIn = std::is_same_v<Source, io::VideoDecoder>;
    constexpr bool kVideoOut = std::is_same_v<Sink, io::VideoEncoder>;
    const TranscodeJob& job = run.job;
    const io::VideoStreamInfo& vi = dec.info();
    const int64_t s = job.upscale.scale;
    std::error_code fec;

    TranscodeReport r;
    r.input = job.input;
    r.output = job.output;
    r.frames_estimate = vi.frames_estimate;
    r.input_width = vi.width;
    r.input_height = vi.height;
    r.output_width = static_cast<int>(vi.width * s);
    r.output_height = static_cast<int>(vi.height * s);
    r.input_pix_fmt = vi.pix_fmt;
    r.encoder = kVideoOut ? job.encoder.codec : std::string("image sequence");
    r.pix_fmt = enc.pix_fmt();
    r.pipeline_depth = job.pipeline_depth;
    r.upscale_options = job.upscale.to_string();

    std::shared_ptr<Engine> engine = run.hooks.engine;
    if (!engine) {
        const auto t_load0 = Clock::now();
        engine = Engine::load(job.engine);
        r.load_s = seconds_since(t_load0);
        r.engine_options = job.engine.to_string();
    }
    r.model = engine->info();
    for (const std::string& w : enc.warnings()) {
        run.log(LogLevel::Warning, w);
    }
    for (const std::string& w : r.model.warnings) {
        run.log(LogLevel::Warning, w);
    }
    if (run.hooks.on_start) {
        run.hooks.on_start(r);
    }

    c10::InferenceMode inference;  // every thread below runs under one (no autograd bookkeeping)
    Stream stream = engine->stream(job.upscale, job.segment);
    stream.set_cancel(&run.cancel);
    const SegmentFrames seg = segment_frames(job.segment, job.upscale);  // the whole video by default
    const bool whole = seg.input_begin == 0 && seg.input_end < 0 && seg.output_begin == 0;
    int64_t total = vi.frames_estimate;
    if (!whole && total > 0) {
        total = std::max<int64_t>(
            0, (seg.output_end < 0 ? total : std::min(total, seg.output_end)) - seg.output_begin);
    }
    const ProgressClock progress(total);
    int64_t decoded = 0;  // global index of the next frame read (a segment: dropped ones included)
    if constexpr (kVideoIn) {
        decoded = dec.start_frame();  // a segment's decoder seeks to its input (transcode())
    }
    std::deque<int64_t> pts_q, dur_q;  // timestamps of frames inside the engine (its latency, bounded)
    double decode_s = 0, engine_s = 0, encode_s = 0;  // each written by its own stage's thread only
    int64_t frames_in = 0;  // frames whose upscaled copy is expected (a segment: its own frames)
    int64_t pushed_in = seg.input_begin;  // global index of the next frame pushed to the engine

    // The three stages. The decoder's packets of the other streams (audio, subtitles) travel with the
    // frames decoded in the same read, so the muxer is only touched by the encode stage and sees the same
    // packet / frame order as when the stages run in turn.
    std::vector<io::AVPacketPtr> read_packets;  // decode stage only
    if constexpr (kVideoIn && kVideoOut) {
        dec.set_packet_sink([&read_packets](AVPacket* p) { read_packets.push_back(io::clone_packet(p)); });
    }
    const auto decode_step = [&] {
        const auto t0 = Clock::now();
        InBatch x;
        for (;;) {  // a segment: frames before its input are decoded and dropped; it reads nothing past its
                    // end
            if (!whole && seg.input_end >= 0 && decoded >= seg.input_end) {
                x.b = io::FrameBatch{at::empty({0, vi.height, vi.width, 3}), {}, {}};
                break;
            }
            x.b = dec.read(job.batch);
            const int64_t n = x.b.rgb.size(0);
            if (!whole) {
                x.b = segment_part(std::move(x.b), decoded, seg);
            }
            decoded += n;
            if (n == 0 || x.b.rgb.size(0) > 0) {
                break;
            }
        }
        x.packets = std::move(read_packets);
        read_packets.clear();
        decode_s += seconds_since(t0);
        return x;
    };
    const auto encode_step = [&](OutBatch& o) {
        const auto t0 = Clock::now();
        if constexpr (kVideoOut) {
            for (const io::AVPacketPtr& p : o.packets) {
                enc.write_packet(p.get());
            }
        }
        if (o.rgb.defined() && o.rgb.size(0) > 0) {
            enc.write(o.rgb, o.pts, o.dur);
        }
        encode_s += seconds_since(t0);
        if (run.hooks.on_progress) {
            run.hooks.on_progress(progress.at(enc.frames_written(), false));
        }
    };
    const auto engine_step = [&](InBatch& x, bool last) {
        const auto t0 = Clock::now();
        if (last) {
            stream.finish();
        } else {
            stream.push(x.b.rgb);
        }
        OutBatch o{stream.pull(), {}, {}, std::move(x.packets)};
        engine_s += seconds_since(t0);
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
        pipe.start(
            decode_step, [](const InBatch& x) { return x.b.rgb.size(0) == 0; }, encode_step, worker_scope);
    }
    const auto t_run0 = Clock::now();
    bool cancelled = false;
    try {
        while (true) {
            if (run.cancel.cancelled()) {
                throw Cancelled("interrupted");
            }
            InBatch x = pipe.threaded() ? pipe.pop_input() : decode_step();
            const bool last = x.b.rgb.size(0) == 0;
            for (size_t i = 0; i < x.b.pts.size(); ++i) {
                // A segment emits only its own frames: the warm-up's and the look-ahead's have no output.
                const int64_t g = pushed_in + static_cast<int64_t>(i);
                if (whole || (g >= seg.output_begin && (seg.output_end < 0 || g < seg.output_end))) {
                    pts_q.push_back(x.b.pts[i]);
                    dur_q.push_back(x.b.duration[i]);
                    ++frames_in;
                }
            }
            pushed_in += x.b.rgb.size(0);
            if (last && run.cancel.cancelled()) {
                throw Cancelled("interrupted");
            }
            OutBatch o = engine_step(x, last);
            if (pipe.threaded()) {
                pipe.push_output(std::move(o));
            } else {
                encode_step(o);
            }
            if (last) {
                break;
            }
        }
    } catch (const Cancelled&) {
        cancelled = true;
    }
    pipe.finish();  // the encode stage writes what is queued; its error (if any) is rethrown here
    if (run.hooks.on_progress) {
        run.hooks.on_progress(progress.at(enc.frames_written(), true));
    }
    if constexpr (!kVideoIn) {
        for (const std::string& n : dec.take_notes()) {
            run.log(LogLevel::Note, n);
        }
    }

    std::string written;
    if (!cancelled || job.keep_partial) {
        const auto t0 = Clock::now();
        written = cancelled ? enc.finish_partial() : enc.finish();
        encode_s += seconds_since(t0);
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
    r.status = cancelled ? "cancelled" : "completed";
    r.output = written;
    r.frames_in = frames_in;
    r.frames_out = enc.frames_written();
    r.pix_fmt = enc.pix_fmt();
    r.decode_s = decode_s;
    r.engine_s = engine_s;
    r.encode_s = encode_s;
    r.total_s = seconds_since(run.t_start);
    r.run_s = seconds_since(t_run0);
    r.fps = r.run_s > 0 ? r.frames_out / r.run_s : 0;
    r.peak_rss_bytes = memory_report().peak_rss_bytes;
    r.stream_state_bytes = stream.state_bytes();
    r.warnings = enc.warnings();
    return r;
}

/// The writer for `dec`'s frames: an image sequence or a video file.
template <class Source>
TranscodeReport run_with_sink(const Run& run, Source& dec, const AVFormatContext* copy_from,
                              int64_t offset_pts) {
    const TranscodeJob& job = run.job;
    const io::VideoStreamInfo& vi = dec.info();
    const int64_t s = job.upscale.scale;
    const int ow = static_cast<int>(vi.width * s), oh = static_cast<int>(vi.height * s);
    if (!io::is_image_sequence_output(job.output)) {
        // The encoder first: its errors (encoder, pixel format, options, unwritable output) come
        // before the load.
        io::VideoEncoder enc(job.output, ow, oh, vi, copy_from, offset_pts, job.encoder);
        return run_pipeline(run, dec, enc);
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
    io::ImageSequenceWriter enc(job.output, ow, oh, vi.bits, job.bit_depth, job.overwrite);
    if constexpr (std::is_same_v<Source, io::VideoDecoder>) {
        for (const io::StreamInfo& st : io::probe(job.input).streams) {
            if (st.type == "audio" || st.type == "subtitle") {
                run.log(LogLevel::Note, "an image sequence holds no audio or subtitles: stream " +
                                            std::to_string(st.index) + " (" + st.type + ") is not written");
            }
        }
    }
    return run_pipeline(run, dec, enc);
}

/// TranscodeJob::validate(), with or without the engine options (not used when an engine is given).
void validate_job(const TranscodeJob& job, bool engine_options) {
    const io::DecoderOptions& decoder = job.decoder;
    if (job.input.empty()) {
        throw InputError("no input file");
    }
    if (job.output.empty()) {
        throw InputError("no output file");
    }
    if (io::is_image_sequence_input(job.input) && (decoder.start_s > 0 || decoder.end_s >= 0)) {
        throw InputError("start/end times apply to video input, not to an image sequence");
    }
    if (job.batch < 1) {
        throw InputError("batch must be >= 1, got " + std::to_string(job.batch));
    }
    if (job.pipeline_depth < 0) {
        throw InputError("pipeline_depth must be >= 0, got " + std::to_string(job.pipeline_depth));
    }
    if (decoder.start_frame != 0) {
        throw InputError("decoder.start_frame is set by the segment (first_chunk), got " +
                         std::to_string(decoder.start_frame));
    }
    if (decoder.max_pixels < 1) {
        throw InputError("max_pixels must be >= 1, got " + std::to_string(decoder.max_pixels));
    }
    if (job.fps_num <= 0 || job.fps_den <= 0) {
        throw InputError("fps must be positive, got " + std::to_string(job.fps_num) + "/" +
                         std::to_string(job.fps_den));
    }
    if (job.bit_depth != 0 && job.bit_depth != 8 && job.bit_depth != 16 && job.bit_depth != 32) {
        throw InputError("bit_depth must be 8, 16 or 32, got " + std::to_string(job.bit_depth));
    }
    if (engine_options) {
        job.engine.validate();
    }
    job.upscale.validate();
    job.segment.validate();
    const SegmentFrames seg = segment_frames(job.segment, job.upscale);
    if ((seg.input_begin > 0 || seg.input_end >= 0 || seg.output_begin > 0) &&
        io::is_image_sequence_output(job.output)) {
        throw InputError(
            "a segment (first_chunk/end_chunk) is written to a video file, not to an image sequence "
            "(flashvsr.distributed writes a sequence's frames itself)");
    }
}

}  // namespace

void TranscodeJob::validate() const { validate_job(*this, true); }

void check_output(const TranscodeJob& job) {
    if (io::is_image_sequence_output(job.output)) {
        return;  // ImageSequenceWriter: only an empty folder, or with overwrite a folder of the pattern's
                 // frames
    }
    std::error_code fec;
    if (fs::exists(job.output, fec) && fs::equivalent(job.input, job.output, fec)) {
        throw InputError("the output '" + job.output + "' is the input file");
    }
    if (fs::exists(job.output, fec) && !job.overwrite) {
        throw InputError("the output '" + job.output + "' exists (use --overwrite to replace it)");
    }
}

TranscodeReport transcode(const TranscodeJob& job, const TranscodeHooks& hooks) {
    const auto t_start = Clock::now();
    check_output(job);
    validate_job(job, !hooks.engine);  // a given engine's options were checked when it was loaded
    CancelToken never;
    const Run run{job, hooks, hooks.cancel != nullptr ? *hooks.cancel : never, t_start};
    if (io::is_image_sequence_input(job.input)) {
        io::ImageSequenceReader dec(job.input, job.start_number, job.fps_num, job.fps_den,
                                    job.decoder.max_pixels);
        for (const std::string& n : dec.take_notes()) {
            run.log(LogLevel::Note, n);
        }
        return run_with_sink(run, dec, nullptr, 0);
    }
    // A segment's decoder starts at its input (a seek; frames before it are never needed).
    io::DecoderOptions decoder = job.decoder;
    decoder.start_frame = segment_frames(job.segment, job.upscale).input_begin;
    io::VideoDecoder dec(job.input, decoder);
    for (const std::string& n : dec.take_notes()) {
        run.log(LogLevel::Note, n);
    }
    return run_with_sink(run, dec, dec.format(), dec.offset_pts());
}

std::string report_json(const TranscodeReport& r, int indent) {
    nlohmann::json j;
    j["status"] = r.status;
    j["input"] = r.input;
    j["output"] = r.output;
    j["frames_in"] = r.frames_in;
    j["frames_out"] = r.frames_out;
    j["input_size"] = {r.input_width, r.input_height};
    j["output_size"] = {r.output_width, r.output_height};
    j["input_pix_fmt"] = r.input_pix_fmt;
    j["encoder"] = r.encoder;
    j["pix_fmt"] = r.pix_fmt;
    j["timings_s"] = {{"load", r.load_s},     {"decode", r.decode_s}, {"engine", r.engine_s},
                      {"encode", r.encode_s}, {"run", r.run_s},       {"total", r.total_s}};
    j["fps"] = r.fps;
    j["pipeline_depth"] = r.pipeline_depth;
    j["peak_rss_bytes"] = r.peak_rss_bytes;
    j["stream_state_bytes"] = r.stream_state_bytes;
    const EngineInfo& ei = r.model;
    j["model"] = {{"dir", ei.model_dir},
                  {"version", ei.version},
                  {"mode", ei.mode},
                  {"device", ei.device},
                  {"dtype", ei.dtype},
                  {"files", ei.files},
                  {"weight_bytes", ei.weight_bytes}};
    j["engine_options"] = r.engine_options;
    j["upscale_options"] = r.upscale_options;
    j["warnings"] = r.warnings;
    return j.dump(indent);
}

}  // namespace flashvsr::pipeline
