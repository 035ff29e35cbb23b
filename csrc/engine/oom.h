// Out-of-memory classification: which errors the tiling fallback treats as "out of memory" (docs/TILING.md).
//
// A CUDA allocation failure does not always arrive as c10::OutOfMemoryError from the caching allocator:
// cuBLAS and cuDNN allocate their own workspaces and report a status code, and a kernel launch or a
// pinned-host allocation reports cudaErrorMemoryAllocation. Every one of them is recognised here, in one
// place, so that each becomes the smaller-tile retry instead of a failed video.
#pragma once

#include <exception>
#include <string>
#include <string_view>

namespace flashvsr::engine {

enum class OomKind {
    kNone,       // not an out-of-memory error
    kHost,       // std::bad_alloc, or LibTorch's CPU allocator ("DefaultCPUAllocator: ...")
    kAllocator,  // c10::OutOfMemoryError (the CUDA caching allocator: "CUDA out of memory. Tried to ...")
    kCublas,  // "CUBLAS_STATUS_ALLOC_FAILED", or cublasCreate failing with NOT_INITIALIZED (no memory left)
    kCudnn,   // "CUDNN_STATUS_ALLOC_FAILED", or NOT_SUPPORTED whose message mentions memory
    kCudaRuntime,  // c10::AcceleratorError with cudaErrorMemoryAllocation, or "CUDA error: out of memory"
};

/// "none" | "host" | "allocator" | "cublas" | "cudnn" | "cuda_runtime".
const char* to_string(OomKind kind);

/// The kind of out-of-memory error `message` (an exception's what()) reports, from its text alone.
OomKind classify_out_of_memory_message(std::string_view message);

/// The kind of out-of-memory error `e` is (kNone for anything else, including flashvsr's own errors).
OomKind classify_out_of_memory(const std::exception_ptr& e);

/// The first line of an exception's message (c10::Error messages carry a backtrace after it).
std::string first_line(std::string_view message);

}  // namespace flashvsr::engine
