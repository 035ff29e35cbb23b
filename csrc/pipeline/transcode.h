// One upscale from file to file: decode -> engine Stream -> encode, in bounded memory. The library's one
// transcode pipeline, used by `flashvsr upscale`, by flashvsr.upscale_file() and by the ComfyUI video node.
//
// Three stages on three threads (pipeline_depth N, default 2): a decode thread fills a queue of at most N
// frame batches (with the other streams' packets met while reading them), the engine runs on the calling
// thread and puts finished frames with their source timestamps (kept in a FIFO whose length is the engine's
// latency) into a queue of at most N output batches, an encode thread drains it into the muxer (the only
// thread that touches it). Nothing grows with the video's length. pipeline_depth 0 runs the same stages in
// turn on one thread, with the same output.
//
// Files: the output is written under a temporary name (OUT.tmp-PID.EXT, DIR.tmp-PID/) and renamed when
// complete; an existing output is never replaced without `overwrite`; an error leaves no output. A cancel
// (CancelToken) stops within one chunk: the frames finished so far go to OUT.partial.EXT (DIR.partial/), a
// valid, playable file, unless `keep_partial` is false (then nothing is left).
#pragma once

#include <flashvsr/flashvsr.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "csrc/io/video_decoder.h"
#include "csrc/io/video_encoder.h"

namespace flashvsr::pipeline {

/// What to upscale and how: the options of one run. `input` is a video file, a folder of images or a
/// pattern like in/%05d.png; `output` a video file, a pattern like out/%05d.png or a folder "out/"
/// (io/image_sequence.h). New fields take the default that keeps the behaviour of a job without them.
struct TranscodeJob {
    std::string input, output;
    EngineOptions engine;        // the model to load (not used when TranscodeHooks::engine is given)
    UpscaleOptions upscale;      // scale, colour fix, attention, seed, tiling
    io::EncoderOptions encoder;  // video output: encoder, pixel format, crf, private options, stream copy
    io::DecoderOptions decoder;  // video input: start/end times, pixel budget
    bool overwrite = false;      // replace an existing output (a folder only when it holds only the pattern's
                                 // frames)
    bool keep_partial = true;    // cancelled: keep the frames done in OUT.partial.EXT / DIR.partial/
    int64_t batch = 4;           // frames decoded per step
    int64_t pipeline_depth = 2;  // batches queued before and after the engine (0: no threads)
    int64_t start_number = -1;   // image-sequence input pattern: first number (-1: the lowest present)
    int fps_num = 25, fps_den = 1;  // image-sequence input: its frame rate (for a video output)
    int bit_depth = 0;              // image-sequence output: 8/16 (PNG, TIFF), 16/32 (EXR); 0 = default
    // Scale-out (docs/SCALE_OUT.md): only the chunks [first_chunk, end_chunk) of the input, in its global
    // numbering; the decoder seeks to segment_frames().input_begin (DecoderOptions::start_frame: the frames
    // before it are not decoded, up to one GOP; decoded and dropped where the input cannot seek), the
    // warm-up's are run and their output discarded, decoding stops at input_end; the output holds the
    // segment's frames with their source timestamps (a video output: meant with copy_audio/copy_subtitles
    // off, joined later by io::concat_segments). Default: the whole video. Not for image-sequence outputs
    // (numbered from 0).
    SegmentOptions segment;

    /// Throws InputError naming the field and value (the engine and upscale options included).
    void validate() const;
};

/// A snapshot of a running job.
struct TranscodeProgress {
    int64_t frames_done = 0;    // frames written to the output
    int64_t frames_total = -1;  // the container's frame count (or duration x rate); -1 unknown
    double elapsed_s = 0;       // since the engine was ready
    double fps = 0;             // frames_done / elapsed_s
    double eta_s = -1;          // (frames_total - frames_done) / fps; -1 unknown
    bool final = false;         // the last snapshot: every frame written (or the job cancelled)
};

/// What a job did (the CLI's --report, flashvsr.upscale_file's result). Filled as far as known when
/// TranscodeHooks::on_start sees it, complete when transcode() returns.
struct TranscodeReport {
    std::string status = "running";  // "running" | "completed" | "cancelled"
    std::string input, output;       // output: the file or folder written ("" when a cancelled run kept
                                     // nothing; OUT.partial.EXT / DIR.partial/ when it kept the frames done)
    int64_t frames_in = 0, frames_out = 0;
    int64_t frames_estimate = -1;  // the container's frame count, -1 unknown
    int input_width = 0, input_height = 0, output_width = 0, output_height = 0;
    std::string input_pix_fmt;                                    // the decoder's ("rgb48le" etc. for images)
    std::string encoder;                                          // the encoder name, or "image sequence"
    std::string pix_fmt;                                          // the output's pixel format
    double load_s = 0, decode_s = 0, engine_s = 0, encode_s = 0;  // stage times (per thread; they overlap)
    double run_s = 0, total_s = 0;  // wall times: decode -> encode, and the whole job
    double fps = 0;                 // frames_out / run_s
    int64_t pipeline_depth = 0;
    int64_t peak_rss_bytes = 0;
    int64_t stream_state_bytes = 0;
    EngineInfo model;
    std::string engine_options;   // EngineOptions::to_string() of the loaded engine ("" when one was given)
    std::string upscale_options;  // UpscaleOptions::to_string()
    std::vector<std::string> warnings;  // the encoder's (streams it could not copy, ...)
};

/// The --report JSON of a report (keys: status, input, output, frames_in, frames_out, input_size,
/// output_size, input_pix_fmt, encoder, pix_fmt, timings_s{load, decode, engine, encode, run, total}, fps,
/// pipeline_depth, peak_rss_bytes, stream_state_bytes, model{...}, engine_options, upscale_options,
/// warnings).
std::string report_json(const TranscodeReport& report, int indent = 2);

enum class LogLevel { Note, Warning };

/// How the caller follows and steers a job. Every member is optional.
struct TranscodeHooks {
    std::shared_ptr<Engine> engine;  // an engine already loaded (job.engine is then not used); null: load it
    const CancelToken* cancel = nullptr;  // checked between batches and inside the engine (once per chunk)
    // After the engine is ready, before the first frame: the sizes, formats and model (on the calling
    // thread).
    std::function<void(const TranscodeReport&)> on_start;
    // After every batch written (on the encode thread when pipeline_depth > 0) and once more with final =
    // true on the calling thread. Cheap callbacks only: the encode stage waits for it.
    std::function<void(const TranscodeProgress&)> on_progress;
    // Notes (e.g. alpha dropped, streams an image sequence cannot hold) and warnings (streams skipped,
    // mixed model folders), on the calling thread, when they happen.
    std::function<void(LogLevel, const std::string&)> on_log;
};

/// Runs the job on the calling thread (plus the decode and encode threads). Returns the report: status
/// "completed", or "cancelled" when hooks.cancel was set (the partial output in report.output).
/// Throws flashvsr::Error (InputError, ModelError, OutOfMemory) with no output left behind.
TranscodeReport transcode(const TranscodeJob& job, const TranscodeHooks& hooks = {});

/// Throws InputError when `job.output` may not be written: it is the input file, or it exists and
/// job.overwrite is false (for an image-sequence output the writer applies its own folder rule).
void check_output(const TranscodeJob& job);

}  // namespace flashvsr::pipeline
