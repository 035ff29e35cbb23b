// Out-of-memory classification (see oom.h).
#include "csrc/engine/oom.h"

#include <flashvsr/errors.h>

#include <c10/util/Exception.h>

#include <new>

namespace flashvsr::engine {
namespace {

constexpr int kCudaErrorMemoryAllocation =
    2;  // cudaErrorMemoryAllocation (driver_types.h), stable since CUDA 1

bool contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

}  // namespace

const char* to_string(OomKind kind) {
    switch (kind) {
        case OomKind::kNone:
            return "none";
        case OomKind::kHost:
            return "host";
        case OomKind::kAllocator:
            return "allocator";
        case OomKind::kCublas:
            return "cublas";
        case OomKind::kCudnn:
            return "cudnn";
        case OomKind::kCudaRuntime:
            return "cuda_runtime";
    }
    return "none";
}

OomKind classify_out_of_memory_message(std::string_view m) {
    if (contains(m, "CUBLAS_STATUS_ALLOC_FAILED")) {
        return OomKind::kCublas;
    }
    // cublasCreate reports NOT_INITIALIZED when it cannot allocate the handle's resources.
    if (contains(m, "CUBLAS_STATUS_NOT_INITIALIZED") && contains(m, "cublasCreate")) {
        return OomKind::kCublas;
    }
    if (contains(m, "CUDNN_STATUS_ALLOC_FAILED")) {
        return OomKind::kCudnn;
    }
    if (contains(m, "CUDNN_STATUS_NOT_SUPPORTED") && (contains(m, "memory") || contains(m, "MEMORY"))) {
        return OomKind::kCudnn;
    }
    if (contains(m, "CUDA error: out of memory") || contains(m, "CUDA out of memory")) {
        return OomKind::kCudaRuntime;
    }
    if (contains(m, "DefaultCPUAllocator: can't allocate memory") ||
        contains(m, "DefaultCPUAllocator: not enough memory")) {
        return OomKind::kHost;
    }
    return OomKind::kNone;
}

OomKind classify_out_of_memory(const std::exception_ptr& e) {
    if (!e) {
        return OomKind::kNone;
    }
    try {
        std::rethrow_exception(e);
    } catch (const std::bad_alloc&) {
        return OomKind::kHost;
    } catch (const c10::OutOfMemoryError& x) {
        return classify_out_of_memory_message(x.what()) == OomKind::kHost ? OomKind::kHost
                                                                          : OomKind::kAllocator;
    } catch (const c10::AcceleratorError& x) {
        if (x.get_error_code() == kCudaErrorMemoryAllocation) {
            return OomKind::kCudaRuntime;
        }
        return classify_out_of_memory_message(x.what());
    } catch (const c10::Error& x) {
        return classify_out_of_memory_message(x.what());
    } catch (...) {
        return OomKind::kNone;  // flashvsr::Error and everything else: not ours to retry
    }
}

std::string first_line(std::string_view message) {
    const size_t nl = message.find('\n');
    return std::string(message.substr(0, nl));
}

}  // namespace flashvsr::engine
