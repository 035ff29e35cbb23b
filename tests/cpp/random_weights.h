// Random checkpoints for network tests: one tensor per manifest entry, scaled so activations stay O(1).
#pragma once

#include <flashvsr/flashvsr.h>

#include <ATen/ATen.h>

#include <cmath>
#include <string>
#include <vector>

#include "models/common/params.h"
#include "models/common/random_weights.h"

namespace flashvsr::models::testing {

/// float64 weights for `specs` (models::random_weights' scaling rules), deterministic for a given
/// at::manual_seed: the seed of the private generator is drawn from the global one.
inline TensorMap random_weights(const std::vector<ParamSpec>& specs) {
    const int64_t seed =
        at::randint(0, int64_t{1} << 62, {1}, at::TensorOptions().dtype(at::kLong)).item<int64_t>();
    return flashvsr::models::random_weights(specs, static_cast<uint64_t>(seed), at::kDouble);
}

}  // namespace flashvsr::models::testing
