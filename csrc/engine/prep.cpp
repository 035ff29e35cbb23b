#include "csrc/engine/prep.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>

#include <string>

namespace flashvsr::engine {

GridPadding grid_padding(int64_t height, int64_t width, int64_t grid) {
    if (height < 1 || width < 1 || grid < 1) {
        throw InputError("frame size must be positive, got " + std::to_string(width) + "x" +
                         std::to_string(height));
    }
    auto up = [grid](int64_t v) { return std::max(grid, (v + grid - 1) / grid * grid); };
    GridPadding p;
    p.height = height;
    p.width = width;
    const int64_t ph = up(height) - height, pw = up(width) - width;
    p.top = ph / 2;
    p.bottom = ph - p.top;
    p.left = pw / 2;
    p.right = pw - p.left;
    return p;
}

at::Tensor pad_to_grid(const at::Tensor& x, const GridPadding& p) {
    TORCH_CHECK(x.dim() >= 3, "pad_to_grid: expected [..., H, W], got ", x.sizes());
    TORCH_CHECK(x.size(-2) == p.height && x.size(-1) == p.width, "pad_to_grid: input ", x.sizes(),
                " does not match the planned ", p.height, "x", p.width);
    // at::pad's reflect/replicate modes want [N, C, H, W]-like inputs: flatten the leading dims.
    const auto lead = x.sizes().slice(0, x.dim() - 2).vec();
    at::Tensor y = x.reshape({-1, 1, p.height, p.width});  // [..., H, W] -> [N, 1, H, W]
    auto axis_mode = [](int64_t a, int64_t b, int64_t size) {
        return (a < size && b < size) ? "reflect" : "replicate";
    };
    if (p.left + p.right > 0) {
        y = at::pad(y, {p.left, p.right, 0, 0}, axis_mode(p.left, p.right, p.width));
    }
    if (p.top + p.bottom > 0) {
        y = at::pad(y, {0, 0, p.top, p.bottom}, axis_mode(p.top, p.bottom, p.height));
    }
    auto shape = lead;
    shape.push_back(p.padded_height());
    shape.push_back(p.padded_width());
    return y.reshape(shape);  // [N, 1, Hp, Wp] -> [..., Hp, Wp]
}

at::Tensor crop_from_grid(const at::Tensor& x, const GridPadding& p) {
    TORCH_CHECK(x.size(-2) == p.padded_height() && x.size(-1) == p.padded_width(), "crop_from_grid: input ",
                x.sizes(), " is not ", p.padded_height(), "x", p.padded_width());
    return x.narrow(-2, p.top, p.height).narrow(-1, p.left, p.width);
}

at::Tensor prepare_lq(const at::Tensor& frames, int64_t scale, const GridPadding& padding,
                      at::ScalarType dtype) {
    TORCH_CHECK(frames.dim() == 4 && frames.size(3) == 3, "prepare_lq: frames must be [F,H,W,3], got ",
                frames.sizes());
    if (scale < 1) {
        throw InputError("scale must be >= 1, got " + std::to_string(scale));
    }
    at::Tensor x =
        frames.scalar_type() == at::kByte ? frames.to(at::kFloat).div(255.0) : frames.to(at::kFloat);
    x = x.permute({0, 3, 1, 2});  // [F,H,W,3] -> [F,3,H,W]
    if (scale != 1) {
        x = at::upsample_bicubic2d(x, {x.size(2) * scale, x.size(3) * scale}, /*align_corners=*/false);
    }
    x = x.clamp(0.0, 1.0).mul(2.0).sub(1.0);
    x = pad_to_grid(x, padding);                            // [F,3,Hs,Ws] -> [F,3,Hp,Wp]
    return x.permute({1, 0, 2, 3}).unsqueeze(0).to(dtype);  // [F,3,Hp,Wp] -> [1,3,F,Hp,Wp]
}

}  // namespace flashvsr::engine
