// DecoderOptions::start_frame: a frame-accurate seek (io/frame_index.h) gives the same frames, bit for bit
// and with the same timestamps, as a decode from the start that drops the frames before it, while decoding
// at most a GOP before the frame; clips with B-frames (closed and open GOP, MP4 and Matroska, VFR), every
// position class (0, mid-GOP, a keyframe, the last frame), past the end, and the fallback without a seek.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "csrc/io/synth_clip.h"
#include "csrc/io/video_decoder.h"
#include "media_dir_test.h"
#include "media_test_util.h"

extern "C" {
#include <libavformat/avformat.h>
}

namespace fs = std::filesystem;
using namespace flashvsr::io;
using namespace flashvsr::testing_media;

namespace {

/// Every frame of a decoder from its current position: rgb [n, H, W, 3] and pts.
struct Frames {
    at::Tensor rgb;
    std::vector<int64_t> pts;
};

Frames read_all(VideoDecoder& dec) {
    Frames f;
    std::vector<at::Tensor> parts;
    for (FrameBatch b = dec.read(5); b.rgb.size(0) > 0; b = dec.read(5)) {
        parts.push_back(b.rgb);
        f.pts.insert(f.pts.end(), b.pts.begin(), b.pts.end());
    }
    f.rgb = parts.empty() ? at::empty({0}) : at::cat(parts);
    return f;
}

/// Presentation-order indices of the keyframes of the best video stream (from the packets' flags).
std::vector<int64_t> keyframe_indices(const std::string& path) {
    AVFormatContext* fc = nullptr;
    std::vector<std::pair<int64_t, bool>> pts_key;
    if (avformat_open_input(&fc, path.c_str(), nullptr, nullptr) < 0) {
        return {};
    }
    avformat_find_stream_info(fc, nullptr);
    const int vi = av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    AVPacket* pkt = av_packet_alloc();
    while (av_read_frame(fc, pkt) >= 0) {
        if (pkt->stream_index == vi) {
            pts_key.emplace_back(pkt->pts, (pkt->flags & AV_PKT_FLAG_KEY) != 0);
        }
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    avformat_close_input(&fc);
    std::sort(pts_key.begin(), pts_key.end());
    std::vector<int64_t> keys;
    for (size_t i = 0; i < pts_key.size(); ++i) {
        if (pts_key[i].second) {
            keys.push_back(static_cast<int64_t>(i));
        }
    }
    return keys;
}

class VideoSeek : public MediaDirTest {
  protected:
    /// For each k: the frames from start_frame = k equal frames k.. of the decode from the start (values
    /// and pts), reached by a seek, and the decoder decoded at most `max_extra` frames before k.
    static void expect_seeks_exact(const std::string& clip, const std::vector<int64_t>& ks,
                                   int64_t max_extra) {
        VideoDecoder whole(clip);
        const Frames all = read_all(whole);
        const int64_t n = all.rgb.size(0);
        ASSERT_GT(n, 0);
        for (const int64_t k : ks) {
            SCOPED_TRACE(clip + " start_frame " + std::to_string(k));
            DecoderOptions o;
            o.start_frame = k;
            VideoDecoder dec(clip, o);
            EXPECT_EQ(dec.seeked(), k > 0);
            EXPECT_TRUE(dec.take_notes().empty());
            const Frames got = read_all(dec);
            ASSERT_EQ(got.rgb.size(0), n - k);
            EXPECT_TRUE(at::equal(got.rgb, all.rgb.narrow(0, k, n - k)));
            EXPECT_EQ(got.pts, std::vector<int64_t>(all.pts.begin() + k, all.pts.end()));
            EXPECT_LE(dec.frames_decoded(), n - k + max_extra);
            EXPECT_GE(dec.frames_decoded(), n - k);
        }
    }

    std::vector<std::string> closed_gop_clips() {
        // The synthetic clip: libx264 (veryfast: B-frames), GOP 12, with an AAC track; MP4 indexes keyframes
        // by dts, Matroska by pts.
        std::vector<std::string> clips;
        for (const std::string name : {"gop12.mp4", "gop12.mkv"}) {
            SynthClipOptions o;
            o.width = 64;
            o.height = 48;
            o.frames = 60;
            write_synthetic_clip(path(name), o);
            clips.push_back(path(name));
        }
        return clips;
    }
};

}  // namespace

TEST_F(VideoSeek, ClosedGopWithBFramesEqualsDecodeFromStart) {
    for (const std::string& clip : closed_gop_clips()) {
        const std::vector<int64_t> keys = keyframe_indices(clip);
        ASSERT_GE(keys.size(), 4u) << clip;  // GOP 12 over 60 frames
        ASSERT_EQ(keys[0], 0);
        const int64_t key = keys[2];  // a keyframe in the middle
        // 0, the frame after a keyframe, mid-GOP, the frame before a keyframe, a keyframe, the last frame.
        expect_seeks_exact(clip, {0, 1, key - 6, key - 1, key, 59}, 11);
        // On a keyframe of a closed GOP nothing before it is decoded.
        DecoderOptions o;
        o.start_frame = key;
        VideoDecoder dec(clip, o);
        read_all(dec);
        EXPECT_EQ(dec.frames_decoded(), 60 - key) << clip;
    }
}

TEST_F(VideoSeek, OpenGopAndVariableFrameRateEqualDecodeFromStart) {
    // x264 open GOP: the frames shown just before a keyframe are decoded after it and refer to the GOP
    // before; they are dropped after the seek, and the frames from the keyframe on are still exact.
    const std::string open = path("open.mkv");
    ffmpeg(
        "-f lavfi -i testsrc2=size=64x48:rate=25 -frames:v 60 -c:v libx264 -pix_fmt yuv420p "
        "-x264-params keyint=12:min-keyint=12:scenecut=0:open-gop=1:bframes=3 " +
        open);
    const std::vector<int64_t> keys = keyframe_indices(open);
    ASSERT_GE(keys.size(), 4u);
    expect_seeks_exact(open, {keys[1] - 1, keys[1], keys[1] + 5, keys[3] - 2, 59}, 11 + 3);

    // Variable frame rate (gaps of 1 and 3 frame times), MP4 with B-frames.
    const std::string vfr = path("vfr.mp4");
    ffmpeg(
        "-f lavfi -i testsrc2=size=32x24:rate=30:duration=2 -vf "
        "\"select='not(mod(n\\,3))+eq(n\\,1)+eq(n\\,7)'\" "
        "-vsync vfr -c:v libx264 -g 6 -bf 2 -pix_fmt yuv420p " +
        vfr);
    expect_seeks_exact(vfr, {3, 6, 10, 21}, 5);
}

TEST_F(VideoSeek, WithStartTimeFramesCountFromTheStartTime) {
    const std::string clip = closed_gop_clips()[0];
    DecoderOptions from;
    from.start_s = 0.5;  // frame 12 at 24 fps
    VideoDecoder whole(clip, from);
    const Frames all = read_all(whole);
    ASSERT_EQ(all.rgb.size(0), 48);
    DecoderOptions o = from;
    o.start_frame = 17;
    VideoDecoder dec(clip, o);
    EXPECT_TRUE(dec.seeked());
    EXPECT_EQ(dec.offset_pts(), whole.offset_pts());  // the output's time origin is still --start
    const Frames got = read_all(dec);
    ASSERT_EQ(got.rgb.size(0), 31);
    EXPECT_TRUE(at::equal(got.rgb, all.rgb.narrow(0, 17, 31)));
    EXPECT_EQ(got.pts, std::vector<int64_t>(all.pts.begin() + 17, all.pts.end()));
}

TEST_F(VideoSeek, PastTheEndNamesTheFrameAndTheCount) {
    const std::string clip = closed_gop_clips()[0];
    for (const int64_t k : {60, 100}) {
        DecoderOptions o;
        o.start_frame = k;
        try {
            VideoDecoder dec(clip, o);
            read_all(dec);
            ADD_FAILURE() << "start_frame " << k << " past the end was accepted";
        } catch (const flashvsr::InputError& e) {
            EXPECT_NE(std::string(e.what()).find("start frame " + std::to_string(k) +
                                                 " is past the end of the video (it has 60 frames)"),
                      std::string::npos)
                << e.what();
            EXPECT_NE(std::string(e.what()).find(clip), std::string::npos) << e.what();
        }
    }
    DecoderOptions bad;
    bad.start_frame = -1;
    EXPECT_THROW(VideoDecoder(clip, bad), flashvsr::InputError);
}

TEST_F(VideoSeek, WithoutTimestampsDecodesFromTheStartAndSaysSo) {
    // A raw H.264 stream has no packet timestamps: no exact seek; the frames are still right.
    const std::string raw = path("raw.h264");
    ffmpeg("-f lavfi -i testsrc2=size=32x24:rate=25 -frames:v 40 -c:v libx264 -g 12 -pix_fmt yuv420p " + raw);
    VideoDecoder whole(raw);
    const Frames all = read_all(whole);
    ASSERT_EQ(all.rgb.size(0), 40);
    DecoderOptions o;
    o.start_frame = 25;
    VideoDecoder dec(raw, o);
    EXPECT_FALSE(dec.seeked());
    const std::vector<std::string> notes = dec.take_notes();
    ASSERT_EQ(notes.size(), 1u);
    EXPECT_NE(notes[0].find("no frame-accurate seek to frame 25"), std::string::npos) << notes[0];
    const Frames got = read_all(dec);
    ASSERT_EQ(got.rgb.size(0), 15);
    EXPECT_TRUE(at::equal(got.rgb, all.rgb.narrow(0, 25, 15)));
    EXPECT_EQ(dec.frames_decoded(), 40);
    o.start_frame = 45;
    VideoDecoder past(raw, o);
    try {
        read_all(past);
        ADD_FAILURE() << "start_frame 45 of 40 accepted";
    } catch (const flashvsr::InputError& e) {
        EXPECT_NE(
            std::string(e.what()).find("start frame 45 is past the end of the video (it has 40 frames)"),
            std::string::npos)
            << e.what();
    }
}

TEST_F(VideoSeek, LastSegmentDecodesItsInputAndAtMostAGopBefore) {
    // The last segment of a 60-frame clip from chunk 4 with 2 warm-up chunks reads from frame 29
    // (the decoder condition of chunk 2); before the seek its decoder decoded all 60 frames.
    const std::string clip = closed_gop_clips()[1];
    const flashvsr::SegmentFrames seg = flashvsr::segment_frames(flashvsr::SegmentOptions{4, -1, 2}, {});
    ASSERT_EQ(seg.input_begin, 29);
    DecoderOptions o;
    o.start_frame = seg.input_begin;
    VideoDecoder dec(clip, o);
    EXPECT_TRUE(dec.seeked());
    EXPECT_EQ(read_all(dec).rgb.size(0), 60 - 29);
    EXPECT_LE(dec.frames_decoded(), 60 - 29 + 11);
}
