// Still images through OpenCV's imgcodecs (PNG, TIFF, JPEG, ...), as float32 RGB tensors.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace flashvsr::io {

/// Reads an 8- or 16-bit image (gray, RGB or RGBA; alpha dropped) as float32 [H, W, 3] RGB in [0, 1].
/// Throws InputError naming the file when it is missing or not a decodable image.
at::Tensor read_image(const std::string& path);

/// Writes float [H, W, 3] RGB (values clamped to [0, 1], rounded to nearest) with `bits` 8 or 16.
/// The file is written under a temporary name and renamed when complete.
void write_image(const std::string& path, const at::Tensor& rgb, int bits = 8);

}  // namespace flashvsr::io
