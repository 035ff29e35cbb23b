// Random checkpoints for network tests: one tensor per manifest entry, scaled so activations stay O(1).
#pragma once

#include <flashvsr/flashvsr.h>

#include <ATen/ATen.h>

#include <cmath>
#include <string>
#include <vector>

#include "models/common/params.h"

namespace flashvsr::models::testing {

/// float64 tensors for `specs`: weights N(0, 1/fan_in), 1-D biases N(0, 0.1²), `gamma` keys 1 + N(0, 0.1²).
/// Deterministic for a given at::manual_seed.
inline TensorMap random_weights(const std::vector<ParamSpec>& specs) {
    TensorMap m;
    const auto opts = at::TensorOptions().dtype(at::kDouble);
    for (const auto& s : specs) {
        at::Tensor t = at::randn(s.shape, opts);
        if (s.name.find("gamma") != std::string::npos) {
            t = 1.0 + 0.1 * t;
        } else if (s.shape.size() == 1) {
            t = 0.1 * t;
        } else {
            t = t / std::sqrt(static_cast<double>(s.numel() / s.shape[0]));
        }
        m.emplace(s.name, t);
    }
    return m;
}

/// The message of the flashvsr::Error that `fn` throws, or "<no error>".
template <class Fn>
std::string error_message(Fn&& fn) {
    try {
        fn();
    } catch (const flashvsr::Error& e) {
        return e.what();
    }
    return "<no error>";
}

}  // namespace flashvsr::models::testing
