#include "kernels/blend_accumulate/blend_accumulate.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

namespace flashvsr::kernels {

BlendGeometry check_blend_accumulate_inputs(const at::Tensor& canvas, const at::Tensor& tile, int64_t top,
                                            int64_t left, at::IntArrayRef ramps) {
    TORCH_CHECK(canvas.dim() == 4, "blend_accumulate: canvas must be [F,H,W,C], got ", canvas.sizes());
    TORCH_CHECK(tile.dim() == 4, "blend_accumulate: tile must be [F,h,w,C], got ", tile.sizes());
    TORCH_CHECK(canvas.scalar_type() == at::kFloat, "blend_accumulate: canvas must be float32, got ",
                canvas.scalar_type());
    TORCH_CHECK(tile.scalar_type() == at::kFloat || tile.scalar_type() == at::kHalf ||
                    tile.scalar_type() == at::kBFloat16,
                "blend_accumulate: tile must be float32, float16 or bfloat16, got ", tile.scalar_type());
    TORCH_CHECK(canvas.is_contiguous(), "blend_accumulate: canvas must be contiguous");
    TORCH_CHECK(canvas.device() == tile.device(), "blend_accumulate: canvas on ", canvas.device(),
                " but tile on ", tile.device());
    TORCH_CHECK(canvas.size(0) == tile.size(0) && canvas.size(3) == tile.size(3),
                "blend_accumulate: frames/channels differ: canvas ", canvas.sizes(), ", tile ", tile.sizes());
    TORCH_CHECK(ramps.size() == 4, "blend_accumulate: ramps must be {top, bottom, left, right}, got ",
                ramps.size(), " values");
    BlendGeometry g;
    g.frames = canvas.size(0);
    g.canvas_h = canvas.size(1);
    g.canvas_w = canvas.size(2);
    g.channels = canvas.size(3);
    g.tile_h = tile.size(1);
    g.tile_w = tile.size(2);
    g.top = top;
    g.left = left;
    g.ramp_top = ramps[0];
    g.ramp_bottom = ramps[1];
    g.ramp_left = ramps[2];
    g.ramp_right = ramps[3];
    TORCH_CHECK(top >= 0 && left >= 0 && top + g.tile_h <= g.canvas_h && left + g.tile_w <= g.canvas_w,
                "blend_accumulate: tile ", tile.sizes(), " at (", top, ", ", left,
                ") does not fit inside canvas ", canvas.sizes());
    TORCH_CHECK(g.ramp_top >= 0 && g.ramp_bottom >= 0 && g.ramp_left >= 0 && g.ramp_right >= 0,
                "blend_accumulate: ramps must be >= 0, got ", ramps);
    TORCH_CHECK(g.ramp_top + g.ramp_bottom <= g.tile_h && g.ramp_left + g.ramp_right <= g.tile_w,
                "blend_accumulate: ramps ", ramps, " do not fit a ", g.tile_h, "x", g.tile_w, " tile");
    return g;
}

void blend_accumulate(at::Tensor& canvas, const at::Tensor& tile, int64_t top, int64_t left,
                      std::array<int64_t, 4> ramps) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("flashvsr::blend_accumulate", "")
                         .typed<void(at::Tensor&, const at::Tensor&, int64_t, int64_t, at::IntArrayRef)>();
    op.call(canvas, tile, top, left, at::IntArrayRef(ramps.data(), ramps.size()));
}

namespace {

void blend_accumulate_meta(at::Tensor& canvas, const at::Tensor& tile, int64_t top, int64_t left,
                           at::IntArrayRef ramps) {
    check_blend_accumulate_inputs(canvas, tile, top, left, ramps);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(flashvsr, m) {
    m.def("blend_accumulate(Tensor(a!) canvas, Tensor tile, int top, int left, int[] ramps) -> ()");
}

TORCH_LIBRARY_IMPL(flashvsr, Meta, m) { m.impl("blend_accumulate", &blend_accumulate_meta); }

}  // namespace flashvsr::kernels
