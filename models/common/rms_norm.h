// Wan's RMS_norm over channels, shared by the LQ projector and the Wan VAE decoder.
#pragma once

#include <ATen/core/Tensor.h>

namespace flashvsr::models {

/// Wan's channel RMS_norm (F.normalize over dim 1, eps 1e-12): x / max(||x||_2, 1e-12) · sqrt(C) · gamma.
/// x [B, C, ...]; gamma [C, 1, ...] broadcasts over the trailing dimensions.
at::Tensor channel_rms_norm(const at::Tensor& x, const at::Tensor& gamma);

}  // namespace flashvsr::models
