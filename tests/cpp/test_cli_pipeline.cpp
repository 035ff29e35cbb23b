// The threaded decode -> engine -> encode pipeline of `flashvsr upscale` (--pipeline-depth N, default 2)
// gives the same output as the stages run in turn (--pipeline-depth 0): bit-identical decoded frames, the
// same frame count and timestamps, the same audio packets; for an image-sequence output, byte-identical
// files. A bad depth is a usage error, and --help documents the option.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cli_test_util.h"
#include "csrc/io/video_decoder.h"

namespace fs = std::filesystem;
using namespace flashvsr::testing_media;

namespace {

class CliPipeline : public CliTest {
  protected:
    /// Upscales `in` to `out` at the given depth (--batch 3: batches do not line up with the engine's
    /// chunks); returns the report.
    nlohmann::json upscale(const std::string& in, const std::string& out, int depth,
                           const std::string& extra = "") {
        const std::string rep = path("report" + std::to_string(reports_++) + ".json");
        const CmdResult r = cli("upscale " + in + " -o " + out + " --model-dir " + weights() +
                                " --scale 2 --device cpu --no-progress --batch 3 --pipeline-depth " +
                                std::to_string(depth) + " --report " + rep + " " + extra);
        EXPECT_EQ(r.code, 0) << r.output;
        std::ifstream f(rep);
        return nlohmann::json::parse(f);
    }
    int reports_ = 0;
};

/// Every frame of `path`, [n, H, W, 3] float (exact multiples of 1/255 for 8-bit video).
at::Tensor all_frames(const std::string& path) {
    flashvsr::io::VideoDecoder dec(path);
    std::vector<at::Tensor> parts;
    while (true) {
        flashvsr::io::FrameBatch b = dec.read(16);
        if (b.rgb.size(0) == 0) {
            break;
        }
        parts.push_back(b.rgb);
    }
    return at::cat(parts);
}

std::string file_bytes(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_F(CliPipeline, ThreadedOutputEqualsSequential) {
    const std::string in = path("in.mp4");
    constexpr int kFrames = 45;
    ffmpeg(
        "-f lavfi -i testsrc2=size=48x32:rate=25 -f lavfi -i sine=f=440 -frames:v 45 -t 1.8 -c:v libx264 "
        "-pix_fmt yuv420p -c:a aac " +
        in);
    // libx264's macroblock-tree rate control reads uninitialized memory (its bitstream varies with the heap's
    // old contents, with the ffmpeg CLI too: try MALLOC_PERTURB_), so it is off here; everything else is
    // the default encoder setup.
    const std::string x264 = "-e x264-params=no-mbtree=1";
    const nlohmann::json seq = upscale(in, path("seq.mp4"), 0, x264);
    const at::Tensor ref = all_frames(path("seq.mp4"));
    ASSERT_EQ(ref.size(0), kFrames);
    EXPECT_EQ(seq["frames_out"], kFrames);
    EXPECT_EQ(seq["pipeline_depth"], 0);
    const auto ref_times = frame_times(path("seq.mp4"));
    ASSERT_EQ(static_cast<int>(ref_times.size()), kFrames);
    const auto ref_packets = read_packets(path("seq.mp4")), in_packets = read_packets(in);
    ASSERT_NE(first_of(ref_packets, AVMEDIA_TYPE_AUDIO), nullptr);
    ASSERT_NE(first_of(ref_packets, AVMEDIA_TYPE_VIDEO), nullptr);
    EXPECT_EQ(first_of(ref_packets, AVMEDIA_TYPE_AUDIO)->hashes,
              first_of(in_packets, AVMEDIA_TYPE_AUDIO)->hashes);
    for (const int depth : {1, 2}) {
        SCOPED_TRACE("depth " + std::to_string(depth));
        const std::string out = path("pipe" + std::to_string(depth) + ".mp4");
        const nlohmann::json j = upscale(in, out, depth, x264);
        EXPECT_EQ(j["pipeline_depth"], depth);
        EXPECT_EQ(j["frames_in"], kFrames);
        EXPECT_EQ(j["frames_out"], kFrames);
        const at::Tensor got = all_frames(out);
        ASSERT_EQ(got.sizes(), ref.sizes());
        EXPECT_TRUE(at::equal(got, ref)) << "max diff " << (got - ref).abs().max().item<float>();
        EXPECT_EQ(frame_times(out), ref_times);  // same count and the same timestamps, exactly
        const auto packets = read_packets(out);
        ASSERT_NE(first_of(packets, AVMEDIA_TYPE_AUDIO), nullptr);
        EXPECT_EQ(first_of(packets, AVMEDIA_TYPE_AUDIO)->hashes,
                  first_of(ref_packets, AVMEDIA_TYPE_AUDIO)->hashes);
        // The video bitstream too, packet for packet.
        EXPECT_EQ(first_of(packets, AVMEDIA_TYPE_VIDEO)->hashes,
                  first_of(ref_packets, AVMEDIA_TYPE_VIDEO)->hashes);
        // Stage times are per thread and overlap; `run` is the wall time of decode -> encode.
        const auto& t = j["timings_s"];
        EXPECT_GT(t["run"].get<double>(), 0.0);
        EXPECT_GE(t["total"].get<double>(), t["run"].get<double>() + t["load"].get<double>() - 1e-3);
    }
}

TEST_F(CliPipeline, ThreadedImageSequenceEqualsSequential) {
    const std::string in = path("in.mp4");
    ffmpeg("-f lavfi -i testsrc2=size=32x24:rate=25 -frames:v 11 -c:v libx264 -pix_fmt yuv420p " + in);
    upscale(in, path("seq/%03d.png"), 0);
    upscale(in, path("pipe/%03d.png"), 2);
    auto names = list_dir(path("seq")), pipe_names = list_dir(path("pipe"));
    std::sort(names.begin(), names.end());
    std::sort(pipe_names.begin(), pipe_names.end());
    ASSERT_EQ(names.size(), 11u);
    EXPECT_EQ(pipe_names, names);
    for (const std::string& n : names) {
        EXPECT_EQ(file_bytes(fs::path(path("pipe")) / n), file_bytes(fs::path(path("seq")) / n)) << n;
    }
}

TEST_F(CliPipeline, BadDepthIsUsageErrorAndHelpDocumentsIt) {
    const CmdResult bad = cli("upscale " + path("x.mp4") + " -o " + path("y.mp4") + " --model-dir " +
                              weights() + " --pipeline-depth -1");
    EXPECT_EQ(bad.code, 2) << bad.output;
    EXPECT_NE(bad.output.find("--pipeline-depth must be >= 0"), std::string::npos) << bad.output;
    const CmdResult help = cli("upscale --help");
    const size_t at = help.output.find("--pipeline-depth N");
    ASSERT_NE(at, std::string::npos) << help.output;
    const std::string line = help.output.substr(at, help.output.find('\n', at) - at);
    EXPECT_NE(line.find("[default: 2]"), std::string::npos) << line;
}
