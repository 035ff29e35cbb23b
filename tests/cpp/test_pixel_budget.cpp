// The image header probe (io/image_header) and the pixel budget: sizes read from headers without decoding,
// huge or damaged headers refused with a message naming the file, before anything is allocated.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "csrc/io/image_header.h"
#include "csrc/io/image_io.h"
#include "csrc/io/image_sequence.h"
#include "csrc/io/synth_clip.h"
#include "csrc/io/video_decoder.h"
#include "media_test_util.h"

namespace fs = std::filesystem;
using namespace flashvsr::io;

using flashvsr::testing_media::input_error_of;

namespace {

class PixelBudget : public flashvsr::testing_media::ScratchDirTest {
  protected:
    std::string bytes_of(const std::string& p) {
        std::ifstream in(p, std::ios::binary);
        return {std::istreambuf_iterator<char>(in), {}};
    }
    void put(const std::string& p, const std::string& data) { std::ofstream(p, std::ios::binary) << data; }
};

/// A valid 8-bit PNG of w x h whose IHDR then claims `cw` x `ch` (CRC not updated: the probe reads no CRC).
std::string png_claiming(const std::string& png, uint32_t cw, uint32_t ch) {
    std::string b = png;
    const uint32_t be_w = __builtin_bswap32(cw), be_h = __builtin_bswap32(ch);
    std::memcpy(b.data() + 16, &be_w, 4);
    std::memcpy(b.data() + 20, &be_h, 4);
    return b;
}

}  // namespace

TEST_F(PixelBudget, HeaderSizesOfEveryFormatMatchTheImage) {
    const at::Tensor rgb = at::rand({7, 13, 3});
    for (const char* name : {"a.png", "b.tif", "c.exr", "d.jpg", "e.bmp", "f.webp", "g.ppm"}) {
        const int bits = std::string(name).find(".exr") != std::string::npos ? 16 : 8;
        write_image(path(name), rgb, bits);
        const auto s = read_image_size(path(name));
        ASSERT_TRUE(s.has_value()) << name;
        EXPECT_EQ(s->width, 13) << name;
        EXPECT_EQ(s->height, 7) << name;
    }
    write_image(path("h.png"), rgb, 16);
    EXPECT_EQ(read_image_size(path("h.png"))->width, 13);
}

TEST_F(PixelBudget, HugeClaimIsRefusedBeforeDecoding) {
    write_image(path("a.png"), at::rand({4, 4, 3}), 8);
    put(path("huge.png"), png_claiming(bytes_of(path("a.png")), 100000, 100000));
    const std::string msg = input_error_of([&] { decode_image(path("huge.png"), nullptr); });
    EXPECT_NE(msg.find("huge.png' is 100000x100000 pixels, more than the pixel budget of 67108864"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("--max-pixels"), std::string::npos) << msg;
    // A lower budget refuses a real image; a raised one lets the 4x4 image through.
    EXPECT_NE(input_error_of([&] { decode_image(path("a.png"), nullptr, 15); }).find("pixel budget of 15"),
              std::string::npos);
    EXPECT_EQ(decode_image(path("a.png"), nullptr, 16).size(0), 4);
}

TEST_F(PixelBudget, DamagedAndUnknownHeadersNameTheFile) {
    write_image(path("a.png"), at::rand({4, 4, 3}), 8);
    put(path("short.png"), bytes_of(path("a.png")).substr(0, 12));
    EXPECT_NE(input_error_of([&] {
                  decode_image(path("short.png"), nullptr);
              }).find("short.png' is a damaged PNG file (truncated header)"),
              std::string::npos);
    put(path("zero.png"), png_claiming(bytes_of(path("a.png")), 0, 4));
    EXPECT_NE(input_error_of([&] { decode_image(path("zero.png"), nullptr); }).find("size 0x4"),
              std::string::npos);
    put(path("text.png"), "hello, not an image");
    EXPECT_NE(input_error_of([&] {
                  decode_image(path("text.png"), nullptr);
              }).find("text.png' is not an image flashvsr can decode (PNG, TIFF, EXR, JPEG, BMP, WebP, PNM)"),
              std::string::npos);
    put(path("empty.png"), "");
    EXPECT_NE(input_error_of([&] { decode_image(path("empty.png"), nullptr); }).find("empty.png"),
              std::string::npos);
    fs::create_directory(path("dir.png"));
    EXPECT_NE(input_error_of([&] { decode_image(path("dir.png"), nullptr); }).find("not a regular file"),
              std::string::npos);
    // EXR whose header ends before its dataWindow
    write_image(path("b.exr"), at::rand({4, 4, 3}), 16);
    put(path("cut.exr"), bytes_of(path("b.exr")).substr(0, 20));
    EXPECT_NE(input_error_of([&] {
                  decode_image(path("cut.exr"), nullptr);
              }).find("cut.exr' is a damaged EXR file"),
              std::string::npos);
}

TEST_F(PixelBudget, SequenceAndVideoReadersApplyTheBudget) {
    fs::create_directory(path("seq"));
    write_image(path("seq/f1.png"), at::rand({8, 8, 3}), 8);
    write_image(path("seq/f2.png"), at::rand({8, 8, 3}), 8);
    EXPECT_NE(input_error_of([&] {
                  ImageSequenceReader(path("seq"), -1, 25, 1, 63);
              }).find("f1.png' is 8x8 pixels"),
              std::string::npos);
    EXPECT_EQ(ImageSequenceReader(path("seq"), -1, 25, 1, 64).frame_count(), 2);

    SynthClipOptions o;
    o.width = 64;
    o.height = 48;
    o.frames = 3;
    o.audio = false;
    write_synthetic_clip(path("clip.mp4"), o);
    DecoderOptions d;
    d.max_pixels = 64 * 48 - 1;
    const std::string msg = input_error_of([&] { VideoDecoder(path("clip.mp4"), d); });
    EXPECT_NE(msg.find("clip.mp4' is 64x48 pixels, more than the pixel budget of 3071"), std::string::npos)
        << msg;
    d.max_pixels = 64 * 48;
    EXPECT_EQ(VideoDecoder(path("clip.mp4"), d).info().width, 64);
}
