#include "csrc/io/video_read.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "csrc/io/video_decoder.h"

namespace flashvsr::io {

at::Tensor read_video_rgb24(const std::string& path, int64_t max_frames) {
    constexpr int64_t kBatch = 64;
    DecoderOptions options;
    options.rgb24 = true;
    VideoDecoder decoder(path, options);
    std::vector<at::Tensor> batches;
    int64_t n = 0;
    while (max_frames < 0 || n < max_frames) {
        FrameBatch b = decoder.read(max_frames < 0 ? kBatch : std::min(kBatch, max_frames - n));
        if (b.rgb.size(0) == 0) {
            break;
        }
        n += b.rgb.size(0);
        batches.push_back(std::move(b.rgb));
    }
    if (batches.empty()) {  // max_frames == 0 (the decoder itself refuses a file without frames)
        throw InputError("'" + path + "' contains no video frames");
    }
    return at::cat(batches);
}

}  // namespace flashvsr::io
