// CUDA twin of block_sparse_attention; no torch headers here.
//
// One thread block per (head, query window), one thread per query token (128). The block walks the kept
// key windows of its mask row in 16-key tiles staged in shared memory (float) and keeps a per-thread online
// softmax (running max, sum, float accumulator of head_dim values). Written for correctness first: it is
// compared with the CPU twin by the `gpu` tests and has not been tuned.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/block_sparse_attention/block_sparse_attention_cuda.cuh"

namespace flashvsr::kernels {
namespace {

constexpr int kTile = 16;  // keys staged per step

// Widening loads: double stays double, every other type becomes float.
__device__ __forceinline__ float widen(float x) { return x; }
__device__ __forceinline__ double widen(double x) { return x; }
__device__ __forceinline__ float widen(__half x) { return __half2float(x); }
__device__ __forceinline__ float widen(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_acc(double x);
template <>
__device__ __forceinline__ float from_acc<float>(double x) {
    return static_cast<float>(x);
}
template <>
__device__ __forceinline__ double from_acc<double>(double x) {
    return x;
}
template <>
__device__ __forceinline__ __half from_acc<__half>(double x) {
    return __float2half(static_cast<float>(x));
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(double x) {
    return __float2bfloat16(static_cast<float>(x));
}

// Acc is the accumulation type: double for double inputs, float otherwise.
template <typename T, typename Acc, int HD>
__global__ void __launch_bounds__(kBlockTokens)
    block_sparse_attention_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                  const bool* __restrict__ mask, T* __restrict__ out, AttentionGeometry g) {
    __shared__ Acc ks[kTile][HD];
    __shared__ Acc vs[kTile][HD];
    const int64_t row = blockIdx.x;  // h * nq + i
    const int64_t h = row / g.nq, i = row % g.nq;
    const int tid = threadIdx.x;
    const int64_t hd = g.head_dim, c = g.channels;
    const Acc scale = static_cast<Acc>(g.scale);
    Acc qr[HD];
    Acc acc[HD];
    const T* qp = q + (i * kBlockTokens + tid) * c + h * hd;
#pragma unroll 8
    for (int d = 0; d < HD; ++d) {
        qr[d] = d < hd ? static_cast<Acc>(widen(qp[d])) : Acc(0);
        acc[d] = Acc(0);
    }
    Acc m = -INFINITY, l = Acc(0);
    const bool* mrow = mask + row * g.nk;
    for (int64_t j = 0; j < g.nk; ++j) {
        if (!mrow[j]) {
            continue;  // uniform across the block: every thread reads the same mask byte
        }
        for (int t0 = 0; t0 < kBlockTokens; t0 += kTile) {
            __syncthreads();
            for (int e = tid; e < kTile * hd; e += kBlockTokens) {
                const int kk = e / static_cast<int>(hd), d = e % static_cast<int>(hd);
                const int64_t off = (j * kBlockTokens + t0 + kk) * c + h * hd + d;
                ks[kk][d] = static_cast<Acc>(widen(k[off]));
                vs[kk][d] = static_cast<Acc>(widen(v[off]));
            }
            __syncthreads();
            Acc s[kTile];
            Acc tile_max = -INFINITY;
#pragma unroll
            for (int kk = 0; kk < kTile; ++kk) {
                Acc dot = Acc(0);
#pragma unroll 8
                for (int d = 0; d < HD; ++d) {
                    if (d < hd) {
                        dot += qr[d] * ks[kk][d];
                    }
                }
                s[kk] = dot * scale;
                tile_max = s[kk] > tile_max ? s[kk] : tile_max;
            }
            const Acc m_new = m > tile_max ? m : tile_max;
            const Acc alpha = exp(m - m_new);
            Acc psum = Acc(0);
#pragma unroll
            for (int kk = 0; kk < kTile; ++kk) {
                s[kk] = exp(s[kk] - m_new);
                psum += s[kk];
            }
            l = l * alpha + psum;
#pragma unroll 8
            for (int d = 0; d < HD; ++d) {
                if (d < hd) {
                    Acc a = acc[d] * alpha;
#pragma unroll
                    for (int kk = 0; kk < kTile; ++kk) {
                        a += s[kk] * vs[kk][d];
                    }
                    acc[d] = a;
                }
            }
            m = m_new;
        }
    }
    T* op = out + (i * kBlockTokens + tid) * c + h * hd;
    for (int d = 0; d < hd; ++d) {
        op[d] = from_acc<T>(l > Acc(0) ? static_cast<double>(acc[d] / l) : 0.0);
    }
}

template <typename T, typename Acc, int HD>
int launch(const void* q, const void* k, const void* v, const bool* mask, void* out,
           const AttentionGeometry& g, cudaStream_t stream) {
    const int64_t rows = g.heads * g.nq;
    block_sparse_attention_kernel<T, Acc, HD><<<static_cast<unsigned>(rows), kBlockTokens, 0, stream>>>(
        static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), mask,
        static_cast<T*>(out), g);
    return static_cast<int>(cudaGetLastError());
}

template <typename T, typename Acc>
int launch_hd(const void* q, const void* k, const void* v, const bool* mask, void* out,
              const AttentionGeometry& g, cudaStream_t stream) {
    if (g.head_dim <= kCudaMaxHeadDim) {
        return launch<T, Acc, kCudaMaxHeadDim>(q, k, v, mask, out, g, stream);
    }
    return static_cast<int>(cudaErrorInvalidValue);
}

}  // namespace

int block_sparse_attention_cuda_launch(const void* q, const void* k, const void* v, const bool* mask,
                                       void* out, AttentionType type, const AttentionGeometry& g,
                                       void* stream) {
    if (g.heads * g.nq == 0) {
        return static_cast<int>(cudaSuccess);
    }
    auto s = static_cast<cudaStream_t>(stream);
    switch (type) {
        case AttentionType::kFloat32:
            return launch_hd<float, float>(q, k, v, mask, out, g, s);
        case AttentionType::kFloat64:
            return launch_hd<double, double>(q, k, v, mask, out, g, s);
        case AttentionType::kFloat16:
            return launch_hd<__half, float>(q, k, v, mask, out, g, s);
        case AttentionType::kBFloat16:
            return launch_hd<__nv_bfloat16, float>(q, k, v, mask, out, g, s);
    }
    return static_cast<int>(cudaErrorInvalidValue);
}

}  // namespace flashvsr::kernels
