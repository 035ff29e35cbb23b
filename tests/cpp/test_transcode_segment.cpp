// Segments through the transcode pipeline (scale-out, docs/SCALE_OUT.md): segment files encoded separately
// (warm-up decoded and discarded, no audio, source timestamps) and joined by io::concat_segments equal the
// single-process output frame for frame (lossless encoder), with the same timestamps and the audio copied
// once.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <string>
#include <vector>

#include "cli_test_util.h"
#include "csrc/io/av_ptr.h"
#include "csrc/io/segment_concat.h"
#include "csrc/io/video_decoder.h"
#include "csrc/pipeline/transcode.h"

namespace fs = std::filesystem;
using namespace flashvsr::testing_media;
using flashvsr::pipeline::TranscodeJob;

namespace {

class TranscodeSegment : public CliTest {
  protected:
    void SetUp() override {
        CliTest::SetUp();
        flashvsr::io::set_av_logging(false);
    }
    TranscodeJob job(const std::string& in, const std::string& out) const {
        TranscodeJob j;
        j.input = in;
        j.output = out;
        j.engine.model_dir = weights();
        j.engine.device = "cpu";
        j.upscale.scale = 2;
        j.encoder.private_options = {{"x264-params", "qp=0:no-mbtree=1"}};  // lossless, with B-frames
        return j;
    }
};

at::Tensor all_frames(const std::string& path) {
    flashvsr::io::VideoDecoder dec(path);
    std::vector<at::Tensor> parts;
    for (flashvsr::io::FrameBatch b = dec.read(16); b.rgb.size(0) > 0; b = dec.read(16)) {
        parts.push_back(b.rgb);
    }
    return at::cat(parts);
}

}  // namespace

TEST_F(TranscodeSegment, SegmentsJoinedEqualOneRun) {
    // 75 frames at 24000/1001 fps with an AAC tone: chunks 0..7; segments [0,4) and [4,end) with 6 warm-up
    // chunks (the second segment's warm-up reaches chunk 0, so both are exact).
    const std::string in = path("in.mkv");
    ffmpeg(
        "-f lavfi -i testsrc2=size=32x24:rate=24000/1001 -f lavfi -i sine=f=440 -frames:v 75 -t 3.2 "
        "-c:v libx264 -pix_fmt yuv420p -c:a aac " +
        in);
    auto engine_opts = job(in, "").engine;
    flashvsr::pipeline::TranscodeHooks hooks;
    hooks.engine = flashvsr::Engine::load(engine_opts);
    const auto whole = flashvsr::pipeline::transcode(job(in, path("whole.mkv")), hooks);
    ASSERT_EQ(whole.frames_out, 75);

    std::vector<std::string> segs;
    int64_t out_frames = 0;
    for (const flashvsr::SegmentOptions seg :
         {flashvsr::SegmentOptions{0, 4, 6}, flashvsr::SegmentOptions{4, -1, 6}}) {
        TranscodeJob j = job(in, path("seg" + std::to_string(seg.first_chunk) + ".mkv"));
        j.segment = seg;
        j.encoder.copy_audio = j.encoder.copy_subtitles = false;
        const auto r = flashvsr::pipeline::transcode(j, hooks);
        EXPECT_EQ(r.frames_out, seg.first_chunk == 0 ? 45 : 30);  // frames 0..44 and 45..74
        out_frames += r.frames_out;
        segs.push_back(r.output);
        EXPECT_EQ(read_packets(r.output).size(), 1u);  // video only
    }
    EXPECT_EQ(out_frames, 75);
    const auto joined = flashvsr::io::concat_segments(segs, in, path("joined.mkv"));
    EXPECT_EQ(joined.video_packets, 75);
    EXPECT_TRUE(at::equal(all_frames(path("joined.mkv")), all_frames(path("whole.mkv"))));
    const auto tw = frame_times(path("whole.mkv")), tj = frame_times(path("joined.mkv"));
    ASSERT_EQ(tj.size(), tw.size());
    for (size_t i = 0; i < tw.size(); ++i) {
        EXPECT_NEAR(tj[i], tw[i], 5e-4) << "frame " << i;
    }
    EXPECT_EQ(first_of(read_packets(path("joined.mkv")), AVMEDIA_TYPE_AUDIO)->hashes,
              first_of(read_packets(in), AVMEDIA_TYPE_AUDIO)->hashes);

    // A cold-started segment (warm-up 2 chunks from chunk 2) is a different, close stream; an image-sequence
    // output of a segment is refused.
    TranscodeJob cold = job(in, path("cold.mkv"));
    cold.segment = flashvsr::SegmentOptions{4, -1, 2};
    cold.encoder.copy_audio = false;
    EXPECT_EQ(flashvsr::pipeline::transcode(cold, hooks).frames_out, 30);
    TranscodeJob seq = job(in, path("frames/"));
    seq.segment = flashvsr::SegmentOptions{4, -1, 2};
    try {
        flashvsr::pipeline::transcode(seq, hooks);
        ADD_FAILURE() << "no error";
    } catch (const flashvsr::InputError& e) {
        EXPECT_NE(std::string(e.what()).find("not to an image sequence"), std::string::npos) << e.what();
    }
}

TEST_F(TranscodeSegment, SeekingSegmentEqualsDecodingFromTheStart) {
    // A segment whose warm-up starts at frame 29 seeks there (io::DecoderOptions::start_frame). The same
    // H.264 stream as a raw .h264 file (no timestamps: no seek, decoded from the start and dropped, with a
    // note) gives the same segment frames.
    const std::string in = path("in.mkv");
    ffmpeg("-f lavfi -i testsrc2=size=32x24:rate=24 -frames:v 75 -c:v libx264 -g 12 -pix_fmt yuv420p " + in);
    const std::string raw = path("in.h264");
    ffmpeg("-i " + in + " -c:v copy " + raw);
    flashvsr::pipeline::TranscodeHooks hooks;
    hooks.engine = flashvsr::Engine::load(job(in, "").engine);
    std::vector<std::string> notes;
    hooks.on_log = [&](flashvsr::pipeline::LogLevel, const std::string& text) { notes.push_back(text); };
    std::vector<at::Tensor> frames;
    for (const std::string& src : {in, raw}) {
        TranscodeJob j = job(src, path("seg" + std::to_string(frames.size()) + ".mkv"));
        j.segment = flashvsr::SegmentOptions{4, -1, 2};
        j.encoder.copy_audio = j.encoder.copy_subtitles = false;
        const auto r = flashvsr::pipeline::transcode(j, hooks);
        EXPECT_EQ(r.frames_out, 30);
        frames.push_back(all_frames(r.output));
        EXPECT_EQ(notes.size(), frames.size() == 1 ? 0u : 1u) << (notes.empty() ? "" : notes.back());
    }
    ASSERT_EQ(frames[0].size(0), 30);
    EXPECT_TRUE(at::equal(frames[0], frames[1]));
    EXPECT_NE(notes.back().find("no frame-accurate seek to frame 29 (video packets without timestamps)"),
              std::string::npos)
        << notes.back();
}
