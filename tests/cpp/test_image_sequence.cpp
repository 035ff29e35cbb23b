// Image files and sequences (io/image_io, io/image_sequence): PNG 8/16-bit and TIFF 16-bit round trips are
// exact, EXR half within half precision and EXR float exact; grey -> RGB, alpha dropped; frame-number
// patterns; natural order; the reader's errors name the file; the writer's temporary folder, rename,
// partial folder and --overwrite rules.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "csrc/io/image_io.h"
#include "csrc/io/image_sequence.h"
#include "media_test_util.h"

namespace fs = std::filesystem;
using namespace flashvsr::io;

using flashvsr::testing_media::input_error_of;

namespace {

class ImageSeq : public flashvsr::testing_media::ScratchDirTest {};

/// Random integer levels 0..maxv as float [H, W, 3] in [0, 1] (exactly representable after quantizing).
at::Tensor levels(int h, int w, int64_t maxv) {
    return at::randint(0, maxv + 1, {h, w, 3}, at::kDouble).div(static_cast<double>(maxv)).to(at::kFloat);
}

int64_t max_level_diff(const at::Tensor& a, const at::Tensor& b, double maxv) {
    return (a.to(at::kDouble) * maxv)
        .round()
        .sub((b.to(at::kDouble) * maxv).round())
        .abs()
        .max()
        .item<int64_t>();
}

}  // namespace

TEST_F(ImageSeq, RoundTripsExactPerFormatAndDepth) {
    at::manual_seed(11);
    struct Case {
        const char* name;
        int bits;
        int64_t maxv;
    };
    for (const Case& c : {Case{"a.png", 8, 255}, Case{"b.png", 16, 65535}, Case{"c.tif", 16, 65535},
                          Case{"d.tiff", 8, 255}}) {
        SCOPED_TRACE(c.name);
        const at::Tensor img = levels(19, 23, c.maxv);
        encode_image(path(c.name), img, c.bits);
        ImageFileInfo info;
        const at::Tensor back = decode_image(path(c.name), &info);
        EXPECT_EQ(info.bits, c.bits);
        EXPECT_EQ(info.channels, 3);
        ASSERT_EQ(back.sizes(), img.sizes());
        EXPECT_EQ(max_level_diff(back, img, static_cast<double>(c.maxv)), 0);  // every value back exactly
    }
    // EXR: half within half precision (round to nearest: relative error <= 2^-11), float exact. Values
    // outside [0, 1] are clamped on reading.
    const at::Tensor img = at::rand({9, 13, 3});
    encode_image(path("h.exr"), img, 16);
    ImageFileInfo info;
    const at::Tensor half = decode_image(path("h.exr"), &info);
    EXPECT_EQ(info.bits, 32);
    EXPECT_LE(((half - img).abs() / img.clamp_min(6.1e-5)).max().item<float>(), 1.0f / 2048 + 1e-7f);
    EXPECT_TRUE(at::equal(half, img.to(at::kHalf).to(at::kFloat)));  // the same rounding as torch's
    encode_image(path("f.exr"), img, 32);
    EXPECT_TRUE(at::equal(decode_image(path("f.exr"), nullptr), img));
    // Bit depths a format cannot hold are refused, naming the file.
    EXPECT_NE(input_error_of([&] { encode_image(path("x.exr"), img, 8); }).find("x.exr"), std::string::npos);
    EXPECT_NE(input_error_of([&] { encode_image(path("x.png"), img, 32); }).find("8 or 16"),
              std::string::npos);
}

TEST_F(ImageSeq, GreyBecomesRgbAndAlphaIsDropped) {
    using flashvsr::testing_media::ffmpeg;
    ffmpeg("-f lavfi -i color=c=0x336699@0.5:s=8x6,format=rgba -frames:v 1 " + path("rgba.png"));
    ffmpeg("-f lavfi -i color=c=0x808080:s=8x6,format=gray16be -frames:v 1 " + path("grey16.png"));
    ImageFileInfo info;
    at::Tensor t = decode_image(path("rgba.png"), &info);
    EXPECT_EQ(info.channels, 4);
    ASSERT_EQ(t.sizes(), (std::vector<int64_t>{6, 8, 3}));
    EXPECT_EQ(std::lround(t[0][0][0].item<float>() * 255), 0x33);  // RGB order, alpha gone
    EXPECT_EQ(std::lround(t[0][0][2].item<float>() * 255), 0x99);
    t = decode_image(path("grey16.png"), &info);
    EXPECT_EQ(info.channels, 1);
    EXPECT_EQ(info.bits, 16);
    EXPECT_TRUE(at::equal(t.select(2, 0), t.select(2, 2)));
    // A sequence of such images says so once.
    fs::create_directories(path("s"));
    fs::copy(path("rgba.png"), path("s/0.png"));
    ImageSequenceReader r(path("s"), -1, 25, 1);
    ASSERT_EQ(r.notes().size(), 1u);
    EXPECT_NE(r.notes()[0].find("alpha channel of '" + path("s/0.png") + "'"), std::string::npos);
}

TEST_F(ImageSeq, PatternsFormatAndMatch) {
    const FramePattern p("out/frame_%05d.png");
    EXPECT_EQ(p.folder(), "out");
    EXPECT_EQ(p.format(7), "frame_00007.png");
    EXPECT_EQ(p.format(1234567), "frame_1234567.png");
    EXPECT_EQ(p.match("frame_00007.png"), 7);
    EXPECT_EQ(p.match("frame_1234567.png"), 1234567);
    EXPECT_EQ(p.match("frame_7.png"), -1);  // not what %05d writes
    EXPECT_EQ(p.match("frame_00007.tif"), -1);
    const FramePattern q("%d%%.exr");
    EXPECT_EQ(q.folder(), "");
    EXPECT_EQ(q.format(12), "12%.exr");
    EXPECT_EQ(q.match("12%.exr"), 12);
    for (const char* bad : {"a/b.png", "a/%d_%d.png", "a/%s.png", "a%d/b.png", "a/%x.png"}) {
        EXPECT_NE(input_error_of([&] { FramePattern x(bad); }).find("bad frame-number pattern"),
                  std::string::npos)
            << bad;
    }
    int num = 0, den = 0;
    parse_frame_rate("24000/1001", &num, &den);
    EXPECT_EQ(num, 24000);
    EXPECT_EQ(den, 1001);
    parse_frame_rate("29.97", &num, &den);
    EXPECT_EQ(num, 2997);
    EXPECT_EQ(den, 100);
    EXPECT_NE(input_error_of([&] { parse_frame_rate("fast", &num, &den); }).find("'fast'"),
              std::string::npos);
    EXPECT_NE(input_error_of([&] { parse_frame_rate("-5", &num, &den); }).find("'-5'"), std::string::npos);
}

TEST_F(ImageSeq, ReaderOrderStartNumberAndStreaming) {
    at::manual_seed(2);
    fs::create_directories(path("d"));
    std::vector<at::Tensor> imgs;
    const char* names[] = {"f1.png", "f2.png", "f10.png", "f9.png"};  // natural order: 1, 2, 9, 10
    for (int i = 0; i < 4; ++i) {
        imgs.push_back(levels(6, 10, 65535));
        encode_image(path(std::string("d/") + names[i]), imgs.back(), 16);
    }
    std::ofstream(path("d/notes.txt")) << "ignored";
    ImageSequenceReader r(path("d"), -1, 24000, 1001);
    EXPECT_EQ(r.frame_count(), 4);
    EXPECT_EQ(r.info().bits, 16);
    EXPECT_EQ(r.info().tb_num, 1001);
    EXPECT_EQ(r.info().tb_den, 24000);
    EXPECT_EQ(r.file(2), path("d/f9.png"));
    FrameBatch b = r.read(3);
    ASSERT_EQ(b.rgb.size(0), 3);
    EXPECT_EQ(b.pts, (std::vector<int64_t>{0, 1, 2}));
    EXPECT_EQ(max_level_diff(b.rgb[2], imgs[3], 65535), 0);  // f9 third, 16-bit values exact
    b = r.read(3);
    ASSERT_EQ(b.rgb.size(0), 1);
    EXPECT_EQ(max_level_diff(b.rgb[0], imgs[2], 65535), 0);  // f10 last
    EXPECT_EQ(r.read(3).rgb.size(0), 0);

    // A pattern: the lowest number present, or --start-number.
    fs::create_directories(path("p"));
    for (int n = 3; n < 8; ++n) {
        encode_image(path("p/x_" + FramePattern("%04d").format(n) + ".png"), imgs[0], 8);
    }
    ImageSequenceReader a(path("p/x_%04d.png"), -1, 25, 1);
    EXPECT_EQ(a.start_number(), 3);
    EXPECT_EQ(a.frame_count(), 5);
    EXPECT_EQ(a.info().bits, 8);
    ImageSequenceReader s(path("p/x_%04d.png"), 5, 25, 1);
    EXPECT_EQ(s.frame_count(), 3);
    EXPECT_EQ(s.file(0), path("p/x_0005.png"));
}

TEST_F(ImageSeq, ReaderErrorsNameTheFile) {
    const at::Tensor img = at::rand({6, 8, 3});
    EXPECT_NE(input_error_of([&] {
                  ImageSequenceReader r(path("none/%03d.png"), -1, 25, 1);
              }).find("no such folder '" + path("none") + "'"),
              std::string::npos);
    fs::create_directories(path("empty"));
    EXPECT_NE(input_error_of([&] { ImageSequenceReader r(path("empty"), -1, 25, 1); }).find("holds no .png"),
              std::string::npos);
    fs::create_directories(path("mixed"));
    encode_image(path("mixed/1.png"), img, 8);
    encode_image(path("mixed/2.tif"), img, 8);
    EXPECT_NE(
        input_error_of([&] { ImageSequenceReader r(path("mixed"), -1, 25, 1); }).find("mixes .png and .tif"),
        std::string::npos);
    // Sizes and decodability are checked frame by frame, naming the file.
    fs::create_directories(path("sizes"));
    encode_image(path("sizes/1.png"), img, 8);
    encode_image(path("sizes/2.png"), at::rand({6, 9, 3}), 8);
    ImageSequenceReader sz(path("sizes"), -1, 25, 1);
    EXPECT_NE(input_error_of([&] {
                  sz.read(4);
              }).find("'" + path("sizes/2.png") + "' is 9x6, the sequence's first image"),
              std::string::npos);
    fs::create_directories(path("bad"));
    encode_image(path("bad/1.png"), img, 8);
    std::ofstream(path("bad/2.png")) << "not a png";
    ImageSequenceReader bad(path("bad"), -1, 25, 1);
    EXPECT_NE(input_error_of([&] { bad.read(4); }).find("'" + path("bad/2.png") + "' is not an image"),
              std::string::npos);
    // Patterns: a gap, a missing start number, nothing matching.
    fs::create_directories(path("gap"));
    for (int n : {0, 1, 3}) {
        encode_image(path("gap/" + std::to_string(n) + ".png"), img, 8);
    }
    EXPECT_NE(input_error_of([&] {
                  ImageSequenceReader r(path("gap/%d.png"), -1, 25, 1);
              }).find("'" + path("gap/2.png") + "' is missing"),
              std::string::npos);
    EXPECT_NE(
        input_error_of([&] { ImageSequenceReader r(path("gap/%d.png"), 7, 25, 1); }).find("--start-number 7"),
        std::string::npos);
    EXPECT_NE(input_error_of([&] {
                  ImageSequenceReader r(path("gap/%04d.png"), -1, 25, 1);
              }).find("no file matches"),
              std::string::npos);
}

TEST_F(ImageSeq, WriterTemporaryFolderRenameAndOverwriteRules) {
    const at::Tensor frames = at::rand({3, 4, 6, 3});
    {
        ImageSequenceWriter w(path("out/"), 6, 4, 16, 0, false);  // 16-bit source -> 16-bit PNG
        EXPECT_EQ(w.pix_fmt(), "png 16-bit");
        w.write(frames);
        EXPECT_FALSE(fs::exists(path("out")));
        EXPECT_TRUE(fs::exists(path("out.tmp-" + std::to_string(::getpid())) + "/000002.png"));
        EXPECT_EQ(w.finish(), path("out/%06d.png"));
    }
    EXPECT_FALSE(fs::exists(path("out.tmp-" + std::to_string(::getpid()))));
    ImageFileInfo info;
    decode_image(path("out/000002.png"), &info);
    EXPECT_EQ(info.bits, 16);
    EXPECT_EQ(flashvsr::testing_media::list_dir(path("out")).size(), 3u);
    // Existing folder: refused without overwrite; with it, replaced only when it holds just such frames.
    EXPECT_NE(input_error_of([&] {
                  ImageSequenceWriter w(path("out/%06d.png"), 6, 4, 8, 0, false);
              }).find("exists (use --overwrite to replace it)"),
              std::string::npos);
    {
        ImageSequenceWriter w(path("out/%06d.png"), 6, 4, 8, 0, true);
        w.write(frames.slice(0, 0, 1));
        w.finish();
    }
    EXPECT_EQ(flashvsr::testing_media::list_dir(path("out")).size(), 1u);
    decode_image(path("out/000000.png"), &info);
    EXPECT_EQ(info.bits, 8);
    std::ofstream(path("out/keep.txt")) << "mine";
    EXPECT_NE(input_error_of([&] {
                  ImageSequenceWriter w(path("out/%06d.png"), 6, 4, 8, 0, true);
              }).find("holds other things than"),
              std::string::npos);
    // Unfinished: nothing left. Cancelled: DIR.partial.
    {
        ImageSequenceWriter w(path("gone/%03d.exr"), 6, 4, 8, 0, false);
        w.write(frames);
    }
    EXPECT_FALSE(fs::exists(path("gone")));
    EXPECT_FALSE(fs::exists(path("gone.tmp-" + std::to_string(::getpid()))));
    {
        ImageSequenceWriter w(path("cut/%03d.exr"), 6, 4, 8, 32, false);
        EXPECT_EQ(w.pix_fmt(), "exr float");
        w.write(frames.slice(0, 0, 2));
        EXPECT_EQ(w.finish_partial(), path("cut.partial/%03d.exr"));
    }
    EXPECT_FALSE(fs::exists(path("cut")));
    EXPECT_EQ(flashvsr::testing_media::list_dir(path("cut.partial")).size(), 2u);
    // Bad specs.
    EXPECT_NE(input_error_of([&] {
                  ImageSequenceWriter w(path("x.png"), 6, 4, 8, 0, false);
              }).find("frame-number pattern"),
              std::string::npos);
    EXPECT_NE(input_error_of([&] {
                  ImageSequenceWriter w("%05d.png", 6, 4, 8, 0, false);
              }).find("a folder of its own"),
              std::string::npos);
    EXPECT_NE(input_error_of([&] {
                  ImageSequenceWriter w(path("no/such/%05d.png"), 6, 4, 8, 0, false);
              }).find("no folder '" + path("no") + "'"),
              std::string::npos);
    EXPECT_NE(
        input_error_of([&] { ImageSequenceWriter w(path("e/%05d.exr"), 6, 4, 8, 8, false); }).find("EXR"),
        std::string::npos);
}

// Time per frame of the PNG/TIFF/EXR paths at 1280x720 random pixels (printed: the worst case for the
// compressors), and each file read back within its format's precision.
TEST_F(ImageSeq, TimePerFrame) {
    at::manual_seed(4);
    const at::Tensor img = at::rand({720, 1280, 3});
    struct Case {
        const char* name;
        int bits;
    };
    for (const Case& c : {Case{"t.png", 8}, Case{"t16.png", 16}, Case{"t16.tif", 16}, Case{"t.exr", 16}}) {
        const auto t0 = std::chrono::steady_clock::now();
        encode_image(path(c.name), img, c.bits);
        const auto t1 = std::chrono::steady_clock::now();
        const at::Tensor back = decode_image(path(c.name), nullptr);
        const auto t2 = std::chrono::steady_clock::now();
        ASSERT_EQ(back.sizes(), img.sizes());
        EXPECT_LE((back - img).abs().max().item<float>(), c.bits == 8 ? 0.5f / 255 + 1e-6f : 2.5e-4f)
            << c.name;
        std::cout << "[image_io] 1280x720 " << c.name << " (" << c.bits << "-bit): write "
                  << std::chrono::duration<double, std::milli>(t1 - t0).count() << " ms, read "
                  << std::chrono::duration<double, std::milli>(t2 - t1).count() << " ms, "
                  << fs::file_size(path(c.name)) / 1024 << " KiB\n";
    }
}
