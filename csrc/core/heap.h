// How the process's C heap treats large blocks (glibc), for programs that own their process.
#pragma once

namespace flashvsr::core {

/// glibc hands every block over 32 MiB straight to mmap and unmaps it when freed, so each large tensor
/// (the DiT's activations are 100-400 MB at 896x512) page-faults and zeroes all of its pages again, one chunk
/// after another: 10-15 % of a CPU run. This keeps freed blocks in the heap for reuse instead (no mmap for
/// allocations, no trimming), unless the user set MALLOC_MMAP_MAX_, MALLOC_TRIM_THRESHOLD_ or
/// MALLOC_MMAP_THRESHOLD_ (then glibc already follows those). The resident size then stays at its peak
/// instead of falling between chunks; the peak itself does not grow. Returns true when it changed the
/// settings. Called by the `flashvsr` command and the benchmarks; a library inside someone else's process
/// (Python, ComfyUI) does not call it.
bool keep_freed_heap_memory();

}  // namespace flashvsr::core
