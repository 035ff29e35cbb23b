// libFuzzer harness: the still-image entry (csrc/io/image_io decode_image) as the image-sequence reader calls
// it: the header probe and pixel budget (io/image_header), then OpenCV's decoder (PNG, TIFF, EXR, ... by
// content), the conversion to float RGB.
#include <flashvsr/flashvsr.h>

#include "csrc/io/image_header.h"
#include "csrc/io/image_io.h"
#include "fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    constexpr int64_t kBudget = int64_t{1} << 22;  // 4 Mpixels: a decoded frame stays below 100 MB
    const flashvsr::fuzz::MemFile file(data, size);
    try {
        flashvsr::io::ImageFileInfo info;
        const at::Tensor rgb = flashvsr::io::decode_image(file.path(), &info, kBudget);
        if (rgb.dim() != 3 || rgb.size(0) != info.height || rgb.size(1) != info.width || rgb.size(2) != 3 ||
            rgb.scalar_type() != at::kFloat) {
            flashvsr::fuzz::fail("decoded tensor does not match the reported size");
        }
        if (rgb.numel() > 0 && (rgb.min().item<float>() < 0.f || rgb.max().item<float>() > 1.f)) {
            flashvsr::fuzz::fail("decoded values outside [0, 1]");
        }
    } catch (const flashvsr::Error&) {
    }
    return 0;
}
