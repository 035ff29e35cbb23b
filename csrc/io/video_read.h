// Whole-clip video reading for tests and small inputs: VideoDecoder's frames as one uint8 tensor.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace flashvsr::io {

/// Decodes up to `max_frames` frames (all if < 0) of the best video stream of `path` into a
/// uint8 tensor [F, H, W, 3] (RGB, 8 bits whatever the source depth), through VideoDecoder: the YUV->RGB
/// matrix and range follow the stream's colour metadata (BT.601/709/2020, limited/full); unspecified
/// matrices default to BT.601 below 720 lines and BT.709 from 720 lines up, as FFmpeg does. Throws
/// InputError naming the file on any failure, including a file without a video stream.
at::Tensor read_video_rgb24(const std::string& path, int64_t max_frames = -1);

}  // namespace flashvsr::io
