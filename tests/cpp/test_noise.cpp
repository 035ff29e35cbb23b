// Per-chunk noise keyed by global latent position.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "csrc/engine/noise.h"

using namespace flashvsr::engine;

TEST(Noise, PhiloxKnownAnswers) {
    // Random123 known-answer vectors for philox4x32-10.
    struct Kat {
        uint32_t ctr[4], key[2], out[4];
    };
    const Kat kats[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (const Kat& k : kats) {
        uint32_t out[4];
        philox4x32_10(k.ctr, k.key, out);
        for (int i = 0; i < 4; ++i) {
            EXPECT_EQ(out[i], k.out[i]) << i;
        }
    }
}

TEST(Noise, RegionsAgreeWhereverTheyOverlap) {
    const at::Tensor whole = latent_noise(42, {0, 8, 0, 24, 0, 40});
    ASSERT_EQ(whole.sizes(), (at::IntArrayRef{1, 16, 8, 24, 40}));
    // A chunk (frames 6..8) of a tile (rows 5..21, cols 13..37) is the same slice of the whole video.
    const at::Tensor tile = latent_noise(42, {6, 2, 5, 16, 13, 24});
    EXPECT_TRUE(at::equal(tile, whole.slice(2, 6, 8).slice(3, 5, 21).slice(4, 13, 37)));
    EXPECT_FALSE(at::equal(latent_noise(43, {0, 8, 0, 24, 0, 40}), whole));
    EXPECT_TRUE(at::equal(latent_noise(42, {0, 8, 0, 24, 0, 40}), whole));  // deterministic
}

TEST(Noise, IsStandardNormal) {
    const at::Tensor n = latent_noise(7, {0, 4, 0, 64, 0, 64}).flatten();  // 262,144 values
    EXPECT_NEAR(n.mean().item<double>(), 0.0, 0.01);
    EXPECT_NEAR(n.std().item<double>(), 1.0, 0.01);
    EXPECT_NEAR((n.abs() < 1.0).to(at::kDouble).mean().item<double>(), 0.6827, 0.005);
    EXPECT_TRUE(at::isfinite(n).all().item<bool>());
    // Channels are not copies of each other.
    const at::Tensor c = latent_noise(7, {0, 1, 0, 32, 0, 32}).reshape({16, -1});
    const at::Tensor corr = at::corrcoef(c);
    EXPECT_LT((corr - at::eye(16, corr.options())).abs().max().item<double>(), 0.1);
}
