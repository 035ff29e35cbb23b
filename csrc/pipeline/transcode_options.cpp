// The transcode job's option table (pipeline/transcode_options.h): one row per option, its field in the
// job, its CLI flag and help line.
#include "csrc/pipeline/transcode_options.h"

#include "csrc/core/option_rows.h"
#include "csrc/io/image_sequence.h"

namespace flashvsr::pipeline {
namespace {

using namespace options_detail;
using J = TranscodeJob;
using T = OptionType;

/// `s` with the CLI's own spelling, --help default, faces, scope.
OptionSpec cli(OptionSpec s, const char* flag, const char* cli_default = "") {
    s.flag = flag;
    s.cli_default = cli_default;
    return s;
}
OptionSpec scoped(OptionSpec s, OptionScope scope) {
    s.scope = scope;
    return s;
}
OptionSpec at_least(OptionSpec s, int64_t floor) {
    s.at_least = floor;
    return s;
}
OptionSpec none_is(OptionSpec s, OptionValue v) {
    s.none_is = std::move(v);
    return s;
}
OptionSpec python_only(OptionSpec s) {
    s.faces = kPythonFace;
    return s;
}

/// fps: "25" or "24000/1001", parsed by io::parse_frame_rate.
Row<J> fps_row(OptionSpec spec) {
    spec.number_text = true;
    return {spec,
            [](const J& j) -> OptionValue {
                return j.fps_den == 1 ? std::to_string(j.fps_num)
                                      : std::to_string(j.fps_num) + "/" + std::to_string(j.fps_den);
            },
            [spec](J& j, const OptionValue& v) {
                std::string text;
                from_value(text, spec, v);
                io::parse_frame_rate(text, &j.fps_num, &j.fps_den);
            }};
}

OptionSpec seconds_option(const char* name, const char* help) {
    OptionSpec s = plain(name, T::Float, "T", help);
    s.seconds = true;
    return s;
}

const std::vector<Row<J>>& rows() {
    static const std::vector<Row<J>> r = {
        // video output (the encoder)
        row(&J::encoder, &io::EncoderOptions::codec,
            scoped(cli(plain("codec", T::Text, "ENCODER",
                             "any libavcodec video encoder (libx264, libx265, ffv1, prores_ks, ...)"),
                       "-c:v"),
                   OptionScope::VideoOutput)),
        row(&J::encoder, &io::EncoderOptions::private_options,
            none_is(scoped(cli(plain("encoder_options", T::KeyValues, "KEY=VALUE",
                                     "encoder private option, repeatable (e.g. -e preset=slow -e tune=film)"),
                               "-e"),
                           OptionScope::VideoOutput),
                    KeyValues{})),
        row(&J::encoder, &io::EncoderOptions::pix_fmt,
            none_is(scoped(cli(plain("pix_fmt", T::Text, "FMT",
                                     "output pixel format (10-bit input: yuv420p10le where the encoder has "
                                     "it; an odd width or height: yuv444p, yuv444p10le)"),
                               "", "yuv420p"),
                           OptionScope::VideoOutput),
                    std::string())),
        row(&J::encoder, &io::EncoderOptions::crf,
            scoped(number("crf", T::Int, 0, 51, 1,
                          "constant rate factor (encoders with a crf option; -1: encoder's)"),
                   OptionScope::VideoOutput)),
        row(&J::encoder, &io::EncoderOptions::copy_audio,
            cli(plain("copy_audio", T::Bool, "", "copy the audio streams"), "--no-audio")),
        row(&J::encoder, &io::EncoderOptions::copy_subtitles,
            cli(plain("copy_subtitles", T::Bool, "", "copy the subtitle streams"), "--no-subtitles")),
        // video input (the decoder)
        row(&J::decoder, &io::DecoderOptions::start_s,
            seconds_option("start", "start time (seconds or [hh:]mm:ss[.ms]); output timestamps start at 0")),
        row(&J::decoder, &io::DecoderOptions::end_s,
            none_is(cli(seconds_option("end", "end time (exclusive)"), "", "end"), -1.0)),
        // image sequences
        fps_row(scoped(plain("fps", T::Text, "RATE",
                             "frame rate of an image-sequence input (25, 29.97, 24000/1001, ...): the "
                             "output video's rate"),
                       OptionScope::SequenceInput)),
        row(&J::start_number,
            none_is(at_least(scoped(cli(plain("start_number", T::Int, "N",
                                              "first frame number of an input pattern like in/%05d.png"),
                                        "", "the lowest present"),
                                    OptionScope::SequenceInput),
                             0),
                    int64_t{-1})),
        row(&J::bit_depth,
            scoped(cli(plain("bit_depth", T::Int, "8|16|32",
                             "image-sequence output: PNG/TIFF 8 or 16 bits, EXR 16 (half) or 32 (float)"),
                       "", "16 for PNG/TIFF from a >8-bit input, else 8; EXR 16"),
                   OptionScope::SequenceOutput)),
        // the job
        row(&J::overwrite, plain("overwrite", T::Bool, "",
                                 "replace an existing output file (an output folder only when it holds "
                                 "nothing but frames of the pattern)")),
        row(&J::batch,
            at_least(plain("batch", T::Int, "N", "frames decoded per step (memory: a few frames)"), 1)),
        row(&J::decoder, &io::DecoderOptions::max_pixels,
            at_least(plain("max_pixels", T::Int, "N",
                           "largest input frame (width x height); larger files are refused before decoding"),
                     1)),
        row(&J::pipeline_depth,
            at_least(plain("pipeline_depth", T::Int, "N",
                           "decode and encode run in their own threads beside the engine, with at most N "
                           "batches queued on each side (0: one thread, the stages in turn; same output)"),
                     0)),
        row(&J::keep_partial,
            python_only(plain("keep_partial", T::Bool, "",
                              "a cancelled job keeps the frames done in OUT.partial.EXT (DIR.partial/)"))),
        // one segment of the input (scale-out, docs/SCALE_OUT.md; video output only)
        row(&J::segment, &SegmentOptions::first_chunk,
            python_only(plain("first_chunk", T::Int, "N", "first chunk of the segment written"))),
        row(&J::segment, &SegmentOptions::end_chunk,
            python_only(
                plain("end_chunk", T::Int, "N", "one past the segment's last chunk (-1: to the end)"))),
        row(&J::segment, &SegmentOptions::warmup_chunks,
            python_only(
                plain("warmup_chunks", T::Int, "N",
                      "chunks run before the segment, their output discarded (-1: the replay depth)"))),
    };
    return r;
}

}  // namespace

const std::vector<OptionSpec>& transcode_option_specs() {
    static const std::vector<OptionSpec> s = specs_of(rows(), "transcode");
    return s;
}

const OptionSpec* find_transcode_option_spec(const std::string& name) {
    for (const OptionSpec& s : transcode_option_specs()) {
        if (s.name == name) {
            return &s;
        }
    }
    return nullptr;
}

OptionValue get_option(const TranscodeJob& job, const std::string& name) {
    return row_named(rows(), name).get(job);
}

void set_option(TranscodeJob& job, const std::string& name, const OptionValue& value) {
    row_named(rows(), name).set(job, value);
}

}  // namespace flashvsr::pipeline
