// Which vector instruction set the hand-vectorised CPU loops of the core may use, decided once at run time.
#pragma once

#include <vector>

namespace flashvsr::core {

/// The forms the core's hand-vectorised CPU loops come in. kAvx2 is AVX2 with FMA (x86-64 since 2013-2015:
/// Haswell, Zen); kAvx512 is AVX-512F.
enum class CpuIsa { kScalar, kAvx2, kAvx512 };

/// Whether this build has the form (x86-64, GCC or Clang, for the vector forms) and this CPU runs it.
bool cpu_supports(CpuIsa isa);

/// The widest form cpu_supports.
CpuIsa best_cpu_isa();

/// Every form cpu_supports, widest first (tests run each against the scalar form).
std::vector<CpuIsa> supported_cpu_isas();

}  // namespace flashvsr::core
