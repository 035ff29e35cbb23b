// libav (probe, synthetic clip writer with swscale + swresample, decoder) and OpenCV image I/O.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>

#include "csrc/io/image_io.h"
#include "csrc/io/probe.h"
#include "csrc/io/synth_clip.h"
#include "csrc/io/video_read.h"
#include "media_test_util.h"

namespace fs = std::filesystem;
using namespace flashvsr::io;

using flashvsr::testing_media::input_error_of;

namespace {

class MediaIo : public flashvsr::testing_media::ScratchDirTest {};

}  // namespace

TEST_F(MediaIo, SyntheticClipProbesAsWritten) {
    SynthClipOptions o;
    o.width = 160;
    o.height = 96;
    o.frames = 21;
    o.fps_num = 24000;
    o.fps_den = 1001;
    write_synthetic_clip(path("clip.mp4"), o);
    const MediaInfo info = probe(path("clip.mp4"));
    ASSERT_EQ(info.streams.size(), 2u);
    ASSERT_GE(info.best_video, 0);
    const StreamInfo& v = info.streams[static_cast<size_t>(info.best_video)];
    EXPECT_EQ(v.type, "video");
    EXPECT_EQ(v.codec, "h264");
    EXPECT_EQ(v.width, 160);
    EXPECT_EQ(v.height, 96);
    EXPECT_EQ(v.pix_fmt, "yuv420p");
    EXPECT_EQ(v.fps_num, 24000);
    EXPECT_EQ(v.fps_den, 1001);
    EXPECT_EQ(v.frames, 21);
    const StreamInfo& a = info.streams[static_cast<size_t>(1 - info.best_video)];
    EXPECT_EQ(a.type, "audio");
    EXPECT_EQ(a.codec, "aac");
    EXPECT_EQ(a.sample_rate, 48000);
    EXPECT_EQ(a.channels, 1);
    EXPECT_NEAR(a.duration_s, 21 * 1001.0 / 24000.0, 0.05);  // audio as long as the video
    EXPECT_FALSE(fs::exists(path("clip.partial.mp4")));
}

TEST_F(MediaIo, DecodedFramesMatchThePattern) {
    SynthClipOptions o;
    o.frames = 12;
    o.audio = false;
    write_synthetic_clip(path("clip.mkv"), o);
    const at::Tensor frames = read_video_rgb24(path("clip.mkv"));
    ASSERT_EQ(frames.sizes(), (at::IntArrayRef{12, 96, 160, 3}));
    EXPECT_EQ(frames.scalar_type(), at::kByte);
    for (int i : {0, 5, 11}) {
        const auto src = synthetic_frame_rgb(160, 96, i);
        const at::Tensor expected =
            at::from_blob(const_cast<uint8_t*>(src.data()), {96, 160, 3}, at::kByte).to(at::kFloat);
        const float mae = (frames[i].to(at::kFloat) - expected).abs().mean().item<float>();
        EXPECT_LT(mae, 4.0f) << "frame " << i;  // x264 crf 18 + 4:2:0 chroma; a wrong matrix gives > 10
    }
    EXPECT_EQ(read_video_rgb24(path("clip.mkv"), 5).size(0), 5);
}

TEST_F(MediaIo, BadInputGivesClearErrors) {
    EXPECT_NE(input_error_of([&] { probe(path("missing.mp4")); }).find("missing.mp4"), std::string::npos);
    EXPECT_NE(input_error_of([&] { read_video_rgb24(path("missing.mp4")); }).find("no such file"),
              std::string::npos);
    std::ofstream(path("notes.txt")) << "this is not a video";
    EXPECT_NE(input_error_of([&] { read_video_rgb24(path("notes.txt")); }).find("notes.txt"),
              std::string::npos);
    SynthClipOptions o;
    o.video_encoder = "no_such_encoder";
    EXPECT_NE(input_error_of([&] { write_synthetic_clip(path("x.mp4"), o); }).find("no_such_encoder"),
              std::string::npos);
    o = SynthClipOptions{};
    o.width = 161;
    EXPECT_NE(input_error_of([&] { write_synthetic_clip(path("y.mp4"), o); }).find("161x96"),
              std::string::npos);
    // Nothing half-written is left behind.
    EXPECT_FALSE(fs::exists(path("x.mp4")));
    EXPECT_FALSE(fs::exists(path("x.partial.mp4")));
    EXPECT_FALSE(fs::exists(path("y.mp4")));
}

TEST_F(MediaIo, PngRoundTrip8And16Bit) {
    at::manual_seed(3);
    const at::Tensor img = at::rand({17, 23, 3});
    write_image(path("a.png"), img, 8);
    const at::Tensor back8 = read_image(path("a.png"));
    ASSERT_EQ(back8.sizes(), img.sizes());
    EXPECT_LE((back8 - img).abs().max().item<float>(), 0.5f / 255 + 1e-6f);
    write_image(path("b.png"), img, 16);
    const at::Tensor back16 = read_image(path("b.png"));
    EXPECT_LE((back16 - img).abs().max().item<float>(), 0.5f / 65535 + 1e-6f);
    // Channel order is RGB on both sides.
    at::Tensor red = at::zeros({4, 4, 3});
    red.select(2, 0).fill_(1.0);
    write_image(path("red.png"), red);
    EXPECT_EQ(read_image(path("red.png")).select(2, 0).min().item<float>(), 1.0f);
    EXPECT_EQ(read_image(path("red.png")).select(2, 2).max().item<float>(), 0.0f);
    EXPECT_FALSE(fs::exists(path("a.partial.png")));
}

TEST_F(MediaIo, ImageErrorsNameTheFile) {
    EXPECT_NE(input_error_of([&] { read_image(path("none.png")); }).find("none.png"), std::string::npos);
    std::ofstream(path("bad.png")) << "not a png";
    EXPECT_NE(input_error_of([&] { read_image(path("bad.png")); }).find("bad.png"), std::string::npos);
    const auto write_12_bit = [&] { write_image(path("c.png"), at::zeros({4, 4, 3}), 12); };
    EXPECT_NE(input_error_of(write_12_bit).find("8 or 16"), std::string::npos);
    const auto write_no_dir = [&] { write_image(path("no_dir/c.png"), at::zeros({4, 4, 3})); };
    EXPECT_NE(input_error_of(write_no_dir).find("c.png"), std::string::npos);
}
