// CPU kernel of int8_linear, fused: one pass over x (row absmax, then the row to int8 while it is in cache),
// the int8 product (int_mm.h: at::_int_mm, or exact float32 GEMMs where _int_mm is slow), one epilogue pass
// that turns the int32 products into the float32 output in place.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "kernels/int8_linear/int8_linear.h"
#include "kernels/int8_linear/int8_linear_rows.h"
#include "kernels/int8_linear/int_mm.h"

namespace flashvsr::kernels {
namespace {

/// Rows per task: about 64 K elements, at least one row.
int64_t grain(int64_t row_len) {
    return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(row_len, 1));
}

at::Tensor int8_linear_cpu(const at::Tensor& x, const at::Tensor& qweight, const at::Tensor& wscale,
                           const std::optional<at::Tensor>& bias) {
    const Int8LinearGeometry g = check_int8_linear_inputs(x, qweight, wscale, bias);
    if (g.m == 0) {
        return at::empty(g.out_sizes, x.options());
    }
    const at::Tensor x2 = x.reshape({g.m, g.k}).to(at::kFloat).contiguous();  // [..., K] -> [M, K] float32
    const at::Tensor ws = wscale.contiguous();
    const bool has_bias = bias.has_value() && bias->defined();
    const at::Tensor b = has_bias ? bias->to(at::kFloat).contiguous() : at::Tensor();
    const int8_rows::Isa isa = int8_rows::best_isa();

    at::Tensor xq = at::empty({g.m, g.k}, x2.options().dtype(at::kChar));
    at::Tensor tok = at::empty({g.m}, x2.options());
    const float* xp = x2.const_data_ptr<float>();
    int8_t* qp = xq.data_ptr<int8_t>();
    float* tp = tok.data_ptr<float>();
    at::parallel_for(0, g.m, grain(g.k), [&](int64_t begin, int64_t end) {
        int8_rows::quantize_rows(xp, g.k, begin, end, qp, tp, isa);
    });

    at::Tensor acc = int_mm_cpu(xq, qweight);  // [M, K] x [K, N] -> [M, N] int32 (int_mm.h)
    TORCH_INTERNAL_ASSERT(acc.is_contiguous() && acc.scalar_type() == at::kInt);
    int32_t* ap = acc.data_ptr<int32_t>();
    const float* wp = ws.const_data_ptr<float>();
    const float* bp = has_bias ? b.const_data_ptr<float>() : nullptr;
    at::parallel_for(0, g.m, grain(g.n), [&](int64_t begin, int64_t end) {
        int8_rows::dequantize_rows(ap, g.n, begin, end, tp, wp, bp, isa);
    });
    return acc.view(at::kFloat)
        .view(g.out_sizes)
        .to(x.scalar_type());  // int32 storage now holds float32 bits
}

}  // namespace

TORCH_LIBRARY_IMPL(flashvsr, CPU, m) { m.impl("int8_linear", &int8_linear_cpu); }

}  // namespace flashvsr::kernels
