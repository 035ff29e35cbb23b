// Segments for scale-out (docs/SCALE_OUT.md) on tiny random weights, CPU: the frame ranges of a
// segment, the first segment bit-identical to the whole-video stream, a segment whose warm-up reaches chunk 0
// exact, frames after a seam within the replay bound (and a shorter warm-up visibly worse), N frames in -> N
// out over all segments, the out-of-memory fallback inside a segment.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>
#include <filesystem>
#include <new>
#include <utility>
#include <vector>

#include "csrc/engine/frames.h"
#include "csrc/engine/stream_access.h"
#include "csrc/engine/tiling/planner.h"
#include "models/test_weights.h"

namespace fs = std::filesystem;
using flashvsr::SegmentFrames;
using flashvsr::SegmentOptions;

namespace {

class Segment : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new fs::path(fs::temp_directory_path() / ("flashvsr_segment_" + std::to_string(::getpid())) /
                            "FlashVSR-v1.1");
        flashvsr::models::TestWeightsOptions o;
        o.size = "tiny";
        o.seed = 5;
        o.prompt_tokens = 64;
        flashvsr::models::make_test_weights(dir_->string(), o);
        flashvsr::EngineOptions eo;
        eo.model_dir = dir_->string();
        eo.device = "cpu";
        engine_ = new std::shared_ptr<flashvsr::Engine>(flashvsr::Engine::load(eo));
        threads_ = at::get_num_threads();
        at::set_num_threads(1);
        at::manual_seed(21);
        video_ = new at::Tensor(at::rand({kFrames, 32, 48, 3}));
        whole_ = new at::Tensor(run(*video_, {}));
    }
    static void TearDownTestSuite() {
        at::set_num_threads(threads_);
        delete whole_;
        delete video_;
        delete engine_;
        fs::remove_all(dir_->parent_path());
        delete dir_;
    }
    static flashvsr::UpscaleOptions opts(int64_t tile_size = 0) {
        flashvsr::UpscaleOptions u;
        u.scale = 2;
        u.tile_size = tile_size;
        return u;
    }
    /// One segment of `v`: pushes the frames segment_frames() names (in batches of 9, from input_begin to the
    /// end of the video: frames past input_end are ignored by the stream), returns what it emits.
    static at::Tensor run(const at::Tensor& v, const SegmentOptions& seg,
                          const flashvsr::UpscaleOptions& u = opts(),
                          flashvsr::engine::TilingHooks hooks = {}, flashvsr::Stream* keep = nullptr) {
        const SegmentFrames f = flashvsr::segment_frames(seg, u);
        flashvsr::Stream s = (**engine_).stream(u, seg);
        flashvsr::engine::StreamAccess::set_hooks(s, std::move(hooks));
        std::vector<at::Tensor> out;
        for (int64_t i = f.input_begin; i < v.size(0); i += 9) {
            s.push(v.narrow(0, i, std::min<int64_t>(9, v.size(0) - i)));
            out.push_back(s.pull());
        }
        s.finish();
        out.push_back(s.pull());
        if (keep != nullptr) {
            *keep = std::move(s);
        }
        return at::cat(out, 0);
    }
    static std::pair<double, double> diff(const at::Tensor& a, const at::Tensor& b) {
        const at::Tensor d = (a - b).abs();
        return {d.max().item<double>(), d.mean().item<double>()};
    }
    static constexpr int64_t kFrames = 8 * 15 + 13 + 3;  // 136: chunks 0..15, the last one padded
    static fs::path* dir_;
    static std::shared_ptr<flashvsr::Engine>* engine_;
    static at::Tensor* video_;
    static at::Tensor* whole_;  // the whole video through one stream
    static int threads_;
};
fs::path* Segment::dir_ = nullptr;
std::shared_ptr<flashvsr::Engine>* Segment::engine_ = nullptr;
at::Tensor* Segment::video_ = nullptr;
at::Tensor* Segment::whole_ = nullptr;
int Segment::threads_ = 1;

}  // namespace

TEST(SegmentFrames, Ranges) {
    const flashvsr::UpscaleOptions u;
    const SegmentFrames whole = flashvsr::segment_frames({}, u);
    EXPECT_EQ(whole.warmup_chunk, 0);
    EXPECT_EQ(whole.input_begin, 0);
    EXPECT_EQ(whole.input_end, -1);
    EXPECT_EQ(whole.output_begin, 0);
    EXPECT_EQ(whole.output_end, -1);
    // Chunks [8, 12) with the default warm-up (R = 6): cold start at chunk 2, which reads from frame 29 (its
    // decoder condition); chunk 11, the last, reads up to frame 112 and emits up to 108.
    const SegmentFrames f = flashvsr::segment_frames({8, 12, -1}, u);
    EXPECT_EQ(f.warmup_chunk, 2);
    EXPECT_EQ(f.input_begin, 29);
    EXPECT_EQ(f.input_end, 113);
    EXPECT_EQ(f.output_begin, 77);
    EXPECT_EQ(f.output_end, 109);
    EXPECT_EQ(f.output_begin - f.input_begin, 8 * 6);  // warm-up frames = 8 per warm-up chunk
    // The first segment: frames 0..20 of chunk 0 and 8 per later chunk.
    const SegmentFrames g = flashvsr::segment_frames({0, 3, 6}, u);
    EXPECT_EQ(g.input_begin, 0);
    EXPECT_EQ(g.output_end, 37);
    EXPECT_EQ(g.input_end, 41);
    // A warm-up reaching chunk 0 starts there (exact).
    EXPECT_EQ(flashvsr::segment_frames({5, -1, 6}, u).warmup_chunk, 0);
    EXPECT_EQ(flashvsr::segment_frames({5, -1, 6}, u).input_begin, 0);
    // The default warm-up follows kv_ratio (the replay depth).
    flashvsr::UpscaleOptions u4;
    u4.kv_ratio = 4;
    EXPECT_EQ(flashvsr::segment_frames({10, -1, -1}, u4).warmup_chunk, 3);
}

TEST(SegmentFrames, BadValuesNameTheField) {
    const flashvsr::UpscaleOptions u;
    auto message = [&](SegmentOptions s) {
        try {
            flashvsr::segment_frames(s, u);
        } catch (const flashvsr::InputError& e) {
            return std::string(e.what());
        }
        return std::string("<no error>");
    };
    EXPECT_NE(message({-1, -1, -1}).find("first_chunk must be >= 0, got -1"), std::string::npos);
    EXPECT_NE(message({4, 4, -1}).find("end_chunk must be -1 (to the end) or > first_chunk=4, got 4"),
              std::string::npos);
    EXPECT_NE(message({4, -1, -2}).find("warmup_chunks must be >= 0"), std::string::npos);
}

TEST_F(Segment, FirstSegmentIsBitIdentical) {
    // Chunks [0, 8): frames 0..76 of the whole-video stream, bit for bit, although all 136 frames are pushed.
    flashvsr::Stream s = (**engine_).stream(opts(), SegmentOptions{});
    const at::Tensor first = run(*video_, {0, 8, -1}, opts(), {}, &s);
    ASSERT_EQ(first.size(0), 77);
    EXPECT_EQ(s.frames_done(), 77);
    EXPECT_EQ(s.frames_pushed(), kFrames);
    EXPECT_EQ(s.chunks_done(), 8);
    EXPECT_TRUE(at::equal(first, whole_->narrow(0, 0, 77)));
}

TEST_F(Segment, WarmupFromChunkZeroIsExact) {
    // Chunks [4, end) with 6 warm-up chunks: the warm-up starts at chunk 0, so the frames are exact.
    const at::Tensor out = run(*video_, {4, -1, 6});
    ASSERT_EQ(out.size(0), kFrames - 45);
    EXPECT_TRUE(at::equal(out, whole_->narrow(0, 45, kFrames - 45)));
}

TEST_F(Segment, SeamWithinTheReplayBound) {
    // Chunks [9, end): cold start at chunk 3, warm-up 3..8 (48 frames) discarded, frames 85.. emitted.
    const int64_t from = flashvsr::engine::plan_chunk(9).out_begin;
    const at::Tensor ref = whole_->narrow(0, from, kFrames - from);
    const at::Tensor r6 = run(*video_, {9, -1, 6});
    ASSERT_EQ(r6.sizes(), ref.sizes());
    const auto [max6, mean6] = diff(r6, ref);
    // A 2-chunk warm-up (cold start at chunk 7) rebuilds less of the state.
    const at::Tensor r2 = run(*video_, {9, -1, 2});
    ASSERT_EQ(r2.sizes(), ref.sizes());
    const auto [max2, mean2] = diff(r2, ref);
    std::printf(
        "[ segment  ] frames %lld..%lld after a seam at chunk 9 vs one stream: warm-up 6 chunks max %.4g "
        "mean %.4g; warm-up 2 chunks max %.4g mean %.4g\n",
        static_cast<long long>(from), static_cast<long long>(kFrames - 1), max6, mean6, max2, mean2);
    EXPECT_GT(max6, 0.0);  // an approximation, not a copy
    EXPECT_LE(max6, 1e-3);
    EXPECT_LE(mean6, 1e-4);
    EXPECT_GT(max2, 1e-2);  // the bound is not vacuous: a shorter warm-up is visibly worse
    EXPECT_GT(mean2, 10 * mean6);
}

TEST_F(Segment, SegmentsCoverTheVideo) {
    // Three segments [0,5) [5,11) [11,end) (the last one padded at the tail): N frames in, N out, each frame
    // once, in order; the first segment bit-identical, the others within the replay bound.
    std::vector<at::Tensor> parts;
    for (const SegmentOptions seg :
         {SegmentOptions{0, 5, -1}, SegmentOptions{5, 11, -1}, SegmentOptions{11, -1, -1}}) {
        parts.push_back(run(*video_, seg));
        const SegmentFrames f = flashvsr::segment_frames(seg, opts());
        const int64_t end = f.output_end < 0 ? kFrames : f.output_end;
        EXPECT_EQ(parts.back().size(0), end - f.output_begin) << "segment from chunk " << seg.first_chunk;
    }
    const at::Tensor all = at::cat(parts, 0);
    ASSERT_EQ(all.sizes(), whole_->sizes());
    EXPECT_TRUE(at::equal(parts[0], whole_->narrow(0, 0, 53)));
    const auto [mx, mean] = diff(all, *whole_);
    EXPECT_LE(mx, 1e-3);
    EXPECT_LE(mean, 1e-4);
}

TEST_F(Segment, PastTheEndIsAnInputError) {
    // Chunk 20 starts at frame 173; its warm-up reads from frame 157 on, and the video ends at frame 167.
    flashvsr::Stream s = (**engine_).stream(opts(), SegmentOptions{20, -1, 2});
    s.push(video_->narrow(0, 0, 10));
    try {
        s.finish();
        FAIL() << "no error";
    } catch (const flashvsr::InputError& e) {
        EXPECT_NE(std::string(e.what()).find(
                      "segment starts at frame 173 (chunk 20) but the video ends at frame 167"),
                  std::string::npos)
            << e.what();
    }
}

TEST_F(Segment, OutOfMemoryInsideASegmentRestartsAtItsWarmup) {
    // Input 40x72 at x2 (one 128x256 tile); tiles above 128x128 fail from chunk `from` on. The segment
    // [5, end) warms up from chunk 2; any fallback inside it replays from its cold start at chunk 2 (it has
    // no earlier frames), which equals the segment run with 128-pixel tiles from the start, bit for bit.
    at::manual_seed(3);
    const at::Tensor v = at::rand({8 * 7 + 13, 40, 72, 3});
    const SegmentOptions seg{5, -1, 3};
    const at::Tensor small = run(v, seg, opts(64));
    const at::Tensor big = run(v, seg, opts());
    ASSERT_EQ(small.size(0), v.size(0) - 53);
    EXPECT_FALSE(at::equal(small, big));  // tiling matters
    for (const int64_t from : {2, 4, 6}) {
        int64_t refused = 0;
        flashvsr::engine::TilingHooks h;
        h.before_tile = [from, &refused](int64_t chunk, int64_t, const flashvsr::TileRect& r) {
            if (chunk >= from && r.height * r.width > 128 * 128) {
                ++refused;
                throw std::bad_alloc();
            }
        };
        flashvsr::Stream s = (**engine_).stream(opts(), SegmentOptions{});
        const at::Tensor out = run(v, seg, opts(), std::move(h), &s);
        EXPECT_EQ(refused, 1) << "from chunk " << from;
        EXPECT_EQ(s.tiles().size(), 3u);
        ASSERT_EQ(out.sizes(), small.sizes());
        const int64_t switched = std::max<int64_t>(0, flashvsr::engine::plan_chunk(from).out_begin - 53);
        EXPECT_TRUE(at::equal(out.narrow(0, 0, switched), big.narrow(0, 0, switched)))
            << "from chunk " << from;
        EXPECT_TRUE(at::equal(out.narrow(0, switched, out.size(0) - switched),
                              small.narrow(0, switched, out.size(0) - switched)))
            << "from chunk " << from;
    }
}
