// Random weights for a manifest: used by `flashvsr make-test-weights` (files in the published formats)
// and by the network tests. Scaled so that activations stay O(1) through deep stacks.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "models/common/params.h"

namespace flashvsr::models {

/// One tensor per spec, deterministic in `seed` (a private generator; the global one is untouched):
/// norm scales (keys containing "gamma", "norm_q", "norm_k", "norm3.weight") 1 + N(0, 0.1^2);
/// "modulation" N(0, 1/d) with d the last dimension; other 1-D tensors (biases) N(0, 0.1^2);
/// everything else N(0, 1/fan_in) with fan_in = numel / shape[0]. Values are drawn in float64 and
/// cast to `dtype`, so a seed gives the same values (up to rounding) in every dtype.
/// `draw_on` a CUDA device: drawn there in float32 with that device's default generator seeded from `seed`
/// (many times faster for full-size weights; other values than the CPU draw). The result is on the CPU.
TensorMap random_weights(const std::vector<ParamSpec>& specs, uint64_t seed,
                         at::ScalarType dtype = at::kFloat, at::Device draw_on = at::Device(at::kCPU));

}  // namespace flashvsr::models
