#include "csrc/io/image_sequence.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>

extern "C" {
#include <libavutil/parseutils.h>
#include <libavutil/rational.h>
}

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <filesystem>
#include <set>

#include "csrc/io/image_io.h"

namespace flashvsr::io {
namespace fs = std::filesystem;
namespace {

std::string squote(const std::string& p) { return "'" + p + "'"; }

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

std::string lower_ext(const std::string& path) { return lower(fs::path(path).extension().string()); }

bool has_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

/// Natural order: runs of digits compare as numbers ("f2" < "f10"), the rest byte by byte; equal numbers
/// with more leading zeros come later, so the order is total.
bool natural_less(const std::string& a, const std::string& b) {
    size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
        if (has_digit(a[i]) && has_digit(b[j])) {
            size_t ie = i, je = j;
            while (ie < a.size() && has_digit(a[ie])) {
                ++ie;
            }
            while (je < b.size() && has_digit(b[je])) {
                ++je;
            }
            size_t iz = i, jz = j;  // skip leading zeros
            while (iz + 1 < ie && a[iz] == '0') {
                ++iz;
            }
            while (jz + 1 < je && b[jz] == '0') {
                ++jz;
            }
            const std::string_view na(a.data() + iz, ie - iz), nb(b.data() + jz, je - jz);
            if (na.size() != nb.size()) {
                return na.size() < nb.size();
            }
            if (na != nb) {
                return na < nb;
            }
            if (ie - i != je - j) {
                return ie - i < je - j;
            }
            i = ie;
            j = je;
        } else {
            if (a[i] != b[j]) {
                return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
            }
            ++i;
            ++j;
        }
    }
    return a.size() - i < b.size() - j;
}

std::string depth_name(const std::string& ext, int bits) {
    const std::string e = ext.empty() ? "?" : ext.substr(1);
    if (e == "exr") {
        return "exr " + std::string(bits == 32 ? "float" : "half");
    }
    return e + " " + std::to_string(bits) + "-bit";
}

/// Whether `dir` may be replaced by a new result of `pattern`: it does not exist, is empty, or (with
/// `overwrite`) holds nothing but files named by the pattern. Otherwise `why` says what is in the way.
bool replaceable(const std::string& dir, const FramePattern& pattern, bool overwrite, std::string* why) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) {
        return true;
    }
    if (!fs::is_directory(dir, ec)) {
        *why = "the output " + squote(dir) + " exists and is not a folder";
        return false;
    }
    bool empty = true;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        empty = false;
        if (!overwrite) {
            break;
        }
        if (!e.is_regular_file() || pattern.match(e.path().filename().string()) < 0) {
            *why = "the output folder " + squote(dir) + " holds other things than " + squote(pattern.text()) +
                   " frames (" + squote(e.path().filename().string()) +
                   "); --overwrite replaces only a folder of such frames";
            return false;
        }
    }
    if (ec) {
        *why = "cannot read the output folder " + squote(dir) + ": " + ec.message();
        return false;
    }
    if (!empty && !overwrite) {
        *why = "the output folder " + squote(dir) + " exists (use --overwrite to replace it)";
        return false;
    }
    return true;
}

}  // namespace

bool is_sequence_extension(const std::string& ext) {
    const std::string e = lower(ext);
    return e == ".png" || e == ".tif" || e == ".tiff" || e == ".exr";
}

bool is_image_sequence_input(const std::string& spec) {
    std::error_code ec;
    if (fs::is_directory(spec, ec) || (!spec.empty() && spec.back() == '/')) {
        return true;
    }
    return is_sequence_extension(fs::path(spec).extension().string()) &&
           fs::path(spec).filename().string().find('%') != std::string::npos;
}

bool is_image_sequence_output(const std::string& spec) {
    std::error_code ec;
    return (!spec.empty() && spec.back() == '/') || fs::is_directory(spec, ec) ||
           is_sequence_extension(fs::path(spec).extension().string());
}

void parse_frame_rate(const std::string& text, int* num, int* den) {
    AVRational r{0, 1};
    if (av_parse_video_rate(&r, text.c_str()) < 0 || r.num <= 0 || r.den <= 0) {
        throw InputError("not a frame rate: '" + text + "' (use e.g. 25, 29.97 or 24000/1001)");
    }
    av_reduce(&r.num, &r.den, r.num, r.den, INT_MAX);
    *num = r.num;
    *den = r.den;
}

// ---- FramePattern ----------------------------------------------------------------------------------------

FramePattern::FramePattern(const std::string& pattern) : text_(pattern) {
    const size_t slash = pattern.rfind('/');
    folder_ = slash == std::string::npos ? "" : pattern.substr(0, slash);
    const std::string name = slash == std::string::npos ? pattern : pattern.substr(slash + 1);
    const auto bad = [&](const std::string& why) {
        return InputError("bad frame-number pattern " + squote(pattern) + ": " + why +
                          " (use one %d, %5d or %05d in the file name, e.g. frames/%05d.png)");
    };
    if (folder_.find('%') != std::string::npos) {
        throw bad("'%' in the folder part");
    }
    int conversions = 0;
    std::string* out = &prefix_;
    for (size_t i = 0; i < name.size(); ++i) {
        if (name[i] != '%') {
            *out += name[i];
            continue;
        }
        if (i + 1 < name.size() && name[i + 1] == '%') {
            *out += '%';
            ++i;
            continue;
        }
        size_t j = i + 1;
        zero_ = j < name.size() && name[j] == '0';
        if (zero_) {
            ++j;
        }
        int width = 0;
        while (j < name.size() && has_digit(name[j]) && width < 100) {
            width = width * 10 + (name[j++] - '0');
        }
        if (j >= name.size() || name[j] != 'd' || width >= 100) {
            throw bad("only %d-style conversions");
        }
        width_ = width;
        ++conversions;
        out = &suffix_;
        i = j;
    }
    if (conversions != 1) {
        throw bad(conversions == 0 ? "no frame number" : "more than one frame number");
    }
}

std::string FramePattern::format(int64_t number) const {
    std::string digits = std::to_string(number);
    if (static_cast<int>(digits.size()) < width_) {
        digits.insert(0, static_cast<size_t>(width_) - digits.size(), zero_ ? '0' : ' ');
    }
    return prefix_ + digits + suffix_;
}

int64_t FramePattern::match(const std::string& file_name) const {
    if (file_name.size() <= prefix_.size() + suffix_.size() || file_name.rfind(prefix_, 0) != 0 ||
        file_name.compare(file_name.size() - suffix_.size(), suffix_.size(), suffix_) != 0) {
        return -1;
    }
    std::string mid = file_name.substr(prefix_.size(), file_name.size() - prefix_.size() - suffix_.size());
    const size_t first = mid.find_first_not_of(' ');
    if (first == std::string::npos || mid.size() > 18) {
        return -1;
    }
    for (size_t k = first; k < mid.size(); ++k) {
        if (!has_digit(mid[k])) {
            return -1;
        }
    }
    const int64_t n = std::stoll(mid.substr(first));
    return format(n) == file_name ? n : -1;
}

// ---- reader ----------------------------------------------------------------------------------------------

ImageSequenceReader::ImageSequenceReader(const std::string& spec, int64_t start_number, int fps_num,
                                         int fps_den, int64_t max_pixels)
    : spec_(spec), max_pixels_(max_pixels) {
    std::error_code ec;
    std::string ext;
    if (!spec.empty() && spec.back() == '/' && !fs::is_directory(spec, ec)) {
        throw InputError("cannot open " + squote(spec) + ": no such folder");
    }
    if (fs::is_directory(spec, ec)) {
        if (start_number >= 0) {
            throw InputError("--start-number needs a pattern like dir/%05d.png, not a folder");
        }
        std::set<std::string> exts;
        for (const auto& e : fs::directory_iterator(spec, ec)) {
            const std::string name = e.path().filename().string();
            if (name.empty() || name[0] == '.' || !e.is_regular_file()) {
                continue;
            }
            const std::string x = lower_ext(name);
            if (!is_sequence_extension(x)) {
                continue;
            }
            exts.insert(x);
            files_.push_back(name);
        }
        if (exts.size() > 1) {
            throw InputError("the folder " + squote(spec) + " mixes " + *exts.begin() + " and " +
                             *exts.rbegin() + " images (one extension per sequence)");
        }
        if (!exts.empty()) {
            ext = *exts.begin();
        }
        if (ec) {
            throw InputError("cannot read the folder " + squote(spec) + ": " + ec.message());
        }
        if (files_.empty()) {
            throw InputError("the folder " + squote(spec) + " holds no .png, .tif, .tiff or .exr images");
        }
        std::sort(files_.begin(), files_.end(), natural_less);
        const std::string dir = spec.back() == '/' ? spec : spec + "/";
        for (std::string& f : files_) {
            f = dir + f;
        }
        count_ = static_cast<int64_t>(files_.size());
    } else {
        pattern_.emplace_back(spec);
        const FramePattern& p = pattern_.front();
        ext = lower_ext(spec);
        const std::string dir = p.folder().empty() ? "." : p.folder();
        if (!fs::is_directory(dir, ec)) {
            throw InputError("cannot open " + squote(spec) + ": no such folder " + squote(dir));
        }
        std::set<int64_t> numbers;
        for (const auto& e : fs::directory_iterator(dir, ec)) {
            const int64_t n = p.match(e.path().filename().string());
            if (n >= 0 && (start_number < 0 || n >= start_number)) {
                numbers.insert(n);
            }
        }
        if (start_number >= 0 && numbers.count(start_number) == 0) {
            throw InputError("cannot open " + squote(file_name_for(start_number)) +
                             ": no such file (--start-number " + std::to_string(start_number) + ")");
        }
        if (numbers.empty()) {
            throw InputError("no file matches " + squote(spec));
        }
        start_ = *numbers.begin();
        while (numbers.count(start_ + count_) != 0) {
            ++count_;
        }
        if (static_cast<int64_t>(numbers.size()) != count_) {
            throw InputError(squote(file(count_)) + " is missing: the sequence " + squote(spec) +
                             " has a gap after " + std::to_string(count_) + " frames (" +
                             std::to_string(static_cast<int64_t>(numbers.size()) - count_) +
                             " more files after it)");
        }
    }
    ImageFileInfo fi;
    first_ = decode_image(file(0), &fi, max_pixels_);
    if (fi.channels == 2 || fi.channels == 4) {
        notes_.push_back("the alpha channel of " + squote(file(0)) + " (and of later frames) is dropped");
        alpha_noted_ = true;
    }
    info_.stream_index = -1;
    info_.width = fi.width;
    info_.height = fi.height;
    info_.bits = fi.bits;
    info_.pix_fmt = depth_name(ext, fi.bits);
    info_.tb_num = fps_den;
    info_.tb_den = fps_num;
    info_.fps_num = fps_num;
    info_.fps_den = fps_den;
    info_.sar_num = 1;
    info_.sar_den = 1;
    info_.frames_estimate = count_;
    info_.colorspace = 1;                      // AVCOL_SPC_BT709
    info_.color_range = 1;                     // AVCOL_RANGE_MPEG (what a YUV encoder writes)
    info_.color_primaries = 1;                 // AVCOL_PRI_BT709
    info_.color_trc = ext == ".exr" ? 2 : 13;  // unspecified for EXR (values as stored), else sRGB
    info_.matrix = 1;
    info_.range = 1;
}

std::string ImageSequenceReader::file_name_for(int64_t number) const {
    const FramePattern& p = pattern_.front();
    return (p.folder().empty() ? "" : p.folder() + "/") + p.format(number);
}

std::string ImageSequenceReader::file(int64_t i) const {
    return pattern_.empty() ? files_.at(static_cast<size_t>(i)) : file_name_for(start_ + i);
}

at::Tensor ImageSequenceReader::load(int64_t i) {
    if (i == 0 && first_.defined()) {
        return std::exchange(first_, at::Tensor());
    }
    const std::string f = file(i);
    ImageFileInfo fi;
    at::Tensor t = decode_image(f, &fi, max_pixels_);
    if (fi.width != info_.width || fi.height != info_.height) {
        throw InputError(squote(f) + " is " + std::to_string(fi.width) + "x" + std::to_string(fi.height) +
                         ", the sequence's first image " + squote(file(0)) + " is " +
                         std::to_string(info_.width) + "x" + std::to_string(info_.height) +
                         " (every image must have the same size)");
    }
    if (!alpha_noted_ && (fi.channels == 2 || fi.channels == 4)) {
        notes_.push_back("the alpha channel of " + squote(f) + " (and of later frames) is dropped");
        alpha_noted_ = true;
    }
    return t;
}

FrameBatch ImageSequenceReader::read(int64_t max_frames) {
    FrameBatch b;
    std::vector<at::Tensor> frames;
    while (next_ < count_ && static_cast<int64_t>(frames.size()) < max_frames) {
        frames.push_back(load(next_));
        b.pts.push_back(next_);
        b.duration.push_back(1);
        ++next_;
    }
    b.rgb = frames.empty() ? at::empty({0, info_.height, info_.width, 3}, at::kFloat) : at::stack(frames);
    return b;
}

// ---- writer ----------------------------------------------------------------------------------------------

namespace {

std::string output_pattern(const std::string& spec) {
    std::error_code ec;
    if (!spec.empty() && (spec.back() == '/' || fs::is_directory(spec, ec))) {
        std::string dir = spec;
        while (dir.size() > 1 && dir.back() == '/') {
            dir.pop_back();
        }
        return dir + "/%06d.png";
    }
    if (fs::path(spec).filename().string().find('%') == std::string::npos) {
        throw InputError("the image-sequence output " + squote(spec) +
                         " needs a frame-number pattern like frames/%05d.png, or a folder ending in /");
    }
    return spec;
}

}  // namespace

ImageSequenceWriter::ImageSequenceWriter(const std::string& spec, int width, int height, int source_bits,
                                         int bits, bool overwrite)
    : pattern_(output_pattern(spec)), width_(width), height_(height), overwrite_(overwrite) {
    dir_ = pattern_.folder();
    const std::string base = fs::path(dir_).filename().string();
    if (dir_.empty() || base == "." || base == ".." || base.empty()) {
        throw InputError("the image-sequence output " + squote(pattern_.text()) +
                         " needs a folder of its own, e.g. frames/%05d.png");
    }
    const std::string ext = lower_ext(pattern_.text());
    if (ext == ".exr") {
        bits_ = bits == 0 ? 16 : bits;
        if (bits_ != 16 && bits_ != 32) {
            throw InputError("EXR output takes --bit-depth 16 (half) or 32 (float)");
        }
    } else if (ext == ".png" || ext == ".tif" || ext == ".tiff") {
        bits_ = bits == 0 ? (source_bits > 8 ? 16 : 8) : bits;
        if (bits_ != 8 && bits_ != 16) {
            throw InputError("PNG/TIFF output takes --bit-depth 8 or 16");
        }
    } else {
        throw InputError("the image-sequence output " + squote(pattern_.text()) +
                         " needs a .png, .tif, .tiff or "
                         ".exr name");
    }
    format_name_ = depth_name(ext, bits_);
    std::error_code ec;
    const fs::path parent = fs::path(dir_).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec)) {
        throw InputError("cannot write the output " + squote(pattern_.text()) + ": no folder " +
                         squote(parent.string()));
    }
    std::string why;
    if (!replaceable(dir_, pattern_, overwrite_, &why)) {
        throw InputError(why);
    }
    tmp_ = dir_ + ".tmp-" + std::to_string(::getpid());
    fs::remove_all(tmp_, ec);
    if (!fs::create_directory(tmp_, ec) || ec) {
        throw InputError("cannot write the output " + squote(pattern_.text()) + " (cannot create " +
                         squote(tmp_) + (ec ? ": " + ec.message() : "") + ")");
    }
    // One tiny image now, so that a format this OpenCV cannot write (EXR disabled) fails before the run.
    const std::string probe = (fs::path(tmp_) / (".probe" + ext)).string();
    try {
        encode_image(probe, at::zeros({1, 1, 3}), bits_);
    } catch (const InputError& e) {
        fs::remove_all(tmp_, ec);
        throw InputError("cannot write " + format_name_ + " images for " + squote(pattern_.text()) + ": " +
                         e.what());
    }
    fs::remove(probe, ec);
}

std::string ImageSequenceWriter::folder_of(const std::string& spec) {
    return FramePattern(output_pattern(spec)).folder();
}

ImageSequenceWriter::~ImageSequenceWriter() {
    if (!finished_ && !tmp_.empty()) {
        std::error_code ec;
        fs::remove_all(tmp_, ec);
    }
}

void ImageSequenceWriter::write(const at::Tensor& rgb, const std::vector<int64_t>&,
                                const std::vector<int64_t>&) {
    TORCH_CHECK(rgb.dim() == 4 && rgb.size(3) == 3 && rgb.size(1) == height_ && rgb.size(2) == width_,
                "ImageSequenceWriter::write: expected [n, ", height_, ", ", width_, ", 3], got ",
                rgb.sizes());
    TORCH_CHECK(!finished_, "ImageSequenceWriter::write after finish");
    const at::Tensor x = rgb.to(at::kFloat);
    for (int64_t i = 0; i < x.size(0); ++i) {
        encode_image((fs::path(tmp_) / pattern_.format(frames_written_)).string(), x[i], bits_);
        ++frames_written_;
    }
}

std::string ImageSequenceWriter::rename_to(const std::string& dest) {
    TORCH_CHECK(!finished_, "ImageSequenceWriter finished twice");
    std::error_code ec;
    fs::remove_all(dest, ec);  // callers checked it is replaceable
    fs::rename(tmp_, dest, ec);
    if (ec) {
        throw InputError("cannot rename the finished output folder " + squote(tmp_) + " to " + squote(dest) +
                         ": " + ec.message());
    }
    finished_ = true;
    return (fs::path(dest) / fs::path(pattern_.text()).filename()).string();
}

std::string ImageSequenceWriter::finish() {
    std::string why;
    if (!replaceable(dir_, pattern_, overwrite_, &why)) {
        throw InputError(why + " (it changed during the run)");
    }
    return rename_to(dir_);
}

std::string ImageSequenceWriter::finish_partial() {
    std::string dest = dir_ + ".partial", why;
    if (!replaceable(dest, pattern_, true, &why)) {
        dest += "-" + std::to_string(::getpid());
    }
    return rename_to(dest);
}

}  // namespace flashvsr::io
