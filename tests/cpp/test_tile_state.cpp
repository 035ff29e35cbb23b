// TileState goes through each model state's own for_each_tensor / cold_start / reset / bytes (no list of
// cache fields in the engine), and the one /proc/self/status reader.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "csrc/core/proc_status.h"
#include "csrc/engine/tile_state.h"

using flashvsr::engine::TileState;

namespace {

/// Every slot of a state whose vectors are sized: 2 DiT blocks, 3 VAE upsample entries.
TileState sized_state() {
    TileState s;
    s.dit.k_cache.resize(2);
    s.dit.v_cache.resize(2);
    s.vae.upsamples.resize(3);
    return s;
}

}  // namespace

TEST(TileState, ForEachTensorVisitsExactlyWhatBytesCounts) {
    TileState s = sized_state();
    int64_t slots = 0;
    s.for_each_tensor([&](at::Tensor& t) {
        EXPECT_FALSE(t.defined());
        t = at::ones({++slots}, at::kFloat);  // slot i holds i floats
    });
    // LQ 2 + DiT 2x2 + TCDecoder 9 + VAE (conv1, 2 residual caches x 2, 3 upsamples x 3, head2) 15.
    EXPECT_EQ(slots, 2 + 4 + 9 + 15);
    EXPECT_EQ(s.bytes(), 4 * slots * (slots + 1) / 2);  // each slot counted once
    EXPECT_EQ(s.lq.bytes() + s.dit.bytes() + s.tc.bytes() + s.vae.bytes(), s.bytes());
}

TEST(TileState, ColdStartAndResetGoThroughEveryModelState) {
    TileState s = sized_state();
    s.for_each_tensor([](at::Tensor& t) { t = at::ones({4}); });
    s.lq.clip_index = 7;
    s.dit.chunk_index = 9;
    s.tc.started = true;
    s.vae.started = true;
    s.cold_start(5);
    EXPECT_EQ(s.bytes(), 0);
    EXPECT_EQ(s.lq.clip_index, 0);    // the next LQ-projector call primes
    EXPECT_EQ(s.dit.chunk_index, 5);  // RoPE offset of the global chunk
    EXPECT_TRUE(s.dit.k_cache.empty());
    EXPECT_TRUE(s.tc.started);  // zero memory, no 3-frame trim
    EXPECT_FALSE(s.vae.started);
    EXPECT_TRUE(s.vae.mid_stream);  // upsample3d first-step rule spent
    s.for_each_tensor([](at::Tensor& t) { t = at::ones({4}); });
    s.reset();
    EXPECT_EQ(s.bytes(), 0);
    EXPECT_EQ(s.dit.chunk_index, 0);
    EXPECT_FALSE(s.tc.started);
    EXPECT_FALSE(s.vae.mid_stream);
}

TEST(ProcStatus, ReadsTheProcessMemoryFields) {
    const int64_t rss = flashvsr::proc_status_kib("VmRSS");
    const int64_t peak = flashvsr::proc_status_kib("VmHWM");
    EXPECT_GT(rss, 1024);  // LibTorch alone is more than 1 MiB resident
    EXPECT_GE(peak, rss);
    EXPECT_EQ(flashvsr::proc_status_kib("NoSuchField"), -1);
    EXPECT_EQ(flashvsr::proc_status_kib("VmRS"), -1);  // a whole field name, not a prefix
}
