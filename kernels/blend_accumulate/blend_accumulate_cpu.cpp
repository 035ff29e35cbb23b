// CPU twin of blend_accumulate.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "kernels/blend_accumulate/blend_accumulate.h"

namespace flashvsr::kernels {
namespace {

template <typename T>
void blend_rows(float* canvas, const T* tile, const BlendGeometry& g) {
    const int64_t rows = g.frames * g.tile_h;
    const int64_t row_len = g.tile_w * g.channels;
    at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
            const int64_t f = r / g.tile_h;
            const int64_t y = r % g.tile_h;
            const float wy = blend_ramp(y, g.tile_h, g.ramp_top, g.ramp_bottom);
            const T* src = tile + r * row_len;
            float* dst = canvas + ((f * g.canvas_h + g.top + y) * g.canvas_w + g.left) * g.channels;
            for (int64_t x = 0; x < g.tile_w; ++x) {
                const float w = wy * blend_ramp(x, g.tile_w, g.ramp_left, g.ramp_right);
                for (int64_t c = 0; c < g.channels; ++c) {
                    dst[x * g.channels + c] += w * static_cast<float>(src[x * g.channels + c]);
                }
            }
        }
    });
}

void blend_accumulate_cpu(at::Tensor& canvas, const at::Tensor& tile, int64_t top, int64_t left,
                          at::IntArrayRef ramps) {
    const BlendGeometry g = check_blend_accumulate_inputs(canvas, tile, top, left, ramps);
    if (tile.numel() == 0) {
        return;
    }
    const at::Tensor t = tile.contiguous();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, t.scalar_type(), "blend_accumulate_cpu", [&] {
        blend_rows<scalar_t>(canvas.data_ptr<float>(), t.const_data_ptr<scalar_t>(), g);
    });
}

}  // namespace

TORCH_LIBRARY_IMPL(flashvsr, CPU, m) { m.impl("blend_accumulate", &blend_accumulate_cpu); }

}  // namespace flashvsr::kernels
