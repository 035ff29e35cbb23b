// Streaming VideoDecoder / VideoEncoder without the engine: timestamps and frame counts kept (23.976, VFR),
// audio/subtitle packets copied bit for bit, colour matrix/range round trips, 10-bit input, and every
// bad-input case with its message. Clips come from Debian's ffmpeg CLI (scripts/setup.sh installs it).
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>

#include "csrc/io/video_decoder.h"
#include "csrc/io/video_encoder.h"
#include "csrc/io/video_read.h"
#include "media_dir_test.h"
#include "media_test_util.h"

namespace fs = std::filesystem;
using namespace flashvsr::io;
using namespace flashvsr::testing_media;

namespace {

class VideoIo : public MediaDirTest {
  protected:
    /// Decodes `in` and re-encodes it at the same size (identity path) into `out`, copying other streams.
    /// Returns the encoder's warnings.
    std::vector<std::string> transcode(const std::string& in, const std::string& out, EncoderOptions eo = {},
                                       DecoderOptions dopt = {}) {
        VideoDecoder dec(in, dopt);
        VideoEncoder enc(out, dec.info().width, dec.info().height, dec.info(), dec.format(), dec.offset_pts(),
                         eo);
        dec.set_packet_sink([&](AVPacket* p) { enc.write_packet(p); });
        while (true) {
            FrameBatch b = dec.read(3);
            if (b.rgb.size(0) == 0) {
                break;
            }
            enc.write(b.rgb, b.pts, b.duration);
        }
        enc.finish();
        return enc.warnings();
    }

    std::string error_of(const std::string& in, DecoderOptions o = {}) {
        return input_error_of([&] {
            VideoDecoder dec(in, o);
            while (dec.read(8).rgb.size(0) > 0) {
            }
        });
    }
};

void expect_same_times(const std::vector<double>& a, const std::vector<double>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_NEAR(a[i], b[i], 5e-4) << "frame " << i;
    }
}

}  // namespace

TEST_F(VideoIo, NtscRateTimestampsAudioAndSubtitlesKept) {
    {
        std::ofstream srt(path("s.srt"));
        srt << "1\n00:00:00,100 --> 00:00:00,500\nhello\n\n2\n00:00:00,600 --> 00:00:00,800\nworld\n";
    }
    const std::string in = path("in.mkv");
    ffmpeg(
        "-f lavfi -i testsrc2=size=32x24:rate=24000/1001:duration=0.875 -f lavfi -i "
        "sine=f=440:duration=0.875 -i " +
        path("s.srt") +
        " -map 0:v -map 1:a -map 2:s -c:v libx264 -pix_fmt yuv420p -c:a aac "
        "-c:s srt -metadata:s:a:0 language=fra -metadata title=bars " +
        in);
    const std::string out = path("out.mkv");
    const auto warnings = transcode(in, out);
    EXPECT_TRUE(warnings.empty());

    const auto ti = frame_times(in), to = frame_times(out);
    ASSERT_EQ(ti.size(), 21u);
    expect_same_times(ti, to);
    EXPECT_NEAR(to[1] - to[0], 1001.0 / 24000.0, 1e-3);  // not rounded to 1/24 or 1/23.976

    const auto pi = read_packets(in), po = read_packets(out);
    const StreamPackets *ai = first_of(pi, AVMEDIA_TYPE_AUDIO), *ao = first_of(po, AVMEDIA_TYPE_AUDIO);
    ASSERT_NE(ai, nullptr);
    ASSERT_NE(ao, nullptr);
    EXPECT_GT(ai->hashes.size(), 10u);
    EXPECT_EQ(ai->hashes, ao->hashes);  // audio packets bit-identical, in order
    expect_same_times(ai->pts_s, ao->pts_s);
    const StreamPackets *si = first_of(pi, AVMEDIA_TYPE_SUBTITLE), *so = first_of(po, AVMEDIA_TYPE_SUBTITLE);
    ASSERT_NE(si, nullptr);
    ASSERT_NE(so, nullptr);
    EXPECT_EQ(si->hashes.size(), 2u);
    EXPECT_EQ(si->hashes, so->hashes);
    const auto r =
        run_cmd("ffprobe -v error -show_entries stream_tags=language:format_tags=title -of csv=p=0 " + out);
    EXPECT_NE(r.output.find("fra"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("bars"), std::string::npos) << r.output;

    // --no-subtitles / --no-audio drop the streams; MP4 cannot hold SubRip: skipped with a warning.
    EncoderOptions eo;
    eo.copy_audio = false;
    eo.copy_subtitles = false;
    transcode(in, path("video_only.mkv"), eo);
    const auto pv = read_packets(path("video_only.mkv"));
    EXPECT_EQ(pv.size(), 1u);
    const auto w = transcode(in, path("out.mp4"));
    ASSERT_EQ(w.size(), 1u);
    EXPECT_NE(w[0].find("subrip"), std::string::npos) << w[0];
    EXPECT_EQ(first_of(read_packets(path("out.mp4")), AVMEDIA_TYPE_AUDIO)->hashes, ai->hashes);
    expect_same_times(ti, frame_times(path("out.mp4")));
}

TEST_F(VideoIo, FrameCountsAndTimestampsKept) {
    for (const int n : {1, 20, 21, 33, 100}) {
        SCOPED_TRACE(n);
        const std::string in = path("n" + std::to_string(n) + ".mp4"),
                          out = path("o" + std::to_string(n) + ".mp4");
        ffmpeg("-f lavfi -i testsrc2=size=32x24:rate=25 -frames:v " + std::to_string(n) +
               " -c:v libx264 -pix_fmt yuv420p " + in);
        transcode(in, out);
        const auto ti = frame_times(in);
        ASSERT_EQ(static_cast<int>(ti.size()), n);
        expect_same_times(ti, frame_times(out));
    }
}

TEST_F(VideoIo, ChaptersAndContainerMetadataKept) {
    {
        std::ofstream m(path("meta.txt"));
        m << ";FFMETADATA1\ntitle=demo clip\nartist=flashvsr tests\n"
             "[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=400\ntitle=first\n"
             "[CHAPTER]\nTIMEBASE=1/1000\nSTART=400\nEND=1000\ntitle=second\n";
    }
    const std::string in = path("ch.mkv");
    ffmpeg("-f lavfi -i testsrc2=size=32x24:rate=25:duration=1 -i " + path("meta.txt") +
           " -map_metadata 1 -map_chapters 1 -c:v libx264 -pix_fmt yuv420p " + in);
    for (const std::string out : {path("out.mkv"), path("out.mp4")}) {
        SCOPED_TRACE(out);
        transcode(in, out);
        auto r = run_cmd(
            "ffprobe -v error -show_chapters -show_entries format_tags=title,artist -of compact " + out);
        for (char& c : r.output) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        EXPECT_NE(r.output.find("end_time=0.400000|tag:title=first"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("start_time=0.400000"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("end_time=1.000000|tag:title=second"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("tag:title=demo clip"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("artist=flashvsr tests"), std::string::npos) << r.output;
    }
}

TEST_F(VideoIo, VariableFrameRateTimestampsKept) {
    const std::string in = path("vfr.mp4");
    ffmpeg(
        "-f lavfi -i testsrc2=size=32x24:rate=30:duration=2 -vf "
        "\"select='not(mod(n\\,3))+eq(n\\,1)+eq(n\\,7)'\" "
        "-vsync vfr -c:v libx264 -pix_fmt yuv420p " +
        in);
    const auto ti = frame_times(in);
    ASSERT_EQ(ti.size(), 22u);
    EXPECT_NEAR(ti[1] - ti[0], 1.0 / 30, 1e-3);  // really variable: gaps of 1/30 and 3/30 s
    EXPECT_NEAR(ti[3] - ti[2], 3.0 / 30, 1e-3);
    transcode(in, path("out.mp4"));
    expect_same_times(ti, frame_times(path("out.mp4")));
    transcode(in, path("out.mkv"));
    expect_same_times(ti, frame_times(path("out.mkv")));
}

TEST_F(VideoIo, StartEndRangeShiftsVideoAndAudioTogether) {
    const std::string in = path("in.mp4");
    ffmpeg(
        "-f lavfi -i testsrc2=size=32x24:rate=25 -f lavfi -i sine=f=440 -t 2 -c:v libx264 -g 10 -pix_fmt "
        "yuv420p "
        "-c:a aac " +
        in);
    DecoderOptions d;
    d.start_s = 0.5;
    d.end_s = 1.3;
    transcode(in, path("cut.mp4"), {}, d);
    const auto t = frame_times(path("cut.mp4"));
    ASSERT_EQ(t.size(), 20u);  // frames 12.5 .. 32.5 -> 13..32
    EXPECT_NEAR(t[0], 13 / 25.0 - 0.5, 1e-3);
    const auto packets = read_packets(path("cut.mp4"));  // a points into it
    const auto a = first_of(packets, AVMEDIA_TYPE_AUDIO);
    ASSERT_NE(a, nullptr);
    EXPECT_GE(a->pts_s.front(), -1e-3);
    EXPECT_LT(a->pts_s.back(), 0.8 + 1e-3);
}

TEST_F(VideoIo, ColourBarsRoundTripBt601Bt709LimitedFull) {
    // 75% colour bars, 8 px each: white, yellow, cyan, green, magenta, red, blue, black.
    const float bars[8][3] = {{.75f, .75f, .75f}, {.75f, .75f, 0}, {0, .75f, .75f}, {0, .75f, 0},
                              {.75f, 0, .75f},    {.75f, 0, 0},    {0, 0, .75f},    {0, 0, 0}};
    at::Tensor rgb = at::empty({2, 16, 64, 3});
    for (int b = 0; b < 8; ++b) {
        for (int c = 0; c < 3; ++c) {
            rgb.narrow(2, b * 8, 8).select(3, c).fill_(bars[b][c]);
        }
    }
    for (const int matrix : {6 /*SMPTE170M = BT.601*/, 1 /*BT.709*/}) {
        for (const int range : {1 /*limited*/, 2 /*full*/}) {
            SCOPED_TRACE("matrix " + std::to_string(matrix) + " range " + std::to_string(range));
            VideoStreamInfo src;
            src.width = 64;
            src.height = 16;
            src.tb_num = 1;
            src.tb_den = 25;
            src.fps_num = 25;
            src.colorspace = src.matrix = matrix;
            src.color_range = src.range = range;
            EncoderOptions eo;
            eo.pix_fmt = "yuv444p";
            eo.crf = -1;
            eo.private_options = {{"qp", "0"}};  // lossless YUV: only the RGB<->YUV quantisation remains
            const std::string f =
                path("bars_" + std::to_string(matrix) + "_" + std::to_string(range) + ".mkv");
            {
                VideoEncoder enc(f, 64, 16, src, nullptr, 0, eo);
                enc.write(rgb, {0, 1});
                enc.finish();
            }
            VideoDecoder dec(f);
            EXPECT_EQ(dec.info().colorspace, matrix);  // tags written and read back
            EXPECT_EQ(dec.info().color_range, range);
            const at::Tensor back = dec.read(8).rgb;
            ASSERT_EQ(back.sizes(), rgb.sizes());
            EXPECT_LT((back - rgb).abs().max().item<float>(), 2.5f / 255) << "our round trip";
            // FFmpeg's own conversion of the file (it honours the tags) agrees with ours.
            const auto r = run_cmd("ffmpeg -v error -i " + f + " -frames:v 1 -f rawvideo -pix_fmt rgb24 -");
            ASSERT_EQ(r.code, 0);
            ASSERT_EQ(r.output.size(), 64u * 16 * 3);
            at::Tensor ff =
                at::from_blob(const_cast<char*>(r.output.data()), {16, 64, 3}, at::kByte).to(at::kFloat) /
                255;
            EXPECT_LT((ff - rgb[0]).abs().max().item<float>(), 3.5f / 255) << "ffmpeg's decode of our file";
            // The same bytes read with the other matrix would be off by far more than the tolerance.
            if (matrix == 1) {
                const at::Tensor y709 = rgb[0][0][8];  // yellow
                EXPECT_GT(y709.sum().item<float>(), 1.4f);
            }
        }
    }
}

TEST_F(VideoIo, TenBitInputKeepsPrecisionAndStaysTenBit) {
    const std::string in = path("ten.mkv");
    ffmpeg(
        "-f lavfi -i testsrc2=size=64x48:rate=25 -frames:v 4 -c:v libx265 -x265-params log-level=error "
        "-pix_fmt yuv420p10le " +
        in);
    VideoDecoder dec(in);
    EXPECT_EQ(dec.info().bits, 10);
    EXPECT_EQ(dec.info().pix_fmt, "yuv420p10le");
    const at::Tensor x = dec.read(8).rgb;
    ASSERT_EQ(x.size(0), 4);
    const at::Tensor frac = (x * 255 - (x * 255).round()).abs();
    EXPECT_GT((frac > 0.1).to(at::kFloat).mean().item<float>(), 0.2f);  // not quantised to 8 bits
    EncoderOptions eo;
    eo.crf = -1;
    eo.private_options = {{"qp", "0"}};
    transcode(in, path("out.mkv"), eo);
    VideoDecoder back(path("out.mkv"));
    EXPECT_EQ(back.info().pix_fmt, "yuv420p10le");  // default output for a 10-bit source
    EXPECT_LT((back.read(8).rgb - x).abs().mean().item<float>(),
              0.03f);  // chroma resampling of a sharp pattern
}

TEST_F(VideoIo, WholeClipReadIsTheStreamingDecodersFrames) {
    // read_video_rgb24 is VideoDecoder with 8-bit output: the same frames, as uint8.
    const std::string in8 = path("eight.mkv");
    ffmpeg("-f lavfi -i testsrc2=size=64x48:rate=25 -frames:v 6 -c:v libx264 -pix_fmt yuv420p " + in8);
    const at::Tensor all = read_video_rgb24(in8);
    ASSERT_EQ(all.sizes(), (at::IntArrayRef{6, 48, 64, 3}));
    EXPECT_EQ(all.scalar_type(), at::kByte);
    VideoDecoder dec(in8);
    const at::Tensor f = dec.read(8).rgb;  // float32 = uint8 / 255
    EXPECT_TRUE(at::equal(all, f.mul(255).round().to(at::kByte)));
    EXPECT_TRUE(at::equal(read_video_rgb24(in8, 4), all.narrow(0, 0, 4)));
    EXPECT_NE(input_error_of([&] { read_video_rgb24(in8, 0); }).find("contains no video frames"),
              std::string::npos);
    // 10-bit source: converted to 8 bits directly by swscale (which dithers: within 2 levels of the 16-bit
    // conversion, half a level on average).
    const std::string in10 = path("ten.mkv");
    ffmpeg(
        "-f lavfi -i testsrc2=size=64x48:rate=25 -frames:v 4 -c:v libx265 -x265-params log-level=error "
        "-pix_fmt yuv420p10le " +
        in10);
    const at::Tensor ten = read_video_rgb24(in10);
    ASSERT_EQ(ten.sizes(), (at::IntArrayRef{4, 48, 64, 3}));
    EXPECT_EQ(ten.scalar_type(), at::kByte);
    const at::Tensor deep = VideoDecoder(in10).read(8).rgb;
    const at::Tensor diff = (ten.to(at::kFloat) - deep * 255).abs();
    EXPECT_LE(diff.max().item<float>(), 2.0f);
    EXPECT_LT(diff.mean().item<float>(), 0.5f);
}

TEST_F(VideoIo, BadInputsNameTheProblem) {
    EXPECT_NE(error_of(path("missing.mp4")).find("no such file"), std::string::npos);
    std::ofstream(path("text.mp4")) << "this is not a video\n";
    EXPECT_NE(error_of(path("text.mp4")).find("is not a readable video file"), std::string::npos);
    std::ofstream(path("empty.mp4"));
    EXPECT_NE(error_of(path("empty.mp4")).find("is not a readable video file"), std::string::npos);
    ffmpeg("-f lavfi -i sine=f=440 -t 0.5 -c:a aac " + path("audio.m4a"));
    EXPECT_NE(error_of(path("audio.m4a")).find("has no video stream"), std::string::npos)
        << error_of(path("audio.m4a"));
    // Truncated mid-file (moov first, so the container opens and the data ends early).
    ffmpeg(
        "-f lavfi -i testsrc2=size=128x96:rate=25 -frames:v 100 -c:v libx264 -pix_fmt yuv420p -movflags "
        "+faststart " +
        path("full.mp4"));
    {
        std::ifstream f(path("full.mp4"), std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        std::ofstream(path("cut.mp4"), std::ios::binary)
            .write(bytes.data(), static_cast<std::streamsize>(bytes.size() * 6 / 10));
    }
    const std::string cut = error_of(path("cut.mp4"));
    EXPECT_NE(cut.find("truncated or corrupt"), std::string::npos) << cut;
    EXPECT_NE(cut.find("cut.mp4"), std::string::npos) << cut;
    const std::string late_msg = "no video frames between --start and --end";  // zero frames in range
    DecoderOptions late;
    late.start_s = 10;
    EXPECT_NE(error_of(path("full.mp4"), late).find(late_msg), std::string::npos);
}

TEST_F(VideoIo, EncoderRefusesAndLeavesNoFile) {
    VideoStreamInfo src;
    src.width = 32;
    src.height = 24;
    src.tb_den = 25;
    src.fps_num = 25;
    const auto err = [&](const std::string& out, EncoderOptions eo) {
        return input_error_of([&] {
            VideoEncoder enc(out, 32, 24, src, nullptr, 0, eo);
            enc.write(at::zeros({1, 24, 32, 3}), {0});
            enc.finish();
        });
    };
    std::ofstream(path("exists.mp4")) << "keep me";
    // Whether an existing output may be replaced is the pipeline's rule (test_transcode); an encoder that
    // fails never touches it.
    EncoderOptions bad;
    bad.codec = "nope264";
    EXPECT_NE(err(path("a.mp4"), bad).find("unknown encoder 'nope264'"), std::string::npos);
    EXPECT_NE(err(path("exists.mp4"), bad).find("unknown encoder 'nope264'"), std::string::npos);
    bad = {};
    bad.pix_fmt = "yuv999p";
    EXPECT_NE(err(path("a.mp4"), bad).find("unknown pixel format 'yuv999p'"), std::string::npos);
    bad.pix_fmt = "rgb24";
    EXPECT_NE(err(path("a.mp4"), bad).find("does not support pixel format rgb24"), std::string::npos);
    bad = {};
    bad.private_options = {{"no_such_option", "1"}};
    EXPECT_NE(err(path("a.mp4"), bad).find("rejects option no_such_option=1"), std::string::npos);
    EXPECT_NE(err(path("no/such/dir/a.mp4"), {}).find("cannot write the output"), std::string::npos);
    EXPECT_NE(err(path("a.unknownext"), {}).find("cannot choose a container"), std::string::npos);
    // An encoder destroyed before finish() removes its temporary file.
    {
        VideoEncoder enc(path("unfinished.mp4"), 32, 24, src, nullptr, 0, {});
        enc.write(at::zeros({2, 24, 32, 3}), {0, 1});
    }
    EXPECT_EQ(list_dir(dir_), std::vector<std::string>{"exists.mp4"});
    EXPECT_EQ(fs::file_size(path("exists.mp4")), 7u);
    // finish() renames onto an existing file; cancelled runs go to OUT.partial.EXT.
    EXPECT_EQ(err(path("exists.mp4"), {}), "<no error>");
    EXPECT_EQ(frame_times(path("exists.mp4")).size(), 1u);
    EXPECT_EQ(partial_path("/x/out.mp4"), "/x/out.partial.mp4");
    {
        VideoEncoder enc(path("c.mp4"), 32, 24, src, nullptr, 0, {});
        enc.write(at::zeros({3, 24, 32, 3}), {0, 1, 2});
        EXPECT_EQ(enc.finish_partial(), path("c.partial.mp4"));
    }
    EXPECT_FALSE(fs::exists(path("c.mp4")));
    EXPECT_EQ(frame_times(path("c.partial.mp4")).size(), 3u);
}
