// libFuzzer harness: image-sequence input (csrc/io/image_sequence): the %d pattern parser, natural order,
// folder and pattern scanning, start numbers and gaps, frames of another size, files that do not decode.
//
// Input: lines. Line 1: the spec relative to a scratch folder ("" = the folder itself, else a pattern such as
// f_%04d.png). Line 2: the start number ("" = none). Line 3: a frame rate. Every further line names a file
// created in the folder: "+name" a 4x3 PNG, "*name" a 2x2 PNG, "name" an empty file.
#include <flashvsr/flashvsr.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "csrc/io/image_io.h"
#include "csrc/io/image_sequence.h"
#include "fuzz/fuzz_common.h"

namespace {
namespace fs = std::filesystem;

std::vector<std::string> split_lines(const uint8_t* data, size_t size) {
    std::vector<std::string> lines(1);
    for (size_t i = 0; i < size; ++i) {
        if (data[i] == '\n') {
            lines.emplace_back();
        } else {
            lines.back() += static_cast<char>(data[i]);
        }
    }
    return lines;
}

/// No NUL, no way out of the scratch folder.
std::string tame(std::string s, bool allow_slash) {
    for (char& c : s) {
        if (c == '\0' || (c == '/' && !allow_slash)) {
            c = '_';
        }
    }
    for (size_t at; (at = s.find("..")) != std::string::npos;) {
        s.replace(at, 2, "__");
    }
    return s.size() > 200 ? s.substr(0, 200) : s;
}

const std::string& png_bytes(int w, int h) {
    static std::string small, large;
    std::string& out = w == 2 ? small : large;
    if (out.empty()) {
        const fs::path p = flashvsr::fuzz::scratch_root() / ("seed" + std::to_string(w) + ".png");
        flashvsr::io::write_image(p.string(), at::rand({h, w, 3}), 8);
        std::ifstream in(p, std::ios::binary);
        out.assign(std::istreambuf_iterator<char>(in), {});
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::vector<std::string> lines = split_lines(data, size);
    const std::string pattern = tame(lines[0], true);
    try {  // the parser alone, on the raw line
        const flashvsr::io::FramePattern p(lines[0]);
        for (size_t k = 3; k < lines.size() && k < 64; ++k) {
            const int64_t n = p.match(lines[k]);
            if (n >= 0 && p.format(n) != lines[k]) {
                flashvsr::fuzz::fail("match() disagrees with format()");
            }
        }
    } catch (const flashvsr::Error&) {
    }
    const fs::path dir = flashvsr::fuzz::fresh_folder("sequence");
    for (size_t k = 3; k < lines.size() && k < 64; ++k) {
        if (lines[k].empty()) {
            continue;
        }
        const char kind = lines[k][0];
        const std::string name = tame(kind == '+' || kind == '*' ? lines[k].substr(1) : lines[k], false);
        if (name.empty() || name == "." || name == "..") {
            continue;
        }
        std::ofstream f(dir / name, std::ios::binary);
        if (kind == '+') {
            f << png_bytes(4, 3);
        }
        if (kind == '*') {
            f << png_bytes(2, 2);
        }
    }
    int64_t start = -1;
    if (lines.size() > 1 && !lines[1].empty() && lines[1].size() < 19 &&
        lines[1].find_first_not_of("0123456789") == std::string::npos) {
        start = std::stoll(lines[1]);
    }
    int num = 25, den = 1;
    try {
        if (lines.size() > 2 && !lines[2].empty()) {
            flashvsr::io::parse_frame_rate(lines[2], &num, &den);
        }
    } catch (const flashvsr::Error&) {
    }
    const std::string spec = pattern.empty() ? dir.string() : (dir / pattern).string();
    (void)flashvsr::io::is_image_sequence_input(spec);
    (void)flashvsr::io::is_image_sequence_output(spec);
    try {
        flashvsr::io::ImageSequenceReader reader(spec, start, num, den);
        int64_t frames = 0;
        while (true) {
            const auto batch = reader.read(3);
            if (batch.rgb.size(0) == 0) {
                break;
            }
            frames += batch.rgb.size(0);
        }
        if (frames != reader.frame_count()) {
            flashvsr::fuzz::fail("frame count differs from frames read");
        }
    } catch (const flashvsr::Error&) {
    }
    return 0;
}
