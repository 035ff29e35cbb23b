// Loading peak memory: at most 1.25x the loaded weights in the target dtype (no double copies), and
// loading/unloading an engine repeatedly does not leak.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <malloc.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "counting_allocator.h"
#include "csrc/engine/stream_access.h"
#include "memory_test_util.h"
#include "models/dit.h"
#include "models/test_weights.h"

namespace fs = std::filesystem;

using flashvsr::testing::proc_status_kib;
using flashvsr::testing::reset_peak_rss;
using flashvsr::testing::return_freed_memory;

namespace {

class LoadMemory : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new fs::path(fs::temp_directory_path() / ("flashvsr_loadmem_" + std::to_string(::getpid())) /
                            "FlashVSR-v1.1");
        flashvsr::models::TestWeightsOptions o;
        o.size = "small";
        flashvsr::models::make_test_weights(dir_->string(), o);
    }
    static void TearDownTestSuite() {
        fs::remove_all(dir_->parent_path());
        delete dir_;
    }
    /// A x4 stream of a fresh fp32 CPU engine on the small weights (the stream keeps the networks alive).
    static flashvsr::Stream cpu_stream_x4() {
        flashvsr::EngineOptions eo;
        eo.model_dir = dir_->string();
        eo.device = "cpu";
        flashvsr::UpscaleOptions u;
        u.scale = 4;
        return flashvsr::Engine::load(eo)->stream(u);
    }
    /// Chunks 0 and 1 of a 256x384 output through `s`.
    static void push_two_chunks(flashvsr::Stream& s, uint64_t seed) {
        at::manual_seed(seed);
        s.push(at::rand({25 + 8, 64, 96, 3}));
        ASSERT_EQ(s.chunks_done(), 2);
    }
    static fs::path* dir_;
};
fs::path* LoadMemory::dir_ = nullptr;

}  // namespace

TEST_F(LoadMemory, PeakIsAtMostOneQuarterAboveTheWeights) {
    for (const char* dtype : {"fp32", "bf16"}) {
        flashvsr::EngineOptions eo;
        eo.model_dir = dir_->string();
        eo.device = "cpu";
        eo.dtype = dtype;
        {  // warm-up: first-use allocations of LibTorch itself are not the loader's
            auto e = flashvsr::Engine::load(eo);
        }
        return_freed_memory();
        const long before = proc_status_kib("VmRSS");
        reset_peak_rss();
        auto e = flashvsr::Engine::load(eo);
        const long peak = proc_status_kib("VmHWM");
        const double weights_kib = static_cast<double>(e->info().weight_bytes) / 1024.0;
        ASSERT_GT(weights_kib, 20000) << "the small preset should weigh tens of MB";
        EXPECT_LE(peak - before, 1.25 * weights_kib)
            << dtype << ": peak " << (peak - before) << " KiB for " << weights_kib << " KiB of weights";
    }
}

TEST_F(LoadMemory, RepeatedLoadsDoNotLeak) {
    flashvsr::EngineOptions eo;
    eo.model_dir = dir_->string();
    eo.device = "cpu";
    flashvsr::Engine::load(eo).reset();  // loaded and freed
    return_freed_memory();
    const long after_first = proc_status_kib("VmRSS");
    for (int i = 0; i < 10; ++i) {
        auto e = flashvsr::Engine::load(eo);
    }
    malloc_trim(0);
    EXPECT_LT(proc_status_kib("VmRSS") - after_first, 5 * 1024);  // 5 MB
}

TEST_F(LoadMemory, LoadHandsItsFreedTemporariesBack) {
    // glibc keeps freed heap pages resident until trimmed: int8 loading frees the bf16 DiT it quantized, and
    // every dtype frees conversion temporaries. Engine::load trims, so trimming again right after frees
    // nearly nothing (before it did: small preset, int8 47 MB, fp32 9 MB, bf16 8 MB). Default glibc
    // settings here (no return_freed_memory()), as a user's process has them.
    for (const char* dtype : {"int8", "fp32", "bf16"}) {
        flashvsr::EngineOptions eo;
        eo.model_dir = dir_->string();
        eo.device = "cpu";
        eo.dtype = dtype;
        auto e = flashvsr::Engine::load(eo);
        const long loaded = proc_status_kib("VmRSS");
        malloc_trim(0);
        EXPECT_LT(loaded - proc_status_kib("VmRSS"), 2 * 1024) << dtype << ": KiB still held after the load";
    }
}

TEST_F(LoadMemory, EachNetworkOfACpuChunkHandsItsFreedActivationsBack) {
    // Each network frees its activations in its own order; glibc kept the freed pages resident, under the
    // next network's peak (896x512 full size: the decoder's peak 246 MiB higher). The tile runner trims the
    // heap between the networks of a CPU chunk, so trimming again when the next network starts frees nearly
    // nothing.
    flashvsr::Stream s = cpu_stream_x4();
    long worst = -1;
    std::string where;
    int checked = 0;
    flashvsr::engine::TilingHooks h;
    h.stage = [&](const char* stage, bool begin) {
        if (!begin || (std::strcmp(stage, "dit") != 0 && std::strcmp(stage, "decoder") != 0)) {
            return;
        }
        const long before = proc_status_kib("VmRSS");
        malloc_trim(0);
        const long freed = before - proc_status_kib("VmRSS");
        ++checked;
        if (freed > worst) {
            worst = freed;
            where = std::string(stage) + " of chunk " + std::to_string(s.chunks_done());
        }
    };
    flashvsr::engine::StreamAccess::set_hooks(s, h);
    push_two_chunks(s, 5);
    ASSERT_EQ(checked, 2 * 2);
    EXPECT_LT(worst, 1024) << "trimming at the start of the " << where << " freed " << worst << " KiB";
}

TEST_F(LoadMemory, TheHeapIsTrimmedAfterEachDiTBlockAndDecoderStepOfACpuChunk) {
    // Inside the two large networks glibc's free pages pile up too (its free chunks are reused in another
    // order than they were freed: 384x256 full size, the DiT's peak 438 MiB higher without this). The tile
    // runner trims after each DiT block and each decoder step; per chunk: 3 trims between the networks, one
    // per DiT block, one per latent step of the decoder (6 in the first chunk, 2 later).
    flashvsr::Stream s = cpu_stream_x4();
    std::string stage = "none";
    std::map<std::string, int> trims;
    flashvsr::engine::TilingHooks h;
    h.stage = [&](const char* name, bool begin) {
        stage = begin ? std::string(name) + " of chunk " + std::to_string(s.chunks_done()) : "none";
    };
    h.heap_trimmed = [&] { ++trims[stage]; };
    flashvsr::engine::StreamAccess::set_hooks(s, h);
    push_two_chunks(s, 6);
    const int layers = static_cast<int>(flashvsr::models::DiTConfig::preset("small").num_layers);
    EXPECT_EQ(trims["dit of chunk 0"], layers);
    EXPECT_EQ(trims["dit of chunk 1"], layers);
    EXPECT_EQ(trims["decoder of chunk 0"], 6);
    EXPECT_EQ(trims["decoder of chunk 1"], 2);
    EXPECT_EQ(trims["none"], 2 * 3);  // after the LQ projector, the DiT and the decoder of each chunk
    EXPECT_EQ(trims.size(), 5u) << "no trim inside another stage";
}

TEST_F(LoadMemory, NoChunkSizedBufferWaitsUnderTheDecoderAndTheColourFixWorksFrameByFrame) {
    // Allocator bytes (exact, unlike RSS): the chunk's blend canvas [n, Hp, Wp, 3] float32 is made at the
    // first blend, not before the first tile's decoder (whose peak it would raise: 115 MB at 896x512 in
    // chunk 0). Untiled, the chunk's LQ frames (the decoder's condition) [1, 3, n, Hp, Wp], the canvas and
    // the decoded tile have the same size. The colour fix writes frame by frame into the output, so besides
    // the output it needs a few frames, not copies of the chunk.
    const flashvsr::testing::CountingCpuAllocator bytes;
    flashvsr::Stream s = cpu_stream_x4();
    const size_t frame = size_t{256} * 384 * 3 * sizeof(float);  // output 256x384 = the padded frame
    const size_t frames[2] = {21, 8};                            // chunk 0, chunk 1
    int decoders = 0, blends = 0, fixes = 0;
    size_t before_fix = 0;
    flashvsr::engine::TilingHooks h;
    h.stage = [&](const char* stage, bool begin) {
        const int64_t k = s.chunks_done();
        ASSERT_LT(k, 2);
        const size_t canvas = frames[k] * frame;
        if (begin && std::strcmp(stage, "decoder") == 0) {
            EXPECT_EQ(bytes.blocks_of(canvas), 1) << "chunk-sized blocks before the decoder of chunk " << k
                                                  << " (expected only the chunk's LQ frames)";
            ++decoders;
        } else if (!begin && std::strcmp(stage, "blend") == 0) {
            EXPECT_EQ(bytes.blocks_of(canvas), 3)
                << "the LQ frames, the canvas, the decoded tile; chunk " << k;
            ++blends;
        } else if (std::strcmp(stage, "color_fix") == 0) {
            if (begin) {
                bytes.reset_peak();
                before_fix = bytes.live();
            } else {
                const size_t used = bytes.peak() - before_fix;
                EXPECT_LE(used, canvas + 6 * frame) << "the colour fix of chunk " << k << " used "
                                                    << used / frame << " frames besides the chunk's output";
                EXPECT_GE(used, canvas) << "the output of chunk " << k;
                ++fixes;
            }
        }
    };
    flashvsr::engine::StreamAccess::set_hooks(s, h);
    push_two_chunks(s, 7);
    EXPECT_EQ(decoders, 2);
    EXPECT_EQ(blends, 2);
    EXPECT_EQ(fixes, 2);
}
