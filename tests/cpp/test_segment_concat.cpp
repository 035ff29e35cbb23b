// io::concat_segments (scale-out, docs/SCALE_OUT.md): segments encoded separately are joined by stream copy
// with the source's audio, subtitles and metadata copied once; frame count, timestamps and packets kept; bad
// segments named, no output left behind.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "csrc/io/segment_concat.h"
#include "csrc/io/video_decoder.h"
#include "csrc/io/video_encoder.h"
#include "media_dir_test.h"
#include "media_test_util.h"

namespace fs = std::filesystem;
using namespace flashvsr::io;
using namespace flashvsr::testing_media;

namespace {

class SegmentConcat : public MediaDirTest {
  protected:
    /// Frames [begin, end) of `in` re-encoded alone (no other streams, source timestamps) into `out`.
    void encode_range(const std::string& in, const std::string& out, int64_t begin, int64_t end,
                      int width = 0) {
        VideoDecoder dec(in);
        const int w = width > 0 ? width : dec.info().width;
        EncoderOptions eo;
        eo.copy_audio = eo.copy_subtitles = false;
        eo.private_options = {{"x264-params", "no-mbtree=1"}};
        VideoEncoder enc(out, w, dec.info().height, dec.info(), nullptr, 0, eo);
        int64_t i = 0;
        for (FrameBatch b = dec.read(4); b.rgb.size(0) > 0; b = dec.read(4)) {
            for (int64_t k = 0; k < b.rgb.size(0); ++k, ++i) {
                if (i < begin || i >= end) {
                    continue;
                }
                const at::Tensor f = b.rgb.narrow(0, k, 1).narrow(2, 0, w);
                enc.write(f, {b.pts[static_cast<size_t>(k)]}, {b.duration[static_cast<size_t>(k)]});
            }
        }
        enc.finish();
    }

    std::string error_of(const std::vector<std::string>& segs, const std::string& out) {
        try {
            concat_segments(segs, "", out);
        } catch (const flashvsr::InputError& e) {
            return e.what();
        }
        return "<no error>";
    }
};

}  // namespace

TEST_F(SegmentConcat, JoinsByStreamCopyKeepingFramesTimestampsAudioSubtitles) {
    {
        std::ofstream srt(path("s.srt"));
        srt << "1\n00:00:00,100 --> 00:00:00,500\nhello\n\n2\n00:00:00,900 --> 00:00:01,200\nworld\n";
    }
    const std::string in = path("in.mkv");
    ffmpeg(
        "-f lavfi -i testsrc2=size=32x24:rate=24000/1001:duration=1.5 -f lavfi -i sine=f=440:duration=1.5 "
        "-i " +
        path("s.srt") +
        " -map 0:v -map 1:a -map 2:s -c:v libx264 -pix_fmt yuv420p -c:a aac -c:s srt -metadata title=film " +
        in);
    const auto ti = frame_times(in);
    ASSERT_EQ(ti.size(), 36u);
    for (const std::string& ext : {".mkv", ".mp4"}) {
        SCOPED_TRACE(ext);
        // Three segments cut where the engine's chunks end (21, 29), encoded separately in the output's
        // container (which keeps the timestamps exactly as the output will).
        const std::vector<std::string> segs{path("s0" + ext), path("s1" + ext), path("s2" + ext)};
        encode_range(in, segs[0], 0, 21);
        encode_range(in, segs[1], 21, 29);
        encode_range(in, segs[2], 29, 36);
        std::vector<uint64_t> seg_packets;
        for (const auto& s : segs) {
            const auto p = read_packets(s);
            ASSERT_EQ(p.size(), 1u);
            seg_packets.insert(seg_packets.end(), p[0].hashes.begin(), p[0].hashes.end());
        }
        ASSERT_EQ(seg_packets.size(), 36u);
        const std::string out = path("out" + ext);
        const ConcatResult r = concat_segments(segs, in, out);
        EXPECT_EQ(r.video_packets, 36);
        const auto to = frame_times(out);
        ASSERT_EQ(to.size(), ti.size());  // N frames in, N out
        for (size_t i = 0; i < ti.size(); ++i) {
            EXPECT_NEAR(to[i], ti[i], 5e-4) << "frame " << i;
        }
        const auto pi = read_packets(in), po = read_packets(out);
        EXPECT_EQ(first_of(po, AVMEDIA_TYPE_VIDEO)->hashes,
                  seg_packets);  // stream copy: the segments' packets
        const StreamPackets *ai = first_of(pi, AVMEDIA_TYPE_AUDIO), *ao = first_of(po, AVMEDIA_TYPE_AUDIO);
        ASSERT_NE(ao, nullptr);
        EXPECT_EQ(ao->hashes, ai->hashes);  // audio copied once, packet for packet
        if (ext == ".mkv") {
            ASSERT_NE(first_of(po, AVMEDIA_TYPE_SUBTITLE), nullptr);
            EXPECT_EQ(first_of(po, AVMEDIA_TYPE_SUBTITLE)->hashes,
                      first_of(pi, AVMEDIA_TYPE_SUBTITLE)->hashes);
            EXPECT_TRUE(r.warnings.empty());
        } else {
            ASSERT_EQ(r.warnings.size(), 1u);  // MP4 cannot hold SubRip
            EXPECT_NE(r.warnings[0].find("subrip"), std::string::npos) << r.warnings[0];
        }
        const auto t = run_cmd("ffprobe -v error -show_entries format_tags=title -of csv=p=0 " + out);
        EXPECT_NE(t.output.find("film"), std::string::npos) << t.output;
    }
    for (const auto& e : fs::directory_iterator(dir_)) {
        EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
    }
}

TEST_F(SegmentConcat, BadSegmentsAreNamedAndLeaveNoOutput) {
    const std::string in = path("in.mp4");
    ffmpeg("-f lavfi -i testsrc2=size=32x24:rate=25 -frames:v 30 -c:v libx264 -pix_fmt yuv420p " + in);
    encode_range(in, path("a.mkv"), 0, 21);
    encode_range(in, path("b.mkv"), 21, 30);
    encode_range(in, path("narrow.mkv"), 21, 30, 16);
    const std::string out = path("out.mkv");
    EXPECT_NE(error_of({path("a.mkv"), path("missing.mkv")}, out)
                  .find("segment '" + path("missing.mkv") + "': no such file"),
              std::string::npos);
    EXPECT_NE(error_of({path("a.mkv"), path("narrow.mkv")}, out)
                  .find("segment '" + path("narrow.mkv") + "' differs from the first segment"),
              std::string::npos);
    EXPECT_NE(error_of({path("a.mkv"), path("a.mkv")}, out).find("starts before the end of the previous one"),
              std::string::npos);
    EXPECT_NE(error_of({}, out).find("no segments"), std::string::npos);
    EXPECT_FALSE(fs::exists(out));
    for (const auto& e : fs::directory_iterator(dir_)) {
        EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
    }
    // A good join next to an existing output needs overwrite.
    concat_segments({path("a.mkv"), path("b.mkv")}, "", out);
    EXPECT_EQ(frame_times(out).size(), 30u);
    EXPECT_NE(error_of({path("a.mkv"), path("b.mkv")}, out).find("exists"), std::string::npos);
    ConcatOptions o;
    o.overwrite = true;
    EXPECT_EQ(concat_segments({path("a.mkv"), path("b.mkv")}, in, out, o).video_packets, 30);
}
