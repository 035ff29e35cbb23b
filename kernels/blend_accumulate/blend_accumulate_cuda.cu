// CUDA twin of blend_accumulate: one thread per tile element; no torch headers here.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/blend_accumulate/blend_accumulate_cuda.cuh"

namespace flashvsr::kernels {
namespace {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__global__ void blend_accumulate_kernel(float* __restrict__ canvas, const T* __restrict__ tile,
                                        BlendGeometry g) {
    const int64_t n = g.frames * g.tile_h * g.tile_w * g.channels;
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
        const int64_t c = i % g.channels;
        const int64_t x = (i / g.channels) % g.tile_w;
        const int64_t y = (i / (g.channels * g.tile_w)) % g.tile_h;
        const int64_t f = i / (g.channels * g.tile_w * g.tile_h);
        const float w = blend_ramp(y, g.tile_h, g.ramp_top, g.ramp_bottom) *
                        blend_ramp(x, g.tile_w, g.ramp_left, g.ramp_right);
        // Each canvas element is touched by one thread of this launch; tiles run one launch after another
        // on the same stream, so a plain read-modify-write is race-free.
        canvas[((f * g.canvas_h + g.top + y) * g.canvas_w + g.left + x) * g.channels + c] +=
            w * to_float(tile[i]);
    }
}

template <typename T>
int launch(float* canvas, const void* tile, const BlendGeometry& g, cudaStream_t stream) {
    const int64_t n = g.frames * g.tile_h * g.tile_w * g.channels;
    const int threads = 256;
    const int64_t blocks64 = (n + threads - 1) / threads;
    const int blocks = static_cast<int>(blocks64 < 65535 * 8 ? blocks64 : 65535 * 8);
    blend_accumulate_kernel<T><<<blocks, threads, 0, stream>>>(canvas, static_cast<const T*>(tile), g);
    return static_cast<int>(cudaGetLastError());
}

}  // namespace

int blend_accumulate_cuda_launch(float* canvas, const void* tile, TileType type, const BlendGeometry& g,
                                 void* stream) {
    auto s = static_cast<cudaStream_t>(stream);
    switch (type) {
        case TileType::kFloat32:
            return launch<float>(canvas, tile, g, s);
        case TileType::kFloat16:
            return launch<__half>(canvas, tile, g, s);
        case TileType::kBFloat16:
            return launch<__nv_bfloat16>(canvas, tile, g, s);
    }
    return static_cast<int>(cudaErrorInvalidValue);
}

}  // namespace flashvsr::kernels
