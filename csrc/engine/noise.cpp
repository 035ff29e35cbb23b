#include "csrc/engine/noise.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <numbers>

namespace flashvsr::engine {

void philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
    constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; ++round) {
        const uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
        const uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
        const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
        const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += kW0;
        k1 += kW1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

at::Tensor latent_noise(uint64_t seed, const LatentRegion& r, int64_t channels) {
    TORCH_CHECK(r.nt >= 0 && r.ny >= 0 && r.nx >= 0 && r.t0 >= 0 && r.y0 >= 0 && r.x0 >= 0,
                "latent_noise: negative region (t0=", r.t0, " nt=", r.nt, " y0=", r.y0, " ny=", r.ny,
                " x0=", r.x0, " nx=", r.nx, ")");
    TORCH_CHECK(channels > 0, "latent_noise: channels must be > 0, got ", channels);
    at::Tensor out = at::empty({1, channels, r.nt, r.ny, r.nx}, at::kFloat);
    float* dst = out.data_ptr<float>();
    const uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
    const int64_t plane = r.nt * r.ny * r.nx;
    const int64_t groups = (channels + 3) / 4;  // one Philox block = 4 normals = 4 consecutive channels
    at::parallel_for(0, plane, 1024, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            const int64_t x = r.x0 + i % r.nx;
            const int64_t y = r.y0 + (i / r.nx) % r.ny;
            const int64_t t = r.t0 + i / (r.nx * r.ny);
            for (int64_t g = 0; g < groups; ++g) {
                const uint32_t ctr[4] = {static_cast<uint32_t>(g), static_cast<uint32_t>(x),
                                         static_cast<uint32_t>(y), static_cast<uint32_t>(t)};
                uint32_t bits[4];
                philox4x32_10(ctr, key, bits);
                for (int pair = 0; pair < 2; ++pair) {
                    // u1 in (0, 1] so that log(u1) is finite; u2 in [0, 1).
                    const double u1 = (static_cast<double>(bits[2 * pair]) + 1.0) / 4294967296.0;
                    const double u2 = static_cast<double>(bits[2 * pair + 1]) / 4294967296.0;
                    const double rad = std::sqrt(-2.0 * std::log(u1));
                    const double ang = 2.0 * std::numbers::pi * u2;
                    const int64_t c0 = 4 * g + 2 * pair;
                    if (c0 < channels) {
                        dst[c0 * plane + i] = static_cast<float>(rad * std::cos(ang));
                    }
                    if (c0 + 1 < channels) {
                        dst[(c0 + 1) * plane + i] = static_cast<float>(rad * std::sin(ang));
                    }
                }
            }
        }
    });
    return out;
}

}  // namespace flashvsr::engine
