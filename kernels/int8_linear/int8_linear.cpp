#include "kernels/int8_linear/int8_linear.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

namespace flashvsr::kernels {

Int8LinearGeometry check_int8_linear_inputs(const at::Tensor& x, const at::Tensor& qweight,
                                            const at::Tensor& wscale, const std::optional<at::Tensor>& bias) {
    const auto t = x.scalar_type();
    TORCH_CHECK(t == at::kFloat || t == at::kBFloat16 || t == at::kHalf,
                "int8_linear: x must be float32, bfloat16 or float16, got ", t);
    TORCH_CHECK(x.dim() >= 1 && x.size(-1) > 0, "int8_linear: x must be [..., K] with K > 0, got ",
                x.sizes());
    TORCH_CHECK(qweight.scalar_type() == at::kChar, "int8_linear: qweight must be int8, got ",
                qweight.scalar_type());
    TORCH_CHECK(qweight.dim() == 2 && qweight.size(0) == x.size(-1) && qweight.size(1) > 0,
                "int8_linear: qweight must be [K, N] with K = ", x.size(-1), " (x's last dimension), got ",
                qweight.sizes());
    TORCH_CHECK(qweight.is_contiguous(), "int8_linear: qweight must be contiguous");
    const int64_t n = qweight.size(1);
    TORCH_CHECK(wscale.scalar_type() == at::kFloat && wscale.dim() == 1 && wscale.size(0) == n,
                "int8_linear: wscale must be float32 [", n, "], got ", wscale.scalar_type(), " ",
                wscale.sizes());
    TORCH_CHECK(qweight.device() == x.device() && wscale.device() == x.device(),
                "int8_linear: x, qweight and wscale must be on one device, got ", x.device(), ", ",
                qweight.device(), ", ", wscale.device());
    if (bias.has_value() && bias->defined()) {
        TORCH_CHECK(at::isFloatingType(bias->scalar_type()) && bias->dim() == 1 && bias->size(0) == n,
                    "int8_linear: bias must be a float [", n, "], got ", bias->scalar_type(), " ",
                    bias->sizes());
        TORCH_CHECK(bias->device() == x.device(), "int8_linear: bias on ", bias->device(), " but x on ",
                    x.device());
    }
    Int8LinearGeometry g;
    g.k = x.size(-1);
    g.n = n;
    g.m = x.numel() / g.k;
    g.out_sizes = x.sizes().vec();
    g.out_sizes.back() = n;
    return g;
}

at::Tensor int8_linear(const at::Tensor& x, const at::Tensor& qweight, const at::Tensor& wscale,
                       const std::optional<at::Tensor>& bias) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("flashvsr::int8_linear", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const std::optional<at::Tensor>&)>();
    return op.call(x, qweight, wscale, bias);
}

at::Tensor int8_linear_reference(const at::Tensor& x, const at::Tensor& qweight, const at::Tensor& wscale,
                                 const std::optional<at::Tensor>& bias) {
    const Int8LinearGeometry g = check_int8_linear_inputs(x, qweight, wscale, bias);
    if (g.m == 0) {
        return at::empty(g.out_sizes, x.options());
    }
    const auto x2 = x.reshape({g.m, g.k}).to(at::kFloat);                   // [..., K] -> [M, K]
    const auto amax = x2.abs().amax(1, /*keepdim=*/true).clamp_min(1e-20);  // [M, 1]
    auto xq = (x2 * (127.0 / amax)).round_().to(at::kChar);  // |x| * 127 / amax <= 127: no clamp needed
    if (xq.is_cuda() && g.m <= 16) {  // CUDA's _int_mm needs more than 16 rows: zero rows, dropped after
        xq = at::cat({xq, at::zeros({17 - g.m, g.k}, xq.options())}, 0);
    }
    auto y = at::_int_mm(xq, qweight).narrow(0, 0, g.m).to(at::kFloat);  // [M, K] x [K, N] -> [M, N]
    y.mul_(amax * (1.0 / 127.0)).mul_(wscale);
    if (bias.has_value() && bias->defined()) {
        y.add_(*bias);
    }
    return y.view(g.out_sizes).to(x.scalar_type());  // [M, N] -> [..., N]
}

namespace {

at::Tensor int8_linear_meta(const at::Tensor& x, const at::Tensor& qweight, const at::Tensor& wscale,
                            const std::optional<at::Tensor>& bias) {
    return at::empty(check_int8_linear_inputs(x, qweight, wscale, bias).out_sizes, x.options());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(flashvsr, m) {
    m.def("int8_linear(Tensor x, Tensor qweight, Tensor wscale, Tensor? bias) -> Tensor");
}

TORCH_LIBRARY_IMPL(flashvsr, Meta, m) { m.impl("int8_linear", &int8_linear_meta); }

// Every backend without its own kernel (CUDA today) runs the ATen composition.
TORCH_LIBRARY_IMPL(flashvsr, CompositeExplicitAutograd, m) { m.impl("int8_linear", &int8_linear_reference); }

}  // namespace flashvsr::kernels
