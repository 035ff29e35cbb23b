// Colour fix (MODEL.md §6.5): transfers the colour of the LQ input onto the decoded frames.
// adain (default, as the official pipelines), wavelet, none. Any failure is an error, never skipped.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace flashvsr::engine {

enum class ColorFix { kAdain, kWavelet, kNone };

/// "adain" | "wavelet" | "none"; anything else throws InputError naming the value.
ColorFix parse_color_fix(const std::string& name);

/// decoded, lq: [B, 3, F, H, W] in [-1, 1], same shape. Returns float32 [B, 3, F, H, W] clamped to [-1, 1]
/// (computed in float32 whatever the input dtype).
/// adain: per frame and channel, (x - mean_x) / std_x * std_lq + mean_lq with std = sqrt(biased var + 1e-5).
/// wavelet: high frequencies of `decoded` + low frequencies of `lq` (5 levels of a dilated 3x3 binomial
/// blur on replicate-padded frames).
at::Tensor color_fix(const at::Tensor& decoded, const at::Tensor& lq, ColorFix method);

}  // namespace flashvsr::engine
