// A self-check of the core's intra-op parallelism.
#pragma once

namespace flashvsr::core {

/// How many threads at::parallel_for, compiled into this library, uses for a range of
/// at::get_num_threads() items with grain 1. It equals at::get_num_threads() when the library is built with
/// OpenMP (as torch is); 1 means every CPU kernel of the core runs on one thread.
int parallel_for_threads();

}  // namespace flashvsr::core
