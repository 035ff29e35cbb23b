// Still images through OpenCV's imgcodecs (PNG, TIFF, EXR, JPEG, ...), as float32 RGB tensors.
// OpenCV 4.6 reads and writes EXR only when OPENCV_IO_ENABLE_OPENEXR is set: the functions here set it to 1
// before OpenCV's first use unless the environment already sets it (setenv without overwrite; =0 disables
// EXR, and reading or writing .exr then fails with OpenCV's reason). OpenCV's own log is silenced unless
// OPENCV_LOG_LEVEL is set: failures reach the caller as InputError with the reason.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include "csrc/io/image_header.h"

namespace flashvsr::io {

/// What decode_image found in a file.
struct ImageFileInfo {
    int width = 0;
    int height = 0;
    int bits = 8;      // sample type: 8 or 16 (unsigned integer) or 32 (float: EXR, float TIFF)
    int channels = 3;  // in the file: 1 grey, 2 grey + alpha, 3 colour, 4 colour + alpha
};

/// Reads an image as float32 [H, W, 3] RGB in [0, 1]: 8-bit / 255, 16-bit / 65535 (16-bit precision kept),
/// float samples (EXR half/float) as they are, clamped to [0, 1] (NaN -> 0; no transfer curve applied).
/// Grey becomes three equal channels; alpha is dropped (info->channels tells it was there). The size is read
/// from the header first (io/image_header.h): formats other than PNG, JPEG, TIFF, EXR, BMP, WebP and PNM,
/// and images of more than `max_pixels` pixels, are refused before anything is decoded. Throws InputError
/// naming the file when it is missing, not a regular file, refused, or not a decodable image.
at::Tensor decode_image(const std::string& path, ImageFileInfo* info, int64_t max_pixels = kDefaultMaxPixels);
inline at::Tensor read_image(const std::string& path) { return decode_image(path, nullptr); }

/// Writes float [H, W, 3] RGB, values clamped to [0, 1]. `bits`: 8 or 16 (PNG, TIFF; other formats 8 only;
/// integers rounded to nearest), EXR: 16 (half) or 32 (float). Written directly to `path`; throws
/// InputError naming the file when the format, the bit depth or the write fails.
void encode_image(const std::string& path, const at::Tensor& rgb, int bits);

/// encode_image under a temporary name, renamed to `path` when complete.
void write_image(const std::string& path, const at::Tensor& rgb, int bits = 8);

/// Sets OPENCV_IO_ENABLE_OPENEXR=1 unless already set, and silences OpenCV's log unless OPENCV_LOG_LEVEL
/// is set (once per process, before OpenCV's first EXR use; every function here calls it).
void init_opencv_io();

}  // namespace flashvsr::io
