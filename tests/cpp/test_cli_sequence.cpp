// `flashvsr upscale` with image sequences, through the built CLI (tiny random weights, scale 2): a 16-bit
// PNG sequence -> 16-bit PNGs x2 (same count); video -> PNG sequence (frame count kept, audio noted);
// PNG sequence -> mp4 at --fps 24000/1001 (frame count and rate); bad inputs -> one-line error naming the
// file, exit 1, no output folder; --overwrite only replaces a folder of frames; Ctrl-C -> DIR.partial/.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cli_test_util.h"
#include "csrc/io/image_io.h"
#include "csrc/io/probe.h"

namespace fs = std::filesystem;
using namespace flashvsr::testing_media;

namespace {

class CliSequence : public CliTest {
  protected:
    static CmdResult upscale(const std::string& in, const std::string& out, const std::string& more = "") {
        return run_cmd(std::string(FLASHVSR_CLI_PATH) + " upscale " + in + " -o " + out + " --model-dir " +
                       weights() + " --scale 2 --device cpu --no-progress " + more);
    }
};

size_t count_files(const std::string& dir) {
    std::error_code ec;
    return fs::is_directory(dir, ec) ? list_dir(dir).size() : 0;
}

}  // namespace

TEST_F(CliSequence, Png16SequenceUpscalesTo16BitPngs) {
    fs::create_directories(path("in"));
    ffmpeg("-f lavfi -i testsrc2=size=32x24:rate=25 -frames:v 5 -pix_fmt rgb48be -start_number 1 " +
           path("in/f_%03d.png"));
    const CmdResult r = upscale(path("in/f_%03d.png"), path("out/"), "--report " + path("r.json"));
    ASSERT_EQ(r.code, 0) << r.output;
    ASSERT_EQ(count_files(path("out")), 5u);
    for (int i = 0; i < 5; ++i) {
        flashvsr::io::ImageFileInfo info;
        const std::string f = path("out/00000" + std::to_string(i) + ".png");  // numbered from 0
        flashvsr::io::decode_image(f, &info);
        EXPECT_EQ(info.width, 64) << f;
        EXPECT_EQ(info.height, 48) << f;
        EXPECT_EQ(info.bits, 16) << f;
    }
    std::ifstream rf(path("r.json"));
    const auto j = nlohmann::json::parse(rf);
    EXPECT_EQ(j["frames_out"], 5);
    EXPECT_EQ(j["pix_fmt"], "png 16-bit");
    EXPECT_EQ(j["output"], path("out/%06d.png"));
    for (const auto& n : list_dir(dir_)) {
        EXPECT_EQ(n.find(".tmp-"), std::string::npos) << n;
    }
    // The same folder (natural order) to 8-bit TIFF and half EXR.
    ASSERT_EQ(upscale(path("in"), path("tif/%04d.tif"), "--bit-depth 8").code, 0);
    flashvsr::io::ImageFileInfo info;
    flashvsr::io::decode_image(path("tif/0004.tif"), &info);
    EXPECT_EQ(info.bits, 8);
    EXPECT_EQ(count_files(path("tif")), 5u);
    ASSERT_EQ(upscale(path("in"), path("exr/%d.exr")).code, 0);
    EXPECT_EQ(count_files(path("exr")), 5u);
}

TEST_F(CliSequence, VideoToPngSequenceKeepsFrameCount) {
    ffmpeg(
        "-f lavfi -i testsrc2=size=32x24:rate=25 -f lavfi -i sine=f=440:duration=0.84 -frames:v 21 -c:v "
        "libx264 -pix_fmt yuv420p -c:a aac " +
        path("in.mp4"));
    const CmdResult r = upscale(path("in.mp4"), path("seq/%04d.png"));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(count_files(path("seq")), frame_times(path("in.mp4")).size());
    EXPECT_EQ(count_files(path("seq")), 21u);
    EXPECT_NE(r.output.find("note: an image sequence holds no audio"), std::string::npos) << r.output;
    flashvsr::io::ImageFileInfo info;
    flashvsr::io::decode_image(path("seq/0020.png"), &info);
    EXPECT_EQ(info.bits, 8);
    EXPECT_EQ(info.width, 64);
}

TEST_F(CliSequence, PngSequenceToVideoAtGivenRate) {
    fs::create_directories(path("in"));
    ffmpeg("-f lavfi -i testsrc2=size=32x24:rate=25 -frames:v 7 " + path("in/%02d.png"));
    const CmdResult r = upscale(path("in/%02d.png"), path("out.mp4"), "--fps 24000/1001");
    ASSERT_EQ(r.code, 0) << r.output;
    const auto t = frame_times(path("out.mp4"));
    ASSERT_EQ(t.size(), 7u);
    for (size_t i = 0; i < t.size(); ++i) {
        EXPECT_NEAR(t[i] - t[0], i * 1001.0 / 24000.0, 1e-4) << i;
    }
    const auto info = flashvsr::io::probe(path("out.mp4"));
    const auto& v = info.streams.at(static_cast<size_t>(info.best_video));
    EXPECT_EQ(v.fps_num, 24000);
    EXPECT_EQ(v.fps_den, 1001);
    EXPECT_EQ(v.width, 64);
    // Without --fps: 25.
    ASSERT_EQ(upscale(path("in"), path("out25.mkv")).code, 0);
    const auto t25 = frame_times(path("out25.mkv"));
    ASSERT_EQ(t25.size(), 7u);
    EXPECT_NEAR(t25[6] - t25[0], 6 / 25.0, 1e-3);
}

TEST_F(CliSequence, BadInputsOneLineErrorNoOutputFolder) {
    const at::Tensor img = at::rand({24, 32, 3});
    fs::create_directories(path("empty"));
    fs::create_directories(path("sizes"));
    flashvsr::io::encode_image(path("sizes/1.png"), img, 8);
    flashvsr::io::encode_image(path("sizes/2.png"), img, 8);
    flashvsr::io::encode_image(path("sizes/3.png"), at::rand({24, 30, 3}), 8);
    fs::create_directories(path("corrupt"));
    for (int i = 0; i < 6; ++i) {
        flashvsr::io::encode_image(path("corrupt/" + std::to_string(i) + ".png"), img, 8);
    }
    std::ofstream(path("corrupt/4.png"), std::ios::trunc) << "garbage";
    fs::create_directories(path("good"));
    flashvsr::io::encode_image(path("good/0.png"), img, 8);
    fs::create_directories(path("taken"));
    std::ofstream(path("taken/000000.png")) << "x";
    struct Case {
        std::string in, out, more, message;
        int code;
    };
    const std::string out = path("out/");
    const std::vector<Case> cases = {
        {path("missing/%04d.png"), out, "", "no such folder '" + path("missing") + "'", 1},
        {path("nodir/"), out, "", "cannot open '" + path("nodir/") + "': no such folder", 1},
        {path("empty"), out, "",
         "the folder '" + path("empty") + "' holds no .png, .tif, .tiff or .exr images", 1},
        {path("sizes"), out, "", "'" + path("sizes/3.png") + "' is 30x24, the sequence's first image", 1},
        {path("corrupt"), out, "", "'" + path("corrupt/4.png") + "' is not an image", 1},
        {path("good"), path("taken/"), "",
         "the output folder '" + path("taken") + "' exists (use --overwrite", 1},
        {path("good"), path("x.png"), "", "needs a frame-number pattern", 1},
        {path("good"), out, "--fps fast", "--fps: not a frame rate: 'fast'", 2},
        {path("good"), out, "-c:v libx265", "-c:v applies to video output", 2},
        {path("good"), path("o.mp4"), "--bit-depth 16", "--bit-depth applies to image-sequence output", 2},
        {path("good"), out, "--start 1", "--start/--end apply to video input", 2},
        {path("good"), path("good/"), "--overwrite", "is the input's folder", 1},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.in + " -> " + c.out + " " + c.more);
        const CmdResult r = upscale(c.in, c.out, c.more);
        EXPECT_EQ(r.code, c.code) << r.output;
        EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
        EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
        EXPECT_FALSE(fs::exists(path("out")));
    }
    for (const auto& n : list_dir(dir_)) {
        EXPECT_EQ(n.find(".tmp-"), std::string::npos) << n;
        EXPECT_EQ(n.find(".partial"), std::string::npos) << n;
    }
    // EXR switched off by the user (OpenCV's own switch): refused before the run, in one line.
    const CmdResult exr =
        run_cmd("OPENCV_IO_ENABLE_OPENEXR=0 " + std::string(FLASHVSR_CLI_PATH) + " upscale " + path("good") +
                " -o " + path("out/%03d.exr") + " --model-dir " + weights() + " --device cpu --no-progress");
    EXPECT_EQ(exr.code, 1) << exr.output;
    EXPECT_NE(exr.output.find("cannot write exr half images for '" + path("out/%03d.exr") + "'"),
              std::string::npos)
        << exr.output;
    EXPECT_EQ(std::count(exr.output.begin(), exr.output.end(), '\n'), 1) << exr.output;
    EXPECT_FALSE(fs::exists(path("out")));
    EXPECT_EQ(fs::file_size(path("taken/000000.png")), 1u);  // untouched
    EXPECT_EQ(count_files(path("good")), 1u);
    // --overwrite replaces a folder that holds only frames of the pattern, never other files.
    const CmdResult ow = upscale(path("good"), path("taken/"), "--overwrite");
    ASSERT_EQ(ow.code, 0) << ow.output;
    flashvsr::io::ImageFileInfo info;
    flashvsr::io::decode_image(path("taken/000000.png"), &info);
    EXPECT_EQ(info.width, 64);
    std::ofstream(path("taken/mine.txt")) << "keep";
    const CmdResult keep = upscale(path("good"), path("taken/"), "--overwrite");
    EXPECT_EQ(keep.code, 1) << keep.output;
    EXPECT_NE(keep.output.find("holds other things than"), std::string::npos) << keep.output;
    EXPECT_TRUE(fs::exists(path("taken/mine.txt")));
}

TEST_F(CliSequence, HelpListsSequenceOptions) {
    const CmdResult r = run_cmd(std::string(FLASHVSR_CLI_PATH) + " upscale --help");
    EXPECT_EQ(r.code, 0);
    for (const char* o : {"--fps RATE", "--start-number N", "--bit-depth 8|16|32", "DIR/%05d.png",
                          "DIR.partial/", "[default: 25]", "alpha is dropped"}) {
        EXPECT_NE(r.output.find(o), std::string::npos) << o;
    }
    const CmdResult d = run_cmd(std::string(FLASHVSR_CLI_PATH) + " download --help");
    EXPECT_NE(d.output.find("--api-url"), std::string::npos) << d.output;
}

TEST_F(CliSequence, SigintKeepsPartialFolder) {
    ffmpeg("-f lavfi -i testsrc2=size=32x24:rate=25 -frames:v 400 -c:v libx264 -pix_fmt yuv420p " +
           path("long.mp4"));
    const std::string in = path("long.mp4"), out = path("frames/");
    const Interrupted r = interrupt_upscale(in, out, 8);
    EXPECT_EQ(r.kept, path("frames.partial/%06d.png"));
    ASSERT_GE(r.done, 8) << r.err;
    const size_t done = static_cast<size_t>(r.done);
    EXPECT_LT(done, 400u);
    EXPECT_EQ(count_files(path("frames.partial")), done);
    EXPECT_FALSE(fs::exists(path("frames")));
    std::cout << "[cli-seq] SIGINT after >= 8 frames: " << done << " PNGs kept in frames.partial/\n";
}
