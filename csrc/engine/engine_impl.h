// Internals of flashvsr::Engine: the loaded networks and model-lifetime constants (immutable after load).
#pragma once

#include <flashvsr/flashvsr.h>

#include <memory>

#include "models/dit.h"
#include "models/lq_proj.h"
#include "models/tc_decoder.h"
#include "models/vae_decoder.h"

namespace flashvsr {

struct Engine::Impl {
    ~Impl();  // frees the networks, then hands the freed memory back (engine::return_free_memory)
    EngineInfo info;
    at::Device device{at::kCPU};
    at::ScalarType dtype = at::kFloat;
    bool keep_lq_on_host =
        false;  // tiny-long: LQ frames wait on the host, only a chunk's slice is on the device
    models::CacheOrder cache_order = models::CacheOrder::UseThenUpdate;
    std::unique_ptr<models::DiT> dit;
    std::unique_ptr<models::LQProj> lq_proj;
    std::unique_ptr<models::TCDecoder> tc_decoder;    // tiny, tiny-long
    std::unique_ptr<models::VAEDecoder> vae_decoder;  // full
    models::DiTConstants constants;                   // t, t_mod, cross-attention K/V from the prompt
};

namespace engine {

/// "auto" | "cpu" | "cuda" | "cuda:N" -> a device (InputError naming the value; "cuda" without a GPU is an
/// error).
at::Device resolve_device(const std::string& device);
/// "auto" | "bf16" | "fp16" | "fp32" -> a dtype for `device`.
at::ScalarType resolve_dtype(const std::string& dtype, const at::Device& device);
const char* dtype_name(at::ScalarType t);
/// Hands freed memory back after a model is unloaded, so RSS / device memory really drop: glibc's heap
/// pages to the OS (malloc_trim) and, on CUDA builds, the caching allocator's unused blocks to the driver.
void return_free_memory();
/// glibc's free heap pages to the OS (malloc_trim), nothing else; between the networks of a CPU chunk. Each
/// network frees its activations in its own order, and the holes they leave in the heap stayed resident
/// under the next network's peak (896x512: the decoder's peak fell 6476 -> 6230 MiB above the weights).
void trim_host_heap();
void empty_cuda_cache();  // memory_cuda.cpp (a no-op in CPU builds)
/// The CUDA figures of a memory report (memory_cuda.cpp; leaves `cuda` false in CPU builds).
void fill_cuda_memory(MemoryReport& report);

}  // namespace engine
}  // namespace flashvsr
