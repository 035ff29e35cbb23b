#include "csrc/engine/color_fix.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>

#include <utility>
#include <vector>

namespace flashvsr::engine {
namespace {

at::Tensor adain(const at::Tensor& x, const at::Tensor& ref) {
    // Statistics over H, W of every (b, c, f).
    const auto var_x = at::var_mean(x, {3, 4}, /*correction=*/0, /*keepdim=*/true);
    const auto var_r = at::var_mean(ref, {3, 4}, 0, true);
    const at::Tensor std_x = (std::get<0>(var_x) + 1e-5).sqrt();
    const at::Tensor std_r = (std::get<0>(var_r) + 1e-5).sqrt();
    return (x - std::get<1>(var_x)) / std_x * std_r + std::get<1>(var_r);
}

// Returns (high, low) after 5 levels of the dilated binomial blur.
std::pair<at::Tensor, at::Tensor> wavelet_split(const at::Tensor& x) {
    const int64_t b = x.size(0), c = x.size(1), f = x.size(2), h = x.size(3), w = x.size(4);
    at::Tensor low = x.permute({0, 2, 1, 3, 4}).reshape({b * f, c, h, w});  // [B,3,F,H,W] -> [B*F,3,H,W]
    at::Tensor high = at::zeros_like(low);
    const at::Tensor k1 = at::tensor({1.0, 2.0, 1.0}, low.options());
    const at::Tensor kernel = (k1.unsqueeze(1) * k1.unsqueeze(0) / 16.0).expand({c, 1, 3, 3}).contiguous();
    for (int64_t i = 0; i < 5; ++i) {
        const int64_t r = int64_t{1} << i;
        const at::Tensor padded = at::pad(low, {r, r, r, r}, "replicate");
        const std::vector<int64_t> one{1, 1}, zero{0, 0}, dil{r, r};
        const at::Tensor blur = at::conv2d(padded, kernel, at::Tensor(), one, zero, dil, c);
        high = high + (low - blur);
        low = blur;
    }
    auto back = [&](const at::Tensor& t) {
        return t.reshape({b, f, c, h, w}).permute({0, 2, 1, 3, 4});  // [B*F,3,H,W] -> [B,3,F,H,W]
    };
    return {back(high), back(low)};
}

}  // namespace

ColorFix parse_color_fix(const std::string& name) {
    if (name == "adain") {
        return ColorFix::kAdain;
    }
    if (name == "wavelet") {
        return ColorFix::kWavelet;
    }
    if (name == "none") {
        return ColorFix::kNone;
    }
    throw InputError("color_fix must be 'adain', 'wavelet' or 'none', got '" + name + "'");
}

at::Tensor color_fix(const at::Tensor& decoded, const at::Tensor& lq, ColorFix method) {
    TORCH_CHECK(decoded.dim() == 5 && decoded.size(1) == 3, "color_fix: decoded must be [B,3,F,H,W], got ",
                decoded.sizes());
    TORCH_CHECK(decoded.sizes() == lq.sizes(), "color_fix: decoded ", decoded.sizes(), " and LQ ", lq.sizes(),
                " differ in shape");
    const at::Tensor x = decoded.to(at::kFloat);
    at::Tensor out;
    switch (method) {
        case ColorFix::kAdain:
            out = adain(x, lq.to(at::kFloat));
            break;
        case ColorFix::kWavelet: {
            const auto [high, unused_low] = wavelet_split(x);
            const auto [unused_high, low] = wavelet_split(lq.to(x.options()));
            out = high + low;
            break;
        }
        case ColorFix::kNone:
            out = x;
            break;
    }
    return out.clamp(-1.0, 1.0);
}

}  // namespace flashvsr::engine
