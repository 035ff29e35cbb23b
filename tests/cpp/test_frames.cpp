// MODEL.md §13 items 13: frame bookkeeping and the chunk schedule.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <vector>

#include "csrc/engine/frames.h"

using namespace flashvsr::engine;

TEST(FramePlan, ProductRuleReturnsExactlyN) {
    for (int64_t n = 1; n <= 200; ++n) {
        const FramePlan p = plan_frames(n);
        EXPECT_EQ(p.output, n);
        EXPECT_GE(p.padded, n);
        EXPECT_GE(p.padded, 21);
        EXPECT_EQ(p.padded % 8, 5) << n;
        EXPECT_LT(p.padded - std::max<int64_t>(n, 21), 8) << n;  // the smallest such length
        EXPECT_EQ(p.fed, p.padded + 4);
        EXPECT_EQ(p.fed % 8, 1);
        EXPECT_EQ(p.latents, (p.fed - 1) / 4);
        EXPECT_EQ(p.chunks, (p.fed - 1) / 8 - 2);
        EXPECT_GE(p.chunks, 1);
        // The last chunk produces frames up to F-4 = N' >= N.
        EXPECT_EQ(plan_chunk(p.chunks - 1).out_end, p.fed - 4);
    }
    EXPECT_EQ(plan_frames(1).padded, 21);
    EXPECT_EQ(plan_frames(22).padded, 29);
    EXPECT_EQ(plan_frames(29).padded, 29);
    EXPECT_EQ(plan_frames(33).padded, 37);
    EXPECT_THROW(plan_frames(0), flashvsr::InputError);
}

TEST(FramePlan, OfficialRule) {
    for (int64_t n = 1; n < 21; ++n) {
        EXPECT_THROW(plan_frames_official(n), flashvsr::InputError);
    }
    for (int64_t n = 21; n <= 200; ++n) {
        const FramePlan p = plan_frames_official(n);
        EXPECT_EQ(p.fed, 8 * ((n + 3) / 8) + 1);
        EXPECT_EQ(p.output, p.fed - 4);
        EXPECT_LE(p.output, n);
        EXPECT_GE(p.output, n - 7);
        EXPECT_EQ(p.output == n, n % 8 == 5);
        EXPECT_EQ(p.latents, (p.fed - 1) / 4);
        EXPECT_EQ(p.chunks, (p.fed - 1) / 8 - 2);
    }
    // MODEL.md §6.7: 33 frames -> F = 33, T = 8, P = 2, 29 frames out.
    const FramePlan p = plan_frames_official(33);
    EXPECT_EQ(p.fed, 33);
    EXPECT_EQ(p.latents, 8);
    EXPECT_EQ(p.chunks, 2);
    EXPECT_EQ(p.output, 29);
}

TEST(ChunkPlan, SlicesCoverEachFrameExactlyOnce) {
    for (int64_t n : {1, 21, 22, 33, 40, 100, 200}) {
        const FramePlan p = plan_frames(n);
        std::vector<int> lq(static_cast<size_t>(p.fed), 0), cond(static_cast<size_t>(p.fed - 4), 0),
            out(static_cast<size_t>(p.fed - 4), 0), lat(static_cast<size_t>(p.latents), 0);
        for (int64_t k = 0; k < p.chunks; ++k) {
            const ChunkPlan c = plan_chunk(k);
            for (size_t i = 0; i < c.lq_clips.size(); ++i) {
                const auto [b, e] = c.lq_clips[i];
                EXPECT_EQ(e - b, (k == 0 && i == 0) ? 1 : 4);
                for (int64_t f = b; f < e; ++f) {
                    lq.at(static_cast<size_t>(f))++;
                }
            }
            for (int64_t f = c.cond_begin; f < c.cond_end; ++f) {
                cond.at(static_cast<size_t>(f))++;
            }
            for (int64_t f = c.out_begin; f < c.out_end; ++f) {
                out.at(static_cast<size_t>(f))++;
            }
            for (int64_t t = c.latent_begin; t < c.latent_end; ++t) {
                lat.at(static_cast<size_t>(t))++;
            }
            EXPECT_EQ(c.lq_needed, k == 0 ? 25 : 8 * k + 25);
            EXPECT_EQ(c.cond_begin, c.out_begin);  // decoder condition aligned with the output frames
            EXPECT_EQ(c.cond_end, c.out_end);
        }
        // The priming call reads frame 0, the clips start at frame 1: every frame exactly once.
        EXPECT_EQ(lq[0], 1);
        for (size_t f = 1; f < lq.size(); ++f) {
            EXPECT_EQ(lq[f], 1) << "LQ frame " << f << ", N=" << n;
        }
        for (size_t f = 0; f < cond.size(); ++f) {
            EXPECT_EQ(cond[f], 1) << "cond frame " << f;
        }
        for (size_t f = 0; f < out.size(); ++f) {
            EXPECT_EQ(out[f], 1) << "out frame " << f;
        }
        for (size_t t = 0; t < lat.size(); ++t) {
            EXPECT_EQ(lat[t], 1) << "latent " << t;
        }
    }
    // RoPE positions (MODEL.md §2.6 item 2): chunk 1 -> 6,7; chunk 2 -> 8,9.
    EXPECT_EQ(plan_chunk(1).latent_begin, 6);
    EXPECT_EQ(plan_chunk(2).latent_begin, 8);
}
