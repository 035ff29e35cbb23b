// Tiling (docs/TILING.md) on tiny random weights, CPU: layouts and blend weights (partition of unity,
// borders), one tile == untiled, tile order does not matter, the frame contract with tiles, flat memory per
// tile and per chunk, peak RSS independent of the video length, the out-of-memory fallback, the max_memory
// planner. MODEL.md §13 items 15.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <malloc.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <new>

#include "csrc/engine/frames.h"
#include "csrc/engine/noise.h"
#include "csrc/engine/stream_access.h"
#include "csrc/engine/tiling/planner.h"
#include "kernels/blend_accumulate/blend_accumulate.h"
#include "memory_test_util.h"
#include "models/test_weights.h"

namespace fs = std::filesystem;
using flashvsr::TileRect;
using flashvsr::engine::plan_tiles;
using flashvsr::engine::TileLayout;

using flashvsr::testing::proc_status_kib;
using flashvsr::testing::reset_peak_rss;
using flashvsr::testing::return_freed_memory;

namespace {

/// Sum of the blend weights of `layout` at every pixel: [Hp, Wp].
at::Tensor weight_sum(const TileLayout& layout) {
    at::Tensor canvas = at::zeros({1, layout.rows.length, layout.cols.length, 1});
    for (int64_t i = 0; i < layout.count(); ++i) {
        const TileRect r = layout.rect(i);
        flashvsr::kernels::blend_accumulate(canvas, at::ones({1, r.height, r.width, 1}), r.top, r.left,
                                            layout.ramps(i));
    }
    return canvas[0].select(2, 0);
}

class Tiling : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new fs::path(fs::temp_directory_path() / ("flashvsr_tiling_" + std::to_string(::getpid())) /
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
        at::set_num_threads(1);  // tiny tiles: one thread is fastest and immune to a loaded machine
    }
    static void TearDownTestSuite() {
        at::set_num_threads(threads_);
        delete engine_;
        fs::remove_all(dir_->parent_path());
        delete dir_;
    }
    static const flashvsr::Engine& engine() { return **engine_; }
    static at::Tensor video(int64_t n, int64_t h, int64_t w, int64_t seed) {
        at::manual_seed(static_cast<uint64_t>(seed));
        return at::rand({n, h, w, 3});
    }
    static flashvsr::UpscaleOptions opts(int64_t tile_size = 0, int64_t tile_overlap = 0) {
        flashvsr::UpscaleOptions u;
        u.scale = 2;
        u.tile_size = tile_size;
        u.tile_overlap = tile_overlap;
        return u;
    }
    /// Whole video through one stream with hooks; output concatenated.
    static at::Tensor run(const at::Tensor& v, const flashvsr::UpscaleOptions& u,
                          flashvsr::engine::TilingHooks hooks = {}, std::vector<TileRect>* tiles = nullptr) {
        flashvsr::Stream s = engine().stream(u);
        flashvsr::engine::StreamAccess::set_hooks(s, std::move(hooks));
        s.push(v);
        s.finish();
        if (tiles != nullptr) {
            *tiles = s.tiles();
        }
        return s.pull();
    }
    static fs::path* dir_;
    static std::shared_ptr<flashvsr::Engine>* engine_;
    static int threads_;
};
int Tiling::threads_ = 1;
fs::path* Tiling::dir_ = nullptr;
std::shared_ptr<flashvsr::Engine>* Tiling::engine_ = nullptr;

}  // namespace

TEST(TilingLayout, AxisInvariants) {
    for (int64_t length : {128, 256, 384, 640, 1152, 1408, 2176}) {
        for (int64_t tile : {128, 256, 384, 512}) {
            for (int64_t ov : {0, 16, 32, 64, 144, 256}) {
                const auto a = flashvsr::engine::plan_axis(length, tile, ov);
                SCOPED_TRACE("length " + std::to_string(length) + " tile " + std::to_string(tile) + " ov " +
                             std::to_string(ov));
                ASSERT_EQ(a.tile % 128, 0);
                ASSERT_LE(a.tile, length);
                ASSERT_EQ(a.starts.front(), 0);
                ASSERT_EQ(a.starts.back() + a.tile, length);
                for (int64_t s : a.starts) {
                    ASSERT_EQ(s % 16, 0);
                }
                const auto o = a.overlaps();
                for (size_t i = 0; i < o.size(); ++i) {
                    ASSERT_GE(o[i], 0);  // no gap
                    if (i > 0) {
                        ASSERT_LE(o[i - 1] + o[i], a.tile);  // never three tiles on a pixel
                    }
                    if (i > 0) {
                        ASSERT_LE(std::abs(o[i] - o[i - 1]), 16);  // spread evenly
                    }
                }
            }
        }
    }
    // The requested overlap is kept when three tiles need not meet.
    const auto a = flashvsr::engine::plan_axis(1408, 256, 64);
    for (int64_t o : a.overlaps()) {
        EXPECT_GE(o, 64);
    }
    EXPECT_EQ(flashvsr::engine::plan_axis(256, 128, 32).starts, (std::vector<int64_t>{0, 64, 128}));
}

TEST(TilingLayout, BlendWeightsArePartitionOfUnity) {
    struct Case {
        int64_t h, w, tile, ov;
    };
    for (const Case& c : {Case{128, 128, 128, 32}, Case{256, 256, 128, 32}, Case{384, 1408, 128, 64},
                          Case{640, 384, 256, 144}, Case{1152, 640, 512, 64}, Case{768, 1408, 384, 48},
                          Case{384, 512, 256, 0}}) {
        const TileLayout layout = plan_tiles(c.h, c.w, c.tile, c.ov);
        const at::Tensor s = weight_sum(layout);
        SCOPED_TRACE(std::to_string(c.h) + "x" + std::to_string(c.w) + " tile " + std::to_string(c.tile));
        EXPECT_LE((s - 1).abs().max().item<float>(), 1e-6f) << layout.count() << " tiles";
    }
}

TEST(TilingLayout, ConstantTilesKeepTheBorders) {
    // Every tile of a constant gray image blended: the result is the same gray everywhere, the outermost
    // rows and columns included (the ComfyUI ports make them black).
    const TileLayout layout = plan_tiles(384, 640, 128, 32);
    ASSERT_GT(layout.count(), 6);
    at::Tensor canvas = at::zeros({2, 384, 640, 3});
    for (int64_t i = 0; i < layout.count(); ++i) {
        const TileRect r = layout.rect(i);
        flashvsr::kernels::blend_accumulate(canvas, at::full({2, r.height, r.width, 3}, 0.5f), r.top, r.left,
                                            layout.ramps(i));
    }
    EXPECT_LE((canvas - 0.5).abs().max().item<float>(), 1e-6f);
    for (const at::Tensor& edge :
         {canvas.select(1, 0), canvas.select(1, 383), canvas.select(2, 0), canvas.select(2, 639)}) {
        EXPECT_LE((edge - 0.5).abs().max().item<float>(), 1e-6f);
    }
}

TEST(TilingLayout, TileNoiseIsTheGlobalNoise) {
    const at::Tensor full = flashvsr::engine::latent_noise(9, {4, 2, 0, 32, 0, 48});
    const at::Tensor tile = flashvsr::engine::latent_noise(9, {4, 2, 8, 16, 14, 16});
    EXPECT_TRUE(at::equal(tile, full.narrow(3, 8, 16).narrow(4, 14, 16)));
}

TEST_F(Tiling, OneTileCoveringTheFrameEqualsUntiled) {
    const at::Tensor v = video(22, 40, 72, 1);  // x2 -> 80x144, padded 128x256
    std::vector<TileRect> tiles;
    const at::Tensor ref = run(v, opts());
    const at::Tensor one = run(v, opts(128), {}, &tiles);  // 256 output pixels
    ASSERT_EQ(tiles.size(), 1u);
    EXPECT_EQ(tiles[0].height, 128);
    EXPECT_EQ(tiles[0].width, 256);
    EXPECT_TRUE(at::equal(ref, one));
    EXPECT_TRUE(at::equal(ref, engine().upscale(v, opts(1000))));  // larger than the frame: clamped
    const at::Tensor tiled = run(v, opts(64, 16), {}, &tiles);
    EXPECT_EQ(tiles.size(), 3u);
    EXPECT_FALSE(at::equal(ref, tiled));  // the tiles really changed the computation
}

TEST_F(Tiling, TileOrderDoesNotChangeTheOutput) {
    const at::Tensor v = video(22, 72, 72, 2);  // x2 -> 144x144, padded 256x256: 3x3 tiles of 128; 2 chunks
    std::vector<int64_t> natural, shuffled;
    flashvsr::engine::TilingHooks h;
    h.before_tile = [&](int64_t chunk, int64_t tile, const TileRect&) {
        if (chunk == 0) {
            natural.push_back(tile);
        }
    };
    const at::Tensor a = run(v, opts(64, 16), h);
    h.order_seed = 12345;
    h.before_tile = [&](int64_t chunk, int64_t tile, const TileRect&) {
        if (chunk == 0) {
            shuffled.push_back(tile);
        }
    };
    const at::Tensor b = run(v, opts(64, 16), h);
    ASSERT_EQ(natural.size(), 9u);
    EXPECT_NE(natural, shuffled);  // really another order
    EXPECT_TRUE(at::equal(a, b));
}

TEST_F(Tiling, FrameContractWithTiles) {
    for (int64_t n : {1, 22}) {
        const at::Tensor out =
            engine().upscale(video(n, 37, 75, n), opts(64, 8));  // 74x150 -> 128x256: 3 tiles
        ASSERT_EQ(out.sizes(), (at::IntArrayRef{n, 74, 150, 3})) << "N=" << n;
        EXPECT_EQ(out.scalar_type(), at::kFloat);
        EXPECT_GE(out.min().item<float>(), 0.0f);
        EXPECT_LE(out.max().item<float>(), 1.0f);
        EXPECT_TRUE(at::isfinite(out).all().item<bool>());
    }
}

TEST_F(Tiling, MemoryIsFlatAcrossTiles) {
    // 21 tiles of 128x128 in one row (128x1408 padded). In chunk 1 (every tile's state allocated), RSS after
    // tile 20 may exceed RSS after tile 2 by at most 1 MB: running a tile leaves nothing behind.
    flashvsr::Stream s = engine().stream(opts(64, 32));
    long after2 = 0, after20 = 0;
    flashvsr::engine::TilingHooks h;
    h.after_tile = [&](int64_t chunk, int64_t tile) {
        if (chunk != 1) {
            return;
        }
        if (tile == 2) {
            malloc_trim(0);
            after2 = proc_status_kib("VmRSS");
        }
        if (tile == 20) {
            malloc_trim(0);
            after20 = proc_status_kib("VmRSS");
        }
    };
    flashvsr::engine::StreamAccess::set_hooks(s, h);
    return_freed_memory();
    s.push(video(25 + 8, 64, 704, 3));  // chunks 0 and 1
    ASSERT_EQ(s.tiles().size(), 21u);
    ASSERT_EQ(s.chunks_done(), 2);
    ASSERT_GT(after2, 0);
    EXPECT_LE(after20 - after2, 1024)
        << "RSS grew by " << (after20 - after2) << " KiB from tile 2 to tile 20";
}

TEST_F(Tiling, MemoryDoesNotDependOnVideoLength) {
    // 3 tiles over 128x256. Peak RSS of a 100-frame video, then one stream of 825 frames (101 chunks): RSS
    // after chunk 100 - after chunk 10 <= 2 MB, state bytes constant, and its peak RSS (covering the
    // 400-frame point and beyond) within 3 % of the 100-frame video's.
    const at::Tensor batch = video(8, 8, 72, 11);
    auto peak_100 = [&] {
        flashvsr::Stream s = engine().stream(opts(64, 16));
        return_freed_memory();
        reset_peak_rss();
        for (int64_t i = 0; i < 100; i += 8) {
            s.push(batch.narrow(0, 0, std::min<int64_t>(8, 100 - i)));
            (void)s.pull();  // the caller consumes each chunk
        }
        s.finish();
        (void)s.pull();
        EXPECT_EQ(s.frames_done(), 100);
        return proc_status_kib("VmHWM");
    };
    const long p100 = peak_100();
    flashvsr::Stream s = engine().stream(opts(64, 16));
    return_freed_memory();
    reset_peak_rss();
    s.push(video(25, 8, 72, 10));  // chunk 0
    ASSERT_EQ(s.tiles().size(), 3u);
    std::vector<int64_t> bytes;
    long rss10 = 0, rss100 = 0, peak400 = 0;
    for (int64_t k = 1; k <= 100; ++k) {
        s.push(batch);  // exactly one more chunk
        (void)s.pull();
        ASSERT_EQ(s.chunks_done(), k + 1);
        bytes.push_back(s.state_bytes());
        malloc_trim(0);
        if (k == 10) {
            rss10 = proc_status_kib("VmRSS");
        }
        if (k == 100) {
            rss100 = proc_status_kib("VmRSS");
        }
        if (k == 47) {
            peak400 = proc_status_kib("VmHWM");  // 25 + 47 * 8 = 401 frames
        }
    }
    for (size_t i = 1; i < bytes.size(); ++i) {
        ASSERT_EQ(bytes[i], bytes[0]) << "chunk " << i + 1;
    }
    const int64_t tiles = s.tile_state_bytes(0) + s.tile_state_bytes(1) + s.tile_state_bytes(2);
    EXPECT_GT(s.tile_state_bytes(1), 0);
    EXPECT_LE(tiles, s.state_bytes());  // + the LQ window
    EXPECT_LE(rss100 - rss10, 2048) << "RSS grew by " << (rss100 - rss10) << " KiB from chunk 10 to 100";
    const long peak825 = proc_status_kib("VmHWM");
    EXPECT_LE(std::abs(peak400 - p100), 0.03 * static_cast<double>(p100))
        << p100 << " vs " << peak400 << " KiB";
    EXPECT_LE(std::abs(peak825 - p100), 0.03 * static_cast<double>(p100))
        << p100 << " vs " << peak825 << " KiB";
    std::printf(
        "[ tiling   ] peak RSS: 100 frames %ld KiB, 401 frames %ld KiB, 825 frames %ld KiB; "
        "RSS chunk 10 -> 100: %+ld KiB\n",
        p100, peak400, peak825, rss100 - rss10);
}

TEST_F(Tiling, OutOfMemoryInTheFirstChunkRetriesWithSmallerTiles) {
    const at::Tensor v = video(22, 40, 72, 6);     // padded 128x256: one tile by default; 2 chunks
    const at::Tensor expected = run(v, opts(64));  // what 128-pixel tiles (auto overlap) give: 3 tiles
    // Every way an allocation failure surfaces (engine/oom.h), each injected as the error its library throws.
    const std::vector<std::pair<std::string, std::function<void()>>> kinds = {
        {"host", [] { throw std::bad_alloc(); }},
        {"allocator",
         [] { TORCH_CHECK_WITH(OutOfMemoryError, false, "CUDA out of memory. Tried to allocate 2.00 GiB"); }},
        {"cublas",
         [] {
             TORCH_CHECK(false, "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`");
         }},
        {"cudnn", [] { TORCH_CHECK(false, "cuDNN error: CUDNN_STATUS_ALLOC_FAILED"); }},
        {"cudnn not supported (memory)",
         [] {
             TORCH_CHECK(false,
                         "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED: insufficient memory for the workspace");
         }},
        {"launch",
         [] {
             const std::string what = "CUDA error: out of memory";
             throw c10::AcceleratorError({__func__, __FILE__, __LINE__}, 2, what);
         }},
        {"cpu allocator",
         [] {
             TORCH_CHECK(false, "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes");
         }},
    };
    for (const auto& kind : kinds) {
        SCOPED_TRACE(kind.first);
        const std::function<void()>& raise =
            kind.second;  // no structured binding: clang 14 cannot capture one
        flashvsr::engine::TilingHooks h;
        int64_t refused = 0;
        h.before_tile = [&](int64_t, int64_t, const TileRect& r) {
            if (r.height * r.width > 128 * 128) {  // injected allocation limit
                ++refused;
                raise();
            }
        };
        std::vector<TileRect> tiles;
        const at::Tensor out = run(v, opts(), h, &tiles);
        EXPECT_EQ(refused, 1);
        EXPECT_EQ(tiles.size(), 3u);
        EXPECT_TRUE(at::equal(out, expected));
    }
    // Errors that merely look alike are not retried: they reach the caller unchanged.
    for (const std::string msg :
         {"cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error may appear if you passed in a "
          "non-contiguous input.",
          "CUDA error: an illegal memory access was encountered"}) {
        flashvsr::engine::TilingHooks h;
        int64_t calls = 0;
        h.before_tile = [&](int64_t, int64_t, const TileRect&) {
            ++calls;
            TORCH_CHECK(false, msg);
        };
        EXPECT_THROW(run(v, opts(), h), c10::Error) << msg;
        EXPECT_EQ(calls, 1) << msg;
    }
    // Smallest tiles already (after chunk 0 too, once the replay re-tiled): the error says so, naming the
    // tile size and the budget.
    for (const int64_t chunk : {0, 1}) {
        flashvsr::engine::TilingHooks always;
        always.before_tile = [&](int64_t k, int64_t, const TileRect&) {
            if (k == chunk) {
                throw std::bad_alloc();
            }
        };
        flashvsr::UpscaleOptions u = opts();
        u.max_memory = int64_t{1} << 40;
        try {
            run(v, u, always);
            ADD_FAILURE() << "no error";
        } catch (const flashvsr::OutOfMemory& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find("chunk " + std::to_string(chunk) + " with 3 tile(s) of 128x128"),
                      std::string::npos)
                << what;
            EXPECT_NE(what.find("smallest tiles; max_memory=1099511627776 bytes"), std::string::npos) << what;
            EXPECT_NE(what.find("[host: std::bad_alloc]"), std::string::npos) << what;  // the error behind it
        }
    }
}

TEST_F(Tiling, MaxMemoryPlannerPicksTheLargestTileThatFits) {
    const at::Tensor v = video(1, 72, 200, 7);  // x2 -> 144x400, padded 256x512
    auto tiles_for = [&](int64_t max_memory) {
        flashvsr::UpscaleOptions u = opts();
        u.max_memory = max_memory;
        flashvsr::Stream s = engine().stream(u);
        s.push(v);
        return s.tiles();
    };
    const auto& impl = engine().impl();
    const auto model = flashvsr::engine::tile_memory_model(impl, opts());
    EXPECT_GT(model.state_per_px, 0);
    EXPECT_GT(model.transient_per_px, 0);
    const int64_t w = engine().info().weight_bytes;
    std::vector<std::pair<int64_t, int64_t>> candidates;  // (tile, working set), largest tile first
    for (int64_t t = 512; t >= 128; t -= 128) {
        const TileLayout l = plan_tiles(256, 512, t, flashvsr::engine::overlap_out_pixels(0, 2, t));
        // CPU budget: the replay buffer counts while the tiles can still shrink
        const bool can_shrink = std::max(l.rows.tile, l.cols.tile) > 128;
        candidates.emplace_back(
            t, model.working_set(l) +
                   (can_shrink ? flashvsr::engine::replay_buffer_bound(256, 512, opts()) : 0));
    }
    int64_t least = INT64_MAX;
    for (const auto& [t, ws] : candidates) {
        least = std::min(least, ws);
        int64_t expected = 0;  // the planner's rule: the first (largest) tile whose working set fits
        for (const auto& [t2, ws2] : candidates) {
            if (ws2 <= ws) {
                expected = t2;
                break;
            }
        }
        const auto tiles = tiles_for(w + ws);
        ASSERT_FALSE(tiles.empty());
        EXPECT_EQ(std::max(tiles[0].width, tiles[0].height), std::min<int64_t>(expected, 512))
            << "budget for tile " << t;
    }
    EXPECT_EQ(tiles_for(int64_t{1} << 40).size(), 1u);  // plenty: one tile
    try {
        tiles_for(w + least - 1);
        ADD_FAILURE() << "no error";
    } catch (const flashvsr::InputError& e) {
        EXPECT_NE(std::string(e.what()).find("max_memory"), std::string::npos) << e.what();
    }
}

TEST_F(Tiling, OptionsAreValidated) {
    flashvsr::UpscaleOptions u = opts();
    u.tile_size = -1;
    EXPECT_THROW(u.validate(), flashvsr::InputError);
    u = opts(64, 40);
    EXPECT_THROW(u.validate(), flashvsr::InputError);
    u = opts();
    u.max_memory = -1;
    EXPECT_THROW(u.validate(), flashvsr::InputError);
    const flashvsr::MemoryReport m = engine().memory();
    EXPECT_GT(m.rss_bytes, 10 << 20);
    EXPECT_GE(m.peak_rss_bytes, m.rss_bytes);
    if (!flashvsr::build_info().cuda_available) {
        EXPECT_FALSE(m.cuda);
    }
}

TEST_F(Tiling, ParkingTileStateIsBitIdentical) {
    // Two 128x256 tiles over a 128x384 padded frame, 3 chunks (37 frames). Parking on the CPU copies
    // every cache into new storage after each tile's chunk and back before its next one: the output must
    // not change, and between chunks a tile holds nothing on the compute device.
    const at::Tensor v = video(37, 64, 192, 12);
    flashvsr::UpscaleOptions u = opts(128, 16);
    u.park_tile_state = "off";
    flashvsr::Stream ref = engine().stream(u);
    ref.push(v);
    ref.finish();
    const at::Tensor expected = ref.pull();
    ASSERT_EQ(ref.tiles().size(), 2u);
    EXPECT_FALSE(ref.parks_tile_state());

    u.park_tile_state = "on";
    flashvsr::Stream s = engine().stream(u);
    int64_t checked = 0;
    flashvsr::engine::TilingHooks h;
    h.after_tile = [&](int64_t, int64_t tile) {  // the tile has run (and was parked); the others wait
        for (int64_t i = 0; i < 2; ++i) {
            EXPECT_EQ(s.tile_state_bytes(i), 0) << "tile " << i;
            if (i == tile) {
                EXPECT_GT(s.tile_parked_bytes(i), 0);
            }
        }
        ++checked;
    };
    flashvsr::engine::StreamAccess::set_hooks(s, h);
    s.push(v);
    s.finish();
    const at::Tensor out = s.pull();
    EXPECT_TRUE(s.parks_tile_state());
    EXPECT_EQ(checked, 3 * 2);
    EXPECT_TRUE(at::equal(out, expected));
    int64_t parked = 0;
    for (int64_t i = 0; i < 2; ++i) {
        EXPECT_EQ(s.tile_state_bytes(i), 0);
        EXPECT_EQ(s.tile_parked_bytes(i), ref.tile_state_bytes(i)) << "tile " << i;  // same caches, moved
        EXPECT_EQ(ref.tile_parked_bytes(i), 0);
        parked += s.tile_parked_bytes(i);
    }
    EXPECT_EQ(s.state_bytes(), ref.state_bytes());
    std::printf(
        "[ tiling   ] parked state: %lld bytes per 128x256 tile, %lld bytes for 2 tiles; on the device "
        "between chunks: 0\n",
        static_cast<long long>(s.tile_parked_bytes(0)), static_cast<long long>(parked));
}

TEST_F(Tiling, PlannerWithParkingPicksLargerTiles) {
    // Padded 256x512 frame, tiny model. With a device budget (CUDA) the parked working set counts one tile's
    // state instead of all of them, so the same budget admits larger tiles.
    const auto& impl = engine().impl();
    flashvsr::UpscaleOptions u = opts();
    const auto model = flashvsr::engine::tile_memory_model(impl, u);
    const TileLayout t128 = plan_tiles(256, 512, 128, flashvsr::engine::overlap_out_pixels(0, 2, 128));
    const TileLayout t256 = plan_tiles(256, 512, 256, flashvsr::engine::overlap_out_pixels(0, 2, 256));
    // Parked: one tile's state; resident: the sum (more with more overlap).
    EXPECT_EQ(model.working_set(t256, true) - model.working_set(t256, false),
              model.state_bytes(t256.rect(0)) - model.state_bytes(t256.rect(0)) * t256.count());
    int64_t budget = 0;
    auto fit = [&](const std::string& park, bool device_budget) {
        u.park_tile_state = park;
        int64_t least = 0;
        auto p = flashvsr::engine::fit_budget(model, budget, 256, 512, u, device_budget, &least);
        return p ? std::make_pair(std::max(p->layout.rows.tile, p->layout.cols.tile), p->park)
                 : std::make_pair(int64_t{-1}, false);
    };
    std::printf(
        "[ tiling   ] working sets (bytes): 128 resident %lld parked %lld; 256 resident %lld parked %lld; "
        "whole resident %lld\n",
        static_cast<long long>(model.working_set(t128)),
        static_cast<long long>(model.working_set(t128, true)),
        static_cast<long long>(model.working_set(t256)),
        static_cast<long long>(model.working_set(t256, true)),
        static_cast<long long>(model.working_set(plan_tiles(256, 512, 512, 64))));
    // Budget = 256-pixel tiles parked: parking admits 256 where resident states need 128.
    budget = model.working_set(t256, true);
    EXPECT_EQ(fit("on", true), std::make_pair(int64_t{256}, true));
    EXPECT_EQ(fit("off", true), std::make_pair(int64_t{128}, false));
    EXPECT_EQ(fit("auto", true), std::make_pair(int64_t{128}, false));  // fits without parking: no parking
    EXPECT_EQ(fit("auto", false),
              std::make_pair(int64_t{128}, false));                   // CPU: parked states are still in RSS
    EXPECT_EQ(fit("on", false), std::make_pair(int64_t{128}, true));  // parks, planned as resident
    // Just below resident 128-pixel tiles: only parking fits, and auto turns it on.
    budget = model.working_set(t128) - 1;
    EXPECT_EQ(fit("off", true), std::make_pair(int64_t{-1}, false));
    EXPECT_EQ(fit("auto", true), std::make_pair(int64_t{128}, true));
    EXPECT_EQ(fit("on", true), std::make_pair(int64_t{128}, true));
    EXPECT_EQ(fit("auto", false), std::make_pair(int64_t{-1}, false));
    const int64_t budget128 = model.working_set(t128);
    // A CPU budget also holds the replay buffer while the tiles can still shrink (not with 128-px tiles):
    // 52 raw float frames of 128x256 input px (padded 256x512 at scale 2).
    const int64_t replay = flashvsr::engine::replay_buffer_bound(256, 512, u);
    EXPECT_EQ(replay, 52LL * 128 * 256 * 3 * 4);
    budget = model.working_set(t256);
    EXPECT_EQ(fit("off", false), std::make_pair(int64_t{128}, false));
    budget = model.working_set(t256) + replay;
    EXPECT_EQ(fit("off", false), std::make_pair(int64_t{256}, false));
    EXPECT_EQ(fit("off", true), std::make_pair(int64_t{256}, false));  // a device budget never counts it
    // After an out-of-memory fallback: auto parks only on CUDA (this engine is on the CPU), "on" always.
    u.park_tile_state = "auto";
    EXPECT_FALSE(flashvsr::engine::park_after_fallback(impl, u, t128));
    u.park_tile_state = "on";
    EXPECT_TRUE(flashvsr::engine::park_after_fallback(impl, u, t128));
    // The stream on the CPU: "on" parks, but plans as without parking (the budget is RSS).
    for (const char* park : {"off", "on"}) {
        flashvsr::UpscaleOptions o = opts();
        o.max_memory = engine().info().weight_bytes + budget128;
        o.park_tile_state = park;
        flashvsr::Stream s = engine().stream(o);
        s.push(video(1, 72, 200, 7));
        EXPECT_EQ(s.tiles()[0].width, 128) << park;
        EXPECT_EQ(s.parks_tile_state(), std::string(park) == "on");
    }
}

namespace {

/// Max and mean |a - b| over frames [from, end).
std::pair<double, double> frame_diff(const at::Tensor& a, const at::Tensor& b, int64_t from) {
    const at::Tensor d = (a.narrow(0, from, a.size(0) - from) - b.narrow(0, from, b.size(0) - from)).abs();
    return {d.max().item<double>(), d.mean().item<double>()};
}

/// Injected allocation limit: tiles above 128x128 fail from chunk `from` on.
flashvsr::engine::TilingHooks refuse_large_tiles_from(int64_t from, int64_t* refused) {
    flashvsr::engine::TilingHooks h;
    h.before_tile = [from, refused](int64_t chunk, int64_t, const TileRect& r) {
        if (chunk >= from && r.height * r.width > 128 * 128) {
            ++*refused;
            throw std::bad_alloc();
        }
    };
    return h;
}

}  // namespace

TEST_F(Tiling, OutOfMemoryAfterTheFirstChunkReplays) {
    // Input 40x72 at x2: one 128x256 tile; the injected limit refuses tiles above 128x128 from chunk k on.
    // The fallback re-tiles to three 128x128 tiles and rebuilds their state by replay (R = 6 chunks).
    const int64_t r = flashvsr::engine::replay_chunks(opts());
    ASSERT_EQ(r, 6);
    const int64_t chunks = 27, n = 8 * chunks + 13;  // the last chunk needs the tail padding
    const at::Tensor v = video(n, 40, 72, 14);
    const int64_t frame_bytes = 40 * 72 * 3 * 4;  // float32 input frame
    // The un-forced stream, chunk by chunk: the replay buffer holds everything from frame 0 until chunk
    // R, then 8R + 4 = 52 raw frames, whatever the length.
    flashvsr::Stream ref = engine().stream(opts());
    std::vector<at::Tensor> parts;
    ref.push(v.narrow(0, 0, 25));
    parts.push_back(ref.pull());
    EXPECT_EQ(ref.replay_buffer_bytes(), 25 * frame_bytes);
    int64_t steady = 0;
    for (int64_t k = 1; k <= chunks - 2; ++k) {
        ref.push(v.narrow(0, 8 * k + 17, 8));
        parts.push_back(ref.pull());
        ASSERT_EQ(ref.chunks_done(), k + 1);
        const bool full = k + 1 - r >= 1;
        EXPECT_EQ(ref.replay_buffer_bytes(), (full ? 8 * r + 4 : 8 * (k + 1) + 17) * frame_bytes)
            << "after chunk " << k;
        steady += full;
    }
    EXPECT_EQ(steady, 20);  // constant over the last 20 chunks pushed
    ref.push(v.narrow(0, 8 * (chunks - 2) + 25, n - (8 * (chunks - 2) + 25)));
    ref.finish();
    parts.push_back(ref.pull());
    EXPECT_EQ(ref.replay_buffer_bytes(), 0);  // released by finish()
    const at::Tensor big = at::cat(parts, 0);

    // Forced runs on the first 101 frames (12 chunks); frames before chunk 10's output do not see the tail.
    const int64_t m = 101;
    const at::Tensor w = v.narrow(0, 0, m);
    const at::Tensor small = run(w, opts(64));  // 128-pixel tiles from the start
    const int64_t common = flashvsr::engine::plan_chunk(10).out_begin;
    auto forced = [&](int64_t from) {
        int64_t refused = 0;
        flashvsr::Stream s = engine().stream(opts());
        flashvsr::engine::StreamAccess::set_hooks(s, refuse_large_tiles_from(from, &refused));
        s.push(w);
        s.finish();
        at::Tensor out = s.pull();
        EXPECT_EQ(refused, 1);
        EXPECT_EQ(s.tiles().size(), 3u);
        EXPECT_EQ(s.replay_buffer_bytes(), 0);  // 128-pixel tiles cannot shrink: no buffer kept
        EXPECT_EQ(out.sizes(), (at::IntArrayRef{m, 80, 144, 3}));
        const int64_t switched = flashvsr::engine::plan_chunk(from).out_begin;
        EXPECT_TRUE(at::equal(out.narrow(0, 0, switched), big.narrow(0, 0, switched)))
            << "before chunk " << from;
        return out;
    };
    // Chunk 3 <= R: the new tiles replay chunks 0..2 from the start, which is exact: every later frame
    // equals the 128-pixel-tile run's, bit for bit.
    const at::Tensor out3 = forced(3);
    const int64_t s3 = flashvsr::engine::plan_chunk(3).out_begin;  // 37
    EXPECT_TRUE(at::equal(out3.narrow(0, s3, m - s3), small.narrow(0, s3, m - s3)));
    EXPECT_FALSE(
        at::equal(big.narrow(0, s3, common - s3), small.narrow(0, s3, common - s3)));  // tiling matters
    // Chunk 9: the new tiles start cold at chunk 3 and replay 3..8, an approximation of the 128-pixel-tile
    // run (bounded window, cold start); measured max 3.1e-4, mean 1.2e-5 (the tilings differ by 0.28 /
    // 0.022).
    const at::Tensor out9 = forced(9);
    const int64_t s9 = flashvsr::engine::plan_chunk(9).out_begin;  // 85
    const auto [max_small, mean_small] = frame_diff(out9, small, s9);
    const auto [max_tiling, mean_tiling] =
        frame_diff(big.narrow(0, 0, common), small.narrow(0, 0, common), s9);
    std::printf(
        "[ tiling   ] replay R=%lld cold from chunk 3 for an OOM in chunk 9, frames %lld..%lld vs 128-px "
        "tiles "
        "from the start: max %.4g mean %.4g; the two tilings differ by max %.4g mean %.4g\n",
        static_cast<long long>(r), static_cast<long long>(s9), static_cast<long long>(m - 1), max_small,
        mean_small, max_tiling, mean_tiling);
    EXPECT_GT(max_small, 0.0);  // really an approximation
    EXPECT_LE(max_small, 1e-3);
    EXPECT_LE(mean_small, 4e-5);
}
