// The size of a still image read from its header alone (no pixel is decoded, nothing sized by the file is
// allocated), so that a pixel budget can refuse a huge image before the decoder allocates it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace flashvsr::io {

/// The default pixel budget of one decoded frame (images and video): 2^26 = 67,108,864 pixels, e.g.
/// 8192 x 8192 or 15360 x 4320. The CLI's --max-pixels and the Python readers' max_pixels raise it.
constexpr int64_t kDefaultMaxPixels = int64_t{1} << 26;

struct ImageSize {
    int64_t width = 0;
    int64_t height = 0;
    const char* format = "";  // "PNG", "JPEG", "TIFF", "EXR", "BMP", "WebP", "PNM"
};

/// Width and height from the header of a PNG, JPEG, TIFF (and BigTIFF), OpenEXR, BMP, WebP or
/// PNM/PAM/PFM file, recognised by content. std::nullopt when the file is none of these. Throws InputError
/// naming the file when it cannot be read or its header is damaged (truncated, missing fields, a size
/// of 0 or below).
std::optional<ImageSize> read_image_size(const std::string& path);

/// Throws InputError naming the file when width x height exceeds `max_pixels` (or either is < 1).
void check_pixel_budget(const std::string& path, int64_t width, int64_t height, int64_t max_pixels,
                        const char* option_hint);

}  // namespace flashvsr::io
