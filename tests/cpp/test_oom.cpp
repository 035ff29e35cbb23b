// The out-of-memory classifier (engine/oom.h): every way a CUDA or host allocation failure surfaces is
// recognised, and nothing else is. The fallback itself (each kind injected into a stream) is tested in
// test_tiling.cpp (OutOfMemoryInTheFirstChunkRetriesWithSmallerTiles).
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <c10/util/Exception.h>

#include <new>
#include <string>

#include "csrc/engine/oom.h"

using flashvsr::engine::classify_out_of_memory;
using flashvsr::engine::classify_out_of_memory_message;
using flashvsr::engine::OomKind;

namespace {

template <class F>
OomKind kind_of(F&& raise) {
    try {
        raise();
    } catch (...) {
        return classify_out_of_memory(std::current_exception());
    }
    ADD_FAILURE() << "nothing thrown";
    return OomKind::kNone;
}

}  // namespace

TEST(OutOfMemoryClassifier, RecognisesEveryAllocationFailure) {
    EXPECT_EQ(kind_of([] { throw std::bad_alloc(); }), OomKind::kHost);
    EXPECT_EQ(kind_of([] {
                  TORCH_CHECK_WITH(OutOfMemoryError, false,
                                   "CUDA out of memory. Tried to allocate 20.00 MiB");
              }),
              OomKind::kAllocator);
    EXPECT_EQ(kind_of([] {
                  TORCH_CHECK_WITH(OutOfMemoryError, false,
                                   "DefaultCPUAllocator: not enough memory: 8 bytes");
              }),
              OomKind::kHost);
    EXPECT_EQ(kind_of([] {
                  TORCH_CHECK(false,
                              "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasLtMatmul(...)`");
              }),
              OomKind::kCublas);
    EXPECT_EQ(kind_of([] {
                  TORCH_CHECK(
                      false, "CUDA error: CUBLAS_STATUS_NOT_INITIALIZED when calling `cublasCreate(handle)`");
              }),
              OomKind::kCublas);
    EXPECT_EQ(kind_of([] { TORCH_CHECK(false, "cuDNN error: CUDNN_STATUS_ALLOC_FAILED"); }), OomKind::kCudnn);
    EXPECT_EQ(kind_of([] {
                  TORCH_CHECK(false, "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED (out of memory for workspace)");
              }),
              OomKind::kCudnn);
    EXPECT_EQ(kind_of([] {
                  throw c10::AcceleratorError({__func__, __FILE__, __LINE__}, 2, "CUDA error: out of memory");
              }),
              OomKind::kCudaRuntime);
    // The code decides for an AcceleratorError, whatever its text says.
    const auto plain_cuda_error = [] {
        throw c10::AcceleratorError({__func__, __FILE__, __LINE__}, 2, "CUDA error");
    };
    EXPECT_EQ(kind_of(plain_cuda_error), OomKind::kCudaRuntime);
    EXPECT_EQ(
        kind_of([] { TORCH_CHECK(false, "CUDA error: out of memory\nCompile with TORCH_USE_CUDA_DSA ..."); }),
        OomKind::kCudaRuntime);
    EXPECT_EQ(kind_of([] {
                  TORCH_CHECK(false,
                              "DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 bytes");
              }),
              OomKind::kHost);
}

TEST(OutOfMemoryClassifier, LeavesOtherErrorsAlone) {
    EXPECT_EQ(kind_of([] {
                  TORCH_CHECK(false,
                              "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error may appear if you "
                              "passed in a non-contiguous input.");
              }),
              OomKind::kNone);
    EXPECT_EQ(kind_of([] {
                  TORCH_CHECK(false,
                              "CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasGemmEx`");
              }),
              OomKind::kNone);
    EXPECT_EQ(kind_of([] {
                  throw c10::AcceleratorError({__func__, __FILE__, __LINE__}, 700,
                                              "CUDA error: an illegal memory access");
              }),
              OomKind::kNone);
    EXPECT_EQ(kind_of([] { TORCH_CHECK(false, "shape mismatch"); }), OomKind::kNone);
    // The library's own errors are never retried, even when their text mentions memory.
    EXPECT_EQ(kind_of([] { throw flashvsr::OutOfMemory("CUDA error: out of memory"); }), OomKind::kNone);
    EXPECT_EQ(kind_of([] { throw flashvsr::InputError("max_memory too small"); }), OomKind::kNone);
    EXPECT_EQ(kind_of([] { throw std::runtime_error("CUDA error: out of memory"); }), OomKind::kNone);
    EXPECT_EQ(kind_of([] { throw 42; }), OomKind::kNone);
    EXPECT_EQ(classify_out_of_memory(nullptr), OomKind::kNone);
}

TEST(OutOfMemoryClassifier, NamesAndFirstLine) {
    EXPECT_STREQ(flashvsr::engine::to_string(OomKind::kCudaRuntime), "cuda_runtime");
    EXPECT_STREQ(flashvsr::engine::to_string(OomKind::kNone), "none");
    EXPECT_EQ(classify_out_of_memory_message("CUBLAS_STATUS_ALLOC_FAILED"), OomKind::kCublas);
    EXPECT_EQ(flashvsr::engine::first_line("CUDA error: out of memory\nException raised from ..."),
              "CUDA error: out of memory");
    EXPECT_EQ(flashvsr::engine::first_line("one line"), "one line");
}
