// Initial latent noise, drawn per chunk and keyed by global position (MODEL.md §0 item 4):
// the value at (seed, channel, t, y, x) is a pure function of those five numbers (Philox4x32-10 counter-based
// RNG + Box-Muller), so a chunk needs O(chunk) memory and a tile sees exactly the noise the same pixels would
// see untiled.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace flashvsr::engine {

/// A region of the global latent grid: frames [t0, t0+nt), rows [y0, y0+ny), columns [x0, x0+nx).
struct LatentRegion {
    int64_t t0 = 0, nt = 0;
    int64_t y0 = 0, ny = 0;
    int64_t x0 = 0, nx = 0;
};

/// Standard-normal noise float32 [1, channels, nt, ny, nx] for `region` (CPU). channels <= 4 * 2^32.
at::Tensor latent_noise(uint64_t seed, const LatentRegion& region, int64_t channels = 16);

/// The Philox4x32-10 block function (exposed for tests against published known-answer vectors).
void philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

}  // namespace flashvsr::engine
