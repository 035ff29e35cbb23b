#include "csrc/io/image_io.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>
#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include <sys/mman.h>
#include <unistd.h>

namespace flashvsr::io {
namespace fs = std::filesystem;
namespace {

std::string lower_ext(const std::string& path) {
    std::string e = fs::path(path).extension().string();
    std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
    return e;
}

/// Redirects file descriptor 2 into an in-memory file while it lives (one at a time, process-wide), so that
/// what a codec library prints there itself (libpng: "libpng error: ...") can become part of an error
/// message instead of a second line. finish(true) writes the captured text back to stderr.
class StderrCapture {
  public:
    StderrCapture() : lock_(mutex()) {
        std::fflush(stderr);
        fd_ = ::memfd_create("flashvsr-stderr", MFD_CLOEXEC);
        saved_ = fd_ >= 0 ? ::dup(2) : -1;
        if (saved_ < 0 || ::dup2(fd_, 2) < 0) {
            release();
        }
    }
    ~StderrCapture() { finish(true); }
    StderrCapture(const StderrCapture&) = delete;
    StderrCapture& operator=(const StderrCapture&) = delete;

    /// Restores stderr and returns what was written meanwhile (also to stderr when `replay`).
    std::string finish(bool replay) {
        if (saved_ < 0) {
            return {};
        }
        std::fflush(stderr);
        ::dup2(saved_, 2);
        std::string text;
        char buf[4096];
        for (off_t at = 0;;) {
            const ssize_t n = ::pread(fd_, buf, sizeof(buf), at);
            if (n <= 0 || text.size() > 65536) {
                break;
            }
            text.append(buf, static_cast<size_t>(n));
            at += n;
        }
        if (replay && !text.empty()) {
            (void)!::write(2, text.data(), text.size());
        }
        release();
        return text;
    }

  private:
    static std::mutex& mutex() {
        static std::mutex m;
        return m;
    }
    void release() {
        if (saved_ >= 0) {
            ::close(saved_);
        }
        if (fd_ >= 0) {
            ::close(fd_);
        }
        saved_ = fd_ = -1;
    }
    std::lock_guard<std::mutex> lock_;
    int fd_ = -1, saved_ = -1;
};

}  // namespace

void init_opencv_io() {
    static std::once_flag once;
    std::call_once(once, [] {
        ::setenv("OPENCV_IO_ENABLE_OPENEXR", "1", 0);
        if (std::getenv("OPENCV_LOG_LEVEL") == nullptr) {
            cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
        }
    });
}

at::Tensor decode_image(const std::string& path, ImageFileInfo* info, int64_t max_pixels) {
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        throw InputError("cannot open '" + path + "': no such file");
    }
    if (!fs::is_regular_file(path, ec)) {
        throw InputError("cannot read '" + path + "': not a regular file");
    }
    const std::optional<ImageSize> size = read_image_size(path);
    if (!size) {
        throw InputError("'" + path +
                         "' is not an image flashvsr can decode (PNG, TIFF, EXR, JPEG, BMP, WebP, PNM)");
    }
    check_pixel_budget(path, size->width, size->height, max_pixels, "--max-pixels");
    init_opencv_io();
    cv::Mat img;
    std::string reason;
    {
        StderrCapture capture;  // libpng prints its errors to stderr itself: they become part of our one line
        try {
            img = cv::imread(path, cv::IMREAD_UNCHANGED);  // BGR(A) or grey, 8U / 16U / 32F as stored
        } catch (const cv::Exception& e) {
            reason = e.err;
        }
        const std::string printed = capture.finish(/*replay=*/!img.empty());
        if (reason.empty()) {
            reason = printed.substr(0, printed.find('\n'));
        }
    }
    if (img.empty()) {
        throw InputError("'" + path + "' is not an image OpenCV can decode" +
                         (reason.empty() ? "" : " (" + reason + ")"));
    }
    check_pixel_budget(path, img.cols, img.rows, max_pixels, "--max-pixels");
    int bits = 0;
    double scale = 1.0;
    switch (img.depth()) {
        case CV_8U:
            bits = 8, scale = 1.0 / 255.0;
            break;
        case CV_16U:
            bits = 16, scale = 1.0 / 65535.0;
            break;
        case CV_16F:
        case CV_32F:
        case CV_64F:
            bits = 32;
            break;
        default:
            throw InputError("'" + path + "': unsupported sample type (OpenCV depth " +
                             std::to_string(img.depth()) + ")");
    }
    const int channels = img.channels();
    if (info != nullptr) {
        *info = ImageFileInfo{img.cols, img.rows, bits, channels};
    }
    cv::Mat rgb;
    switch (channels) {
        case 1:
            cv::cvtColor(img, rgb, cv::COLOR_GRAY2RGB);
            break;
        case 2: {
            cv::Mat grey;
            cv::extractChannel(img, grey, 0);
            cv::cvtColor(grey, rgb, cv::COLOR_GRAY2RGB);
            break;
        }
        case 3:
            cv::cvtColor(img, rgb, cv::COLOR_BGR2RGB);
            break;
        case 4:
            cv::cvtColor(img, rgb, cv::COLOR_BGRA2RGB);
            break;
        default:
            throw InputError("'" + path + "': unsupported channel count " + std::to_string(channels));
    }
    cv::Mat f32;
    rgb.convertTo(f32, CV_32FC3, scale);
    at::Tensor out = at::empty({f32.rows, f32.cols, 3}, at::kFloat);
    for (int y = 0; y < f32.rows; ++y) {  // rows of a cv::Mat may be padded: copy row by row
        std::memcpy(out.data_ptr<float>() + static_cast<int64_t>(y) * f32.cols * 3, f32.ptr<float>(y),
                    sizeof(float) * 3 * f32.cols);
    }
    if (bits == 32) {
        out.nan_to_num_(0.0, 1.0, 0.0).clamp_(0.0, 1.0);
    }
    return out;
}

namespace {

/// Throws InputError naming `path` when its format cannot hold `bits` per sample.
void check_bits(const std::string& path, int bits) {
    const std::string ext = lower_ext(path);
    const bool exr = ext == ".exr";
    const bool deep_ok = ext == ".png" || ext == ".tif" || ext == ".tiff";
    if (exr ? (bits != 16 && bits != 32) : (bits != 8 && !(bits == 16 && deep_ok))) {
        throw InputError("cannot write '" + path + "' with " + std::to_string(bits) + " bits per sample (" +
                         (exr       ? "EXR: 16 (half) or 32 (float)"
                          : deep_ok ? "bits must be 8 or 16"
                                    : "this format: 8 only") +
                         ")");
    }
}

}  // namespace

void encode_image(const std::string& path, const at::Tensor& rgb, int bits) {
    TORCH_CHECK(rgb.dim() == 3 && rgb.size(2) == 3, "encode_image: expected [H,W,3], got ", rgb.sizes());
    check_bits(path, bits);
    const bool exr = lower_ext(path) == ".exr";
    init_opencv_io();
    const int h = static_cast<int>(rgb.size(0));
    const int w = static_cast<int>(rgb.size(1));
    const at::Tensor x = rgb.to(at::kFloat).clamp(0, 1);
    at::Tensor typed;  // [H, W, 3] in the file's sample type, RGB
    int type = CV_8UC3;
    std::vector<int> params;
    if (exr) {
        typed = x.contiguous();
        type = CV_32FC3;
        params = {cv::IMWRITE_EXR_TYPE, bits == 16 ? cv::IMWRITE_EXR_TYPE_HALF : cv::IMWRITE_EXR_TYPE_FLOAT};
    } else if (bits == 16) {  // the int16 bit pattern of uint16
        typed = x.mul(65535.0).round_().to(at::kInt).to(at::kShort).contiguous();
        type = CV_16UC3;
    } else {
        typed = x.mul(255.0).round_().to(at::kByte).contiguous();
    }
    cv::Mat bgr;
    cv::cvtColor(cv::Mat(h, w, type, typed.data_ptr()), bgr, cv::COLOR_RGB2BGR);
    bool ok = false;
    try {
        ok = cv::imwrite(path, bgr, params);
    } catch (const cv::Exception& e) {
        std::error_code ignored;
        fs::remove(path, ignored);
        throw InputError("cannot write image '" + path + "': " + e.err);
    }
    if (!ok) {
        std::error_code ignored;
        fs::remove(path, ignored);
        throw InputError("cannot write image '" + path + "'");
    }
}

void write_image(const std::string& path, const at::Tensor& rgb, int bits) {
    check_bits(path, bits);
    const fs::path final_path(path);
    const fs::path tmp = final_path.parent_path() /
                         (final_path.stem().string() + ".partial" + final_path.extension().string());
    try {
        encode_image(tmp.string(), rgb, bits);
    } catch (const InputError&) {
        throw InputError("cannot write image '" + path + "'");
    }
    std::error_code ec;
    fs::rename(tmp, final_path, ec);
    if (ec) {
        std::error_code ignored;
        fs::remove(tmp, ignored);
        throw InputError("cannot write image '" + path + "': " + ec.message());
    }
}

}  // namespace flashvsr::io
