#include "models/common/linear.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include <optional>

#include <string>
#include "csrc/core/cpu_isa.h"

namespace flashvsr::models {
namespace {

/// mkldnn::_linear_pointwise(Tensor X, Tensor W, Tensor? B, str attr, Scalar?[] scalars, str? algorithm),
/// when this torch registers it with a CPU kernel.
const std::optional<c10::OperatorHandle>& onednn_linear_op() {
    static const std::optional<c10::OperatorHandle> op = []() -> std::optional<c10::OperatorHandle> {
        if (!at::hasMKLDNN()) {
            return std::nullopt;
        }
        auto handle = c10::Dispatcher::singleton().findSchema({"mkldnn::_linear_pointwise", ""});
        if (!handle || !handle->hasKernelForDispatchKey(c10::DispatchKey::CPU)) {
            return std::nullopt;
        }
        return handle;
    }();
    return op;
}

}  // namespace

bool onednn_linear_available() { return onednn_linear_op().has_value(); }

bool onednn_preferred_for_float32() { return core::cpu_supports(core::CpuIsa::kAvx512); }

at::Tensor dense_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                        LinearBackend backend) {
    const bool wanted = backend == LinearBackend::kOneDnn ||
                        (backend == LinearBackend::kAuto && onednn_preferred_for_float32());
    const bool onednn = wanted && x.device().is_cpu() && x.scalar_type() == at::kFloat &&
                        w.scalar_type() == at::kFloat && x.numel() > 0 && w.dim() == 2 && x.dim() >= 2 &&
                        onednn_linear_available();
    if (!onednn) {
        return at::linear(x, w, b);
    }
    TORCH_CHECK(x.size(-1) == w.size(1), "dense_linear: x ", x.sizes(), " does not fit the weight ",
                w.sizes());
    torch::jit::Stack stack;
    stack.emplace_back(x.contiguous());
    stack.emplace_back(w.contiguous());
    stack.emplace_back(b.defined() ? c10::IValue(b.contiguous()) : c10::IValue());
    stack.emplace_back(std::string("none"));
    stack.emplace_back(c10::List<std::optional<at::Scalar>>());
    stack.emplace_back(c10::IValue());  // algorithm: None
    onednn_linear_op()->callBoxed(&stack);
    return stack.back().toTensor();
}

}  // namespace flashvsr::models
