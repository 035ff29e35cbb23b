#include "models/common/random_weights.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

#include <cmath>
#include <mutex>
#include <string>

namespace flashvsr::models {
namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

TensorMap random_weights(const std::vector<ParamSpec>& specs, uint64_t seed, at::ScalarType dtype,
                         at::Device draw_on) {
    at::Generator gen;
    at::TensorOptions opts = at::TensorOptions().dtype(at::kDouble);
    if (draw_on.is_cpu()) {
        gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    } else {
        gen = at::globalContext().defaultGenerator(draw_on);
        std::lock_guard<std::mutex> lock(gen.mutex());
        gen.set_current_seed(seed);
        opts = at::TensorOptions().dtype(at::kFloat).device(draw_on);
    }
    TensorMap out;
    for (const ParamSpec& s : specs) {
        at::Tensor t = at::randn(s.shape, gen, opts);
        if (contains(s.name, "gamma") || contains(s.name, "norm_q") || contains(s.name, "norm_k") ||
            contains(s.name, "norm3.weight")) {
            t = 1.0 + 0.1 * t;
        } else if (contains(s.name, "modulation")) {
            t = t / std::sqrt(static_cast<double>(s.shape.empty() ? 1 : s.shape.back()));
        } else if (s.shape.size() <= 1) {
            t = 0.1 * t;
        } else {
            const int64_t fan_in = s.shape[0] > 0 ? s.numel() / s.shape[0] : 1;
            t = t / std::sqrt(static_cast<double>(std::max<int64_t>(fan_in, 1)));
        }
        out.emplace(s.name, t.to(dtype).to(at::kCPU));
    }
    return out;
}

}  // namespace flashvsr::models
