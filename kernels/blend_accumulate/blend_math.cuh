// Weight math shared by the CPU and CUDA twins of blend_accumulate (no torch headers).
//
// A tile's weight at (y, x) is ramp(y; h, top, bottom) * ramp(x; w, left, right). On a side with a
// ramp of length r > 0 the weight climbs (i + 0.5) / r over the first r pixels; a side with r = 0 (an
// image border, or no neighbour) keeps weight 1. Two neighbours that overlap by o pixels both use r = o
// on the shared side, so their weights at every pixel of the overlap sum to exactly 1:
//   (p - s + 0.5) / o + (e - p - 0.5) / o = (e - s) / o = 1.
// Products of such 1-D partitions of unity form a 2-D partition of unity over a tile grid.
#pragma once

#if defined(__CUDACC__)
#define FLASHVSR_HD __host__ __device__ __forceinline__
#else
#define FLASHVSR_HD inline
#endif

#include <cstdint>

namespace flashvsr::kernels {

struct BlendGeometry {
    int64_t frames = 0;    // F
    int64_t canvas_h = 0;  // H
    int64_t canvas_w = 0;  // W
    int64_t channels = 0;  // C
    int64_t tile_h = 0;    // h
    int64_t tile_w = 0;    // w
    int64_t top = 0;       // tile origin inside the canvas
    int64_t left = 0;
    int64_t ramp_top = 0;  // ramp lengths in pixels, 0 = no ramp on that side
    int64_t ramp_bottom = 0;
    int64_t ramp_left = 0;
    int64_t ramp_right = 0;
};

/// 1-D weight of position i in a tile of length n with ramps r0 (start) and r1 (end).
FLASHVSR_HD float blend_ramp(int64_t i, int64_t n, int64_t r0, int64_t r1) {
    float w = 1.0f;
    if (r0 > 0 && i < r0) {
        w *= (static_cast<float>(i) + 0.5f) / static_cast<float>(r0);
    }
    if (r1 > 0 && i >= n - r1) {
        w *= (static_cast<float>(n - i) - 0.5f) / static_cast<float>(r1);
    }
    return w;
}

}  // namespace flashvsr::kernels
