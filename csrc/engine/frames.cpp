#include "csrc/engine/frames.h"

#include <flashvsr/errors.h>

#include <string>

namespace flashvsr::engine {
namespace {

FramePlan from_fed(int64_t n, int64_t padded, int64_t fed, int64_t output) {
    FramePlan p;
    p.input = n;
    p.padded = padded;
    p.fed = fed;
    p.latents = (fed - 1) / 4;
    p.chunks = (fed - 1) / 8 - 2;
    p.output = output;
    return p;
}

}  // namespace

FramePlan plan_frames(int64_t n) {
    if (n < 1) {
        throw InputError("frame count must be >= 1, got " + std::to_string(n));
    }
    int64_t padded = 21;
    if (n > 21) {
        padded = n + ((5 - n % 8) % 8 + 8) % 8;  // smallest 8k+5 >= n
    }
    return from_fed(n, padded, padded + 4, n);
}

FramePlan plan_frames_official(int64_t n) {
    if (n < 21) {
        throw InputError("the official frame rule needs at least 21 frames, got " + std::to_string(n));
    }
    const int64_t fed = 8 * ((n + 3) / 8) + 1;
    return from_fed(n, fed - 4, fed, fed - 4);
}

ChunkPlan plan_chunk(int64_t k) {
    if (k < 0) {
        throw InputError("chunk index must be >= 0, got " + std::to_string(k));
    }
    ChunkPlan c;
    c.index = k;
    if (k == 0) {
        c.lq_clips.emplace_back(0, 1);  // priming call of the LQ projector
        for (int64_t s = 1; s < 25; s += 4) {
            c.lq_clips.emplace_back(s, s + 4);
        }
        c.latent_begin = 0;
        c.latent_end = 6;
        c.cond_begin = 0;
        c.cond_end = 21;
        c.out_begin = 0;
        c.out_end = 21;
    } else {
        c.lq_clips.emplace_back(8 * k + 17, 8 * k + 21);
        c.lq_clips.emplace_back(8 * k + 21, 8 * k + 25);
        c.latent_begin = 4 + 2 * k;
        c.latent_end = 6 + 2 * k;
        c.cond_begin = 8 * k + 13;
        c.cond_end = 8 * k + 21;
        c.out_begin = 8 * k + 13;
        c.out_end = 8 * k + 21;
    }
    c.lq_needed = c.lq_clips.back().second;
    return c;
}

}  // namespace flashvsr::engine
