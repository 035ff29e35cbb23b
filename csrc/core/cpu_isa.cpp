#include "csrc/core/cpu_isa.h"

namespace flashvsr::core {

bool cpu_supports(CpuIsa isa) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    switch (isa) {
        case CpuIsa::kAvx512:
            return avx512;
        case CpuIsa::kAvx2:
            return avx2;
        default:
            return true;
    }
#else
    return isa == CpuIsa::kScalar;
#endif
}

CpuIsa best_cpu_isa() {
    if (cpu_supports(CpuIsa::kAvx512)) {
        return CpuIsa::kAvx512;
    }
    return cpu_supports(CpuIsa::kAvx2) ? CpuIsa::kAvx2 : CpuIsa::kScalar;
}

std::vector<CpuIsa> supported_cpu_isas() {
    std::vector<CpuIsa> out;
    for (const CpuIsa isa : {CpuIsa::kAvx512, CpuIsa::kAvx2, CpuIsa::kScalar}) {
        if (cpu_supports(isa)) {
            out.push_back(isa);
        }
    }
    return out;
}

}  // namespace flashvsr::core
