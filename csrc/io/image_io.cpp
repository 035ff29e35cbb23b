#include "io/image_io.h"

#include <flashvsr/flashvsr.h>

#include <ATen/ATen.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstring>
#include <filesystem>

namespace flashvsr::io {

at::Tensor read_image(const std::string& path) {
    if (!std::filesystem::exists(path)) {
        throw InputError("cannot open '" + path + "': no such file");
    }
    cv::Mat img = cv::imread(path, cv::IMREAD_ANYDEPTH | cv::IMREAD_COLOR);  // BGR, 8U or 16U
    if (img.empty()) {
        throw InputError("'" + path + "' is not an image OpenCV can decode");
    }
    double scale = 0;
    switch (img.depth()) {
        case CV_8U: scale = 1.0 / 255.0; break;
        case CV_16U: scale = 1.0 / 65535.0; break;
        case CV_32F: scale = 1.0; break;
        default: throw InputError("'" + path + "': unsupported sample depth " + std::to_string(img.depth()));
    }
    cv::Mat rgb;
    cv::cvtColor(img, rgb, cv::COLOR_BGR2RGB);
    cv::Mat f32;
    rgb.convertTo(f32, CV_32FC3, scale);
    at::Tensor out = at::empty({f32.rows, f32.cols, 3}, at::kFloat);
    for (int y = 0; y < f32.rows; ++y) {  // rows of a cv::Mat may be padded: copy row by row
        std::memcpy(out.data_ptr<float>() + static_cast<int64_t>(y) * f32.cols * 3, f32.ptr<float>(y),
                    sizeof(float) * 3 * f32.cols);
    }
    return out;
}

void write_image(const std::string& path, const at::Tensor& rgb, int bits) {
    TORCH_CHECK(rgb.dim() == 3 && rgb.size(2) == 3, "write_image: expected [H,W,3], got ", rgb.sizes());
    if (bits != 8 && bits != 16) {
        throw InputError("write_image: bits must be 8 or 16, got " + std::to_string(bits));
    }
    const double maxv = bits == 8 ? 255.0 : 65535.0;
    at::Tensor q = (rgb.to(at::kFloat).clamp(0, 1) * maxv).round().contiguous();
    at::Tensor typed = bits == 8 ? q.to(at::kByte) : q.to(at::kInt);
    const int h = static_cast<int>(rgb.size(0));
    const int w = static_cast<int>(rgb.size(1));
    cv::Mat mat;
    if (bits == 8) {
        mat = cv::Mat(h, w, CV_8UC3, typed.data_ptr<uint8_t>()).clone();
    } else {
        cv::Mat(h, w, CV_32SC3, typed.data_ptr<int32_t>()).convertTo(mat, CV_16UC3);
    }
    cv::cvtColor(mat, mat, cv::COLOR_RGB2BGR);
    namespace fs = std::filesystem;
    const fs::path final_path(path);
    const fs::path tmp = final_path.parent_path() /
                         (final_path.stem().string() + ".partial" + final_path.extension().string());
    bool ok = false;
    try {
        ok = cv::imwrite(tmp.string(), mat);
    } catch (const cv::Exception& e) {
        std::error_code ignored;
        fs::remove(tmp, ignored);
        throw InputError("cannot write image '" + path + "': " + e.what());
    }
    std::error_code ec;
    if (ok) {
        fs::rename(tmp, final_path, ec);
    }
    if (!ok || ec) {
        std::error_code ignored;
        fs::remove(tmp, ignored);
        throw InputError("cannot write image '" + path + "'" + (ec ? ": " + ec.message() : ""));
    }
}

}  // namespace flashvsr::io
