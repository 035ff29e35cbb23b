#include "models/common/rms_norm.h"

#include <ATen/ATen.h>

#include <cmath>

namespace flashvsr::models {

at::Tensor channel_rms_norm(const at::Tensor& x, const at::Tensor& gamma) {
    const double scale = std::sqrt(static_cast<double>(x.size(1)));
    const at::Tensor denom = at::linalg_vector_norm(x, 2, {1}, /*keepdim=*/true).clamp_min(1e-12);
    return x / denom * scale * gamma;
}

}  // namespace flashvsr::models
