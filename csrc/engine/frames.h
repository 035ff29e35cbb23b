// Frame bookkeeping of the streaming schedule (MODEL.md §6.2-6.3): how many frames are fed, how many latent
// frames and chunks that makes, and which frame ranges each chunk consumes and produces.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace flashvsr::engine {

/// Frame counts of one video.
struct FramePlan {
    int64_t input = 0;    // N: frames given by the user
    int64_t padded = 0;   // N': frames after padding with copies of the last frame (>= N, >= 21, = 8k+5)
    int64_t fed = 0;      // F = N' + 4: frames fed to the pipeline (8n+1)
    int64_t latents = 0;  // T = (F-1)/4
    int64_t chunks = 0;   // P = (F-1)/8 - 2
    int64_t output = 0;   // frames returned: N (the product's rule), F-4 for the official rule
};

/// The product's rule: N >= 1 frames in, exactly N out (pad to 21, else to the next 8k+5, then +4).
FramePlan plan_frames(int64_t n);

/// The official scripts' rule (for comparison and tests only): F = 8*floor((N+3)/8)+1, output F-4 <= N
/// (drops up to 7 trailing frames); N < 21 throws InputError.
FramePlan plan_frames_official(int64_t n);

/// What chunk k reads and writes (all ranges half-open, in frames of the padded LQ sequence).
struct ChunkPlan {
    int64_t index = 0;
    std::vector<std::pair<int64_t, int64_t>> lq_clips;  // LQ-projector calls: chunk 0 starts with [0,1)
    int64_t latent_begin = 0, latent_end = 0;           // latent frames produced (also the RoPE positions)
    int64_t cond_begin = 0, cond_end = 0;               // LQ frames conditioning the decoder / colour fix
    int64_t out_begin = 0, out_end = 0;                 // output frames produced
    int64_t lq_needed = 0;                              // LQ frames that must be available: max clip end
};

ChunkPlan plan_chunk(int64_t k);

}  // namespace flashvsr::engine
