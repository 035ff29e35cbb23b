// Streaming engine on tiny random weights (CPU): the frame/size/dtype contract, determinism, no state leaking
// between streams, interleaved streams, flat memory, cancellation, modes. MODEL.md §13 items 4, 5, 13, 14.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "csrc/engine/noise.h"
#include "memory_test_util.h"
#include "models/checkpoint/load.h"
#include "models/model_dir.h"
#include "models/test_weights.h"

namespace fs = std::filesystem;

namespace {

class EngineTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new fs::path(fs::temp_directory_path() / ("flashvsr_engine_" + std::to_string(::getpid())) /
                            "FlashVSR-v1.1");
        flashvsr::models::TestWeightsOptions o;
        o.size = "tiny";
        o.seed = 3;
        o.prompt_tokens = 64;
        flashvsr::models::make_test_weights(dir_->string(), o);
    }
    static void TearDownTestSuite() {
        fs::remove_all(dir_->parent_path());
        delete dir_;
    }
    static std::shared_ptr<flashvsr::Engine> load(const std::string& mode = "tiny") {
        flashvsr::EngineOptions eo;
        eo.model_dir = dir_->string();
        eo.mode = mode;
        eo.device = "cpu";
        return flashvsr::Engine::load(eo);
    }
    static at::Tensor video(int64_t n, int64_t h, int64_t w, int64_t seed) {
        at::manual_seed(static_cast<uint64_t>(seed));
        return at::rand({n, h, w, 3});
    }
    static flashvsr::UpscaleOptions scale2() {
        flashvsr::UpscaleOptions u;
        u.scale = 2;
        return u;
    }
    static fs::path* dir_;
};
fs::path* EngineTest::dir_ = nullptr;

}  // namespace

TEST_F(EngineTest, LoadsTinyWeights) {
    const auto e = load();
    EXPECT_EQ(e->info().version, "v1.1");
    EXPECT_EQ(e->info().dtype, "fp32");
    EXPECT_EQ(e->info().device, "cpu");
    EXPECT_TRUE(e->info().warnings.empty());
    EXPECT_GT(e->info().weight_bytes, 0);
}

// checkpoint_bytes is what a PyTorch pipeline of the same networks holds as weights (the files' parameters
// in float32); weight_bytes adds what the engine derives at load (the decoder's phase weights, the prompt
// constants), so "peak RSS - checkpoint_bytes" is the comparable figure.
TEST_F(EngineTest, CheckpointBytesAreTheFilesParametersInTheComputeDtype) {
    const auto e = load();
    using F = flashvsr::models::ModelFiles;
    int64_t numel = 0;
    for (const char* file : {F::kDiT, F::kLQProj, F::kTCDecoder}) {
        for (const auto& [key, t] : flashvsr::models::load_tensors((*dir_ / file).string())) {
            numel += t.numel();
        }
    }
    EXPECT_EQ(e->info().checkpoint_bytes, numel * 4);
    EXPECT_GT(e->info().weight_bytes, e->info().checkpoint_bytes);
}

TEST_F(EngineTest, FrameSizeDtypeRangeContract) {
    const auto e = load();
    for (int64_t n : {1, 2, 20, 21, 22, 29, 33, 40}) {
        const at::Tensor out = e->upscale(video(n, 37, 53, n), scale2());
        ASSERT_EQ(out.sizes(), (at::IntArrayRef{n, 74, 106, 3})) << "N=" << n;
        EXPECT_EQ(out.scalar_type(), at::kFloat);
        EXPECT_EQ(out.device(), at::Device(at::kCPU));
        EXPECT_GE(out.min().item<float>(), 0.0f);
        EXPECT_LE(out.max().item<float>(), 1.0f);
        EXPECT_TRUE(at::isfinite(out).all().item<bool>());
    }
    // Scales 3 and 4, uint8 input.
    const at::Tensor u8 = (video(3, 20, 30, 1) * 255).to(at::kByte);
    flashvsr::UpscaleOptions u;
    u.scale = 3;
    EXPECT_EQ(e->upscale(u8, u).sizes(), (at::IntArrayRef{3, 60, 90, 3}));
    u.scale = 4;
    EXPECT_EQ(e->upscale(u8, u).sizes(), (at::IntArrayRef{3, 80, 120, 3}));
}

TEST_F(EngineTest, DeterministicAndNoLeakBetweenStreams) {
    const auto e = load();
    const at::Tensor a = video(22, 24, 40, 1), b = video(30, 32, 32, 2);
    const at::Tensor a1 = e->upscale(a, scale2());
    const at::Tensor b1 = e->upscale(b, scale2());
    const at::Tensor a2 = e->upscale(a, scale2());
    EXPECT_TRUE(at::equal(a1, a2));
    EXPECT_FALSE(at::equal(a1.narrow(0, 0, 5).narrow(2, 0, 64), b1.narrow(0, 0, 5).narrow(1, 0, 48)));
    flashvsr::UpscaleOptions other = scale2();
    other.seed = 1;
    EXPECT_FALSE(at::equal(e->upscale(a, other), a1));  // the seed changes the result
}

TEST_F(EngineTest, InterleavedStreamsEqualSequentialRuns) {
    const auto e = load();
    const at::Tensor a = video(45, 16, 24, 5), b = video(45, 24, 16, 6);
    const at::Tensor ra = e->upscale(a, scale2()), rb = e->upscale(b, scale2());
    flashvsr::Stream sa = e->stream(scale2()), sb = e->stream(scale2());
    std::vector<at::Tensor> oa, ob;
    for (int64_t i = 0; i < 45; i += 8) {  // one chunk's worth of frames at a time, alternating
        const int64_t n = std::min<int64_t>(8, 45 - i);
        sa.push(a.narrow(0, i, n));
        oa.push_back(sa.pull());
        sb.push(b.narrow(0, i, n));
        ob.push_back(sb.pull());
    }
    sa.finish();
    sb.finish();
    oa.push_back(sa.pull());
    ob.push_back(sb.pull());
    EXPECT_TRUE(at::equal(at::cat(oa), ra));
    EXPECT_TRUE(at::equal(at::cat(ob), rb));
}

TEST_F(EngineTest, TinyAndTinyLongAgree) {
    const at::Tensor v = video(29, 16, 16, 8);
    EXPECT_TRUE(at::equal(load("tiny")->upscale(v, scale2()), load("tiny-long")->upscale(v, scale2())));
}

TEST_F(EngineTest, FullModeKeepsTheContract) {
    const auto e = load("full");
    const at::Tensor out = e->upscale(video(23, 16, 24, 9), scale2());
    ASSERT_EQ(out.sizes(), (at::IntArrayRef{23, 32, 48, 3}));
    EXPECT_GE(out.min().item<float>(), 0.0f);
    EXPECT_LE(out.max().item<float>(), 1.0f);
}

TEST_F(EngineTest, Bf16ComputeStillGivesFloat32Output) {
    flashvsr::EngineOptions eo;
    eo.model_dir = dir_->string();
    eo.device = "cpu";
    eo.dtype = "bf16";
    const auto e = flashvsr::Engine::load(eo);
    EXPECT_EQ(e->info().dtype, "bf16");
    const at::Tensor v = video(21, 16, 16, 12);
    const at::Tensor out = e->upscale(v, scale2());
    ASSERT_EQ(out.sizes(), (at::IntArrayRef{21, 32, 32, 3}));
    EXPECT_EQ(out.scalar_type(), at::kFloat);
    EXPECT_GE(out.min().item<float>(), 0.0f);
    EXPECT_LE(out.max().item<float>(), 1.0f);
    // Same model in fp32: close (bf16 rounding through a random network), not identical.
    const at::Tensor ref = load()->upscale(v, scale2());
    const float mean_diff = (out - ref).abs().mean().item<float>();
    EXPECT_GT(mean_diff, 0.0f);
    EXPECT_LT(mean_diff, 0.1f);
}

TEST_F(EngineTest, ExplicitNoiseProvider) {
    const auto e = load();
    const at::Tensor v = video(21, 16, 16, 4);
    const at::Tensor ref = e->upscale(v, scale2());
    flashvsr::Stream s = e->stream(scale2());
    int64_t calls = 0;
    s.set_noise_provider([&](int64_t t0, int64_t nt) {
        ++calls;
        return flashvsr::engine::latent_noise(0, {t0, nt, 0, 16, 0, 16});
    });
    s.push(v);
    s.finish();
    EXPECT_TRUE(at::equal(s.pull(), ref));
    EXPECT_EQ(calls, 1);  // 21 frames: one chunk
    flashvsr::Stream z = e->stream(scale2());
    z.set_noise_provider([](int64_t, int64_t nt) { return at::zeros({1, 16, nt, 16, 16}); });
    z.push(v);
    z.finish();
    EXPECT_FALSE(at::equal(z.pull(), ref));
}

TEST_F(EngineTest, CancelWithinOneChunk) {
    const auto e = load();
    const at::Tensor v = video(60, 8, 8, 3);  // 5 chunks
    int64_t calls = 0;
    EXPECT_THROW(e->upscale(v, scale2(),
                            [&](int64_t done, int64_t total) {
                                ++calls;
                                EXPECT_EQ(total, 60);
                                return done < 21;  // stop after the first chunk
                            }),
                 flashvsr::Cancelled);
    EXPECT_EQ(calls, 1);
    flashvsr::CancelToken token;
    token.cancel();
    flashvsr::Stream s = e->stream(scale2());
    s.set_cancel(&token);
    EXPECT_THROW(s.push(v), flashvsr::Cancelled);
    EXPECT_EQ(s.chunks_done(), 0);
    // Progress counts: 21 after chunk 0, then +8 per chunk, ending at N.
    std::vector<int64_t> seen;
    e->upscale(v, scale2(), [&](int64_t done, int64_t) {
        seen.push_back(done);
        return true;
    });
    EXPECT_EQ(seen, (std::vector<int64_t>{21, 29, 37, 45, 53, 60}));
}

TEST_F(EngineTest, StateIsFlatAndMemoryDoesNotGrow) {
    flashvsr::testing::return_freed_memory();  // RSS then measures live memory, not allocator caching
    const auto e = load();
    flashvsr::Stream s = e->stream(scale2());
    const at::Tensor batch = video(8, 8, 8, 11);
    s.push(video(25, 8, 8, 10));  // chunk 0
    std::vector<int64_t> bytes;
    long rss10 = 0, rss100 = 0;
    for (int64_t k = 1; k <= 100; ++k) {
        s.push(batch);  // exactly one more chunk
        (void)s.pull();
        ASSERT_EQ(s.chunks_done(), k + 1);
        bytes.push_back(s.state_bytes());
        if (k == 10 || k == 100) {
            malloc_trim(0);
        }
        if (k == 10) {
            rss10 = flashvsr::testing::proc_status_kib("VmRSS");
        }
        if (k == 100) {
            rss100 = flashvsr::testing::proc_status_kib("VmRSS");
        }
    }
    for (size_t i = 1; i < bytes.size(); ++i) {
        ASSERT_EQ(bytes[i], bytes[0]) << "chunk " << i + 1;
    }
    EXPECT_LT(rss100 - rss10, 2048) << "RSS grew by " << (rss100 - rss10) << " KiB from chunk 10 to 100";
    s.finish();
    EXPECT_EQ(s.frames_done(), 25 + 800);
}

TEST_F(EngineTest, BadInputIsRejectedClearly) {
    const auto e = load();
    flashvsr::UpscaleOptions u;
    u.scale = 5;
    EXPECT_THROW(e->upscale(video(2, 8, 8, 0), u), flashvsr::InputError);
    u = scale2();
    u.color_fix = "wavelets";
    EXPECT_THROW(e->stream(u), flashvsr::InputError);
    flashvsr::Stream s = e->stream(scale2());
    s.push(video(2, 8, 8, 0));
    EXPECT_THROW(s.push(video(2, 8, 10, 0)), flashvsr::InputError);
    flashvsr::Stream empty = e->stream(scale2());
    EXPECT_THROW(empty.finish(), flashvsr::InputError);
    flashvsr::EngineOptions eo;
    eo.model_dir = dir_->string();
    eo.mode = "huge";
    EXPECT_THROW(flashvsr::Engine::load(eo), flashvsr::InputError);
    eo.mode = "tiny";
    eo.model_dir = (dir_->parent_path() / "missing").string();
    EXPECT_THROW(flashvsr::Engine::load(eo), flashvsr::ModelError);
}

TEST_F(EngineTest, NonFiniteInputIsRefusedNamingTheFrame) {
    const auto e = load();
    const float bad_values[] = {std::nanf(""), std::numeric_limits<float>::infinity(),
                                -std::numeric_limits<float>::infinity()};
    for (const float bad : bad_values) {
        for (const auto dtype : {at::kFloat, at::kHalf}) {
            flashvsr::Stream s = e->stream(scale2());
            s.push(video(3, 8, 8, 1).to(dtype));  // frames 0..2
            at::Tensor batch = video(4, 8, 8, 2);
            batch.index_put_({2, 5, 3, 1}, bad);  // frame 3 + 2 = 5, one value in the middle
            try {
                s.push(batch.to(dtype));
                ADD_FAILURE() << "push accepted " << bad;
            } catch (const flashvsr::InputError& err) {
                EXPECT_STREQ(err.what(),
                             "push: frame 5 (index 2 of this batch) contains NaN or infinite values");
            }
            // Refused before any state changed: the stream goes on with good frames.
            EXPECT_EQ(s.frames_pushed(), 3);
            batch.index_put_({2, 5, 3, 1}, 0.5f);
            s.push(batch.to(dtype));
            s.finish();
            const at::Tensor out = s.pull();
            EXPECT_EQ(out.size(0), 7);
            EXPECT_TRUE(at::isfinite(out).all().item<bool>());
        }
    }
    // A refused first push fixes no frame size either.
    flashvsr::Stream first = e->stream(scale2());
    at::Tensor inf_last = video(2, 8, 8, 3);
    inf_last.index_put_({1, 7, 7, 2}, std::numeric_limits<float>::infinity());  // the very last value
    EXPECT_THROW(first.push(inf_last), flashvsr::InputError);
    first.push(video(2, 6, 10, 4));
    EXPECT_EQ(first.frames_pushed(), 2);
    // uint8 input is always finite: no check.
    flashvsr::Stream bytes = e->stream(scale2());
    bytes.push((video(2, 8, 8, 5) * 255).to(at::kByte));
    EXPECT_EQ(bytes.frames_pushed(), 2);
}
