#include "kernels/int8_linear/int_mm.h"

#include <ATen/ATen.h>
#include <ATen/cpu/Utils.h>

#include <algorithm>

namespace flashvsr::kernels {

bool int_mm_is_fast() {
    return at::globalContext().userEnabledMkldnn() && at::cpu::is_avx512_vnni_supported();
}

at::Tensor int_mm_cpu(const at::Tensor& a, const at::Tensor& b, IntMmPath path) {
    TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0) && a.scalar_type() == at::kChar &&
                    b.scalar_type() == at::kChar && a.is_cpu() && b.is_cpu(),
                "int_mm_cpu: expected int8 CPU matrices [M, K] x [K, N], got ", a.sizes(), " x ", b.sizes());
    if (path == IntMmPath::kATen || (path == IntMmPath::kAuto && int_mm_is_fast())) {
        return at::_int_mm(a, b);
    }
    const int64_t k = a.size(1);
    at::Tensor acc;
    for (int64_t k0 = 0; k0 < k || !acc.defined(); k0 += kIntMmSlice) {
        const int64_t n = std::min(kIntMmSlice, k - k0);
        // Integer-valued float32 products and sums below 2^24: exact.
        const at::Tensor part =
            at::mm(a.narrow(1, k0, n).to(at::kFloat), b.narrow(0, k0, n).to(at::kFloat)).to(at::kInt);
        if (acc.defined()) {
            acc.add_(part);
        } else {
            acc = part;
        }
    }
    return acc;
}

}  // namespace flashvsr::kernels
