// The tile runner of one stream (see tile_runner.h, docs/TILING.md).
//
// per chunk k, every tile t (TileCore: its own LQ-projector caches, K/V windows, decoder memory):
//            LQ clips cropped to t -> tokens; noise (global latent position) -> DiT -> latent = noise - v
//            -> TCDecoder / Wan VAE (carried memory) -> raw frames [-1,1], unclamped
//            -> blend_accumulate into a float32 canvas [n, Hp, Wp, 3] of this chunk only (ramps where a
//               neighbour overlaps, weight 1 at the image border; tiles blended in index order)
// parking:   with park_tile_state, a tile's state is unparked from the host before its chunk and parked after
// OOM:       any out-of-memory error (engine/oom.h: allocator, host, cuBLAS, cuDNN, CUDA runtime) -> smaller
//            tiles, fresh cores; after chunk 0 they are brought to the failed chunk by replaying the last R
//            chunks from the replay buffer (raw input frames, host) with outputs discarded
#include "csrc/engine/tile_runner.h"

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>

#include "csrc/engine/engine_impl.h"
#include "csrc/engine/noise.h"
#include "csrc/engine/oom.h"
#include "kernels/blend_accumulate/blend_accumulate.h"

namespace flashvsr::engine {
namespace {

std::string what_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "unknown error";
    }
}

at::Tensor crop(const at::Tensor& x, const TileRect& r) {  // [..., Hp, Wp] -> [..., th, tw] (contiguous)
    return x.narrow(-2, r.top, r.height).narrow(-1, r.left, r.width).contiguous();
}

}  // namespace

TileRunner::TileRunner(const Engine::Impl& engine, const UpscaleOptions& options, TransferBytes& transfers)
    : eng_(engine), opt_(options), transfers_(transfers) {
    attn_.sparse_ratio = options.sparse_ratio;
    attn_.kv_ratio = options.kv_ratio;
    attn_.local_range = options.local_range;
}

void TileRunner::set_plan(TilePlan plan) {
    layout_ = std::move(plan.layout);
    park_ = plan.park;
    tiles_.clear();
    tiles_.resize(static_cast<size_t>(layout_.count()));
    for (int64_t i = 0; i < layout_.count(); ++i) {
        tiles_[static_cast<size_t>(i)].rect = layout_.rect(i);
    }
}

bool TileRunner::can_shrink() const {
    TileLayout smaller = layout_;
    return shrink_layout(smaller, opt_);
}

int64_t TileRunner::replay_chunks() const {
    return hooks_.replay_chunks > 0 ? hooks_.replay_chunks : engine::replay_chunks(opt_);
}

int64_t TileRunner::replay_start(int64_t k) const { return std::max(first_chunk_, k - replay_chunks()); }

int64_t TileRunner::replay_first_frame(int64_t k) const {
    const int64_t j = replay_start(k);
    return j <= 0 ? 0 : plan_chunk(j).cond_begin;
}

std::string TileRunner::describe_layout() const {
    return std::to_string(layout_.count()) + " tile(s) of " + std::to_string(layout_.cols.tile) + "x" +
           std::to_string(layout_.rows.tile) + " output pixels";
}

// glibc's free heap pages back to the OS between the networks of a CPU chunk and inside the two large ones,
// after each DiT block and each decoder step (trim_host_heap), so that freed activations do not stay resident
// under the next peak: glibc reuses its free chunks in a different order than they were freed, and the
// pages in between stay. Measured at full size: between networks ~2 % more CPU time (page faults), no wall
// time (896x512: 656.7 s with, 657.5 s without); inside the DiT, 384x256: its peak 2033 -> 1595 MiB above the
// weights for +1.9 s (2.6 %) of its 74.5 s. Not on CUDA: the device memory is the caching allocator's, and
// the host heap holds little there.
void TileRunner::trim_heap_on_cpu() const {
    if (eng_.device.is_cpu()) {
        trim_host_heap();
        if (hooks_.heap_trimmed) {
            hooks_.heap_trimmed();
        }
    }
}

// Named ranges (flashvsr::lq_proj, dit, decoder) for profilers and bench_speed; free when nothing observes
// them.
at::Tensor TileRunner::run_tile(TileCore& core, const ChunkPlan& c, const ChunkInputs& in) {
    const at::Device dev = eng_.device;
    if (core.is_parked && !dev.is_cpu()) {
        transfers_.host_to_device += core.parked.bytes();
    }
    unpark(core, dev);
    TileState& st = core.state;
    const TileRect& rect = core.rect;
    // Inside the DiT (per block) and the TCDecoder (per step) too, on the CPU.
    const std::function<void()> trim_between = [this] { trim_heap_on_cpu(); };
    std::vector<at::Tensor> tokens;
    at::Tensor lq_tokens;
    {
        const StageScope scope(hooks_, "lq_proj");
        RECORD_USER_SCOPE("flashvsr::lq_proj");
        for (const auto& clip : in.clips) {
            at::Tensor k =
                eng_.lq_proj->stream(transfers_.to(crop(clip, rect), dev), st.lq, eng_.cache_order);
            if (k.defined()) {
                tokens.push_back(std::move(k));
            }
        }
        lq_tokens = at::cat(tokens, 1);  // f x [1, h*w, dim] -> [1, f*h*w, dim]
        tokens.clear();                  // (66 MB each at 896x512 in chunk 0: not kept under the DiT's peak)
    }
    trim_heap_on_cpu();
    // Noise keyed by the global latent position: the tile's latent offset is its pixel origin / 8.
    const LatentRegion r{c.latent_begin, c.latent_end - c.latent_begin,
                         rect.top / 8,   rect.height / 8,
                         rect.left / 8,  rect.width / 8};
    const at::Tensor n =
        transfers_.to(in.noise.defined() ? in.noise.narrow(3, r.y0, r.ny).narrow(4, r.x0, r.nx)
                                         : latent_noise(opt_.seed, r, eng_.dit->config().in_dim),
                      dev, eng_.dtype);
    // One step of the DiT from pure noise at timestep 1000: latent = noise - v. The top-k budget follows
    // from the tile's own size (MODEL.md §2.9).
    at::Tensor v;
    {
        const StageScope scope(hooks_, "dit");
        RECORD_USER_SCOPE("flashvsr::dit");
        // moved in: the DiT drops them once they are added, before block 0
        v = eng_.dit->forward_chunk(n, std::move(lq_tokens), eng_.constants, st.dit, attn_, trim_between);
    }
    trim_heap_on_cpu();
    const at::Tensor latent = n - v;
    at::Tensor frames;
    {
        const StageScope scope(hooks_, "decoder");
        RECORD_USER_SCOPE("flashvsr::decoder");
        if (eng_.tc_decoder) {
            // ~[0,1] -> ~[-1,1], in place (a second copy of the chunk's frames otherwise)
            frames = eng_.tc_decoder->decode(latent, transfers_.to(crop(in.cond, rect), dev), st.tc, 0,
                                             trim_between);
            frames.mul_(2).sub_(1);
        } else {
            frames = eng_.vae_decoder->decode(latent, st.vae);
        }
    }
    trim_heap_on_cpu();
    TORCH_CHECK(frames.size(2) == c.out_end - c.out_begin, "chunk ", c.index, ": decoder produced ",
                frames.size(2), " frames, expected ", c.out_end - c.out_begin);
    if (park_) {
        if (!dev.is_cpu()) {
            transfers_.device_to_host += core.state.bytes();
        }
        park(core, at::Device(at::kCPU));
    }
    return frames;
}

// Tiles may run in any order (hooks.order_seed); they are blended in index order, each as soon as all before
// it are, so the floating-point sums never depend on the run order.
void TileRunner::run_tiles(const ChunkPlan& c, const ChunkInputs& in, at::Tensor& canvas) {
    std::vector<int64_t> order(static_cast<size_t>(layout_.count()));
    std::iota(order.begin(), order.end(), 0);
    if (hooks_.order_seed != 0) {
        std::mt19937_64 rng(hooks_.order_seed + static_cast<uint64_t>(c.index));
        std::shuffle(order.begin(), order.end(), rng);
    }
    std::map<int64_t, at::Tensor> waiting;  // decoded tiles whose predecessors are not blended yet
    int64_t next_blend = 0;
    for (const int64_t i : order) {
        TileCore& t = tiles_[static_cast<size_t>(i)];
        if (hooks_.before_tile) {
            hooks_.before_tile(c.index, i, t.rect);
        }
        waiting[i] = run_tile(t, c, in);
        for (auto it = waiting.find(next_blend); it != waiting.end(); it = waiting.find(next_blend)) {
            const at::Tensor tile = it->second[0].permute({1, 2, 3, 0});  // [3,n,th,tw] -> [n,th,tw,3]
            const TileRect& rr = tiles_[static_cast<size_t>(next_blend)].rect;
            const StageScope scope(hooks_, "blend");
            if (!canvas.defined()) {  // made at the first blend, not under the first tile's decoder peak
                canvas = at::zeros({c.out_end - c.out_begin, layout_.rows.length, layout_.cols.length, 3},
                                   at::TensorOptions().dtype(at::kFloat).device(eng_.device));
            }
            kernels::blend_accumulate(canvas, tile.contiguous(), rr.top, rr.left, layout_.ramps(next_blend));
            waiting.erase(it);
            ++next_blend;
        }
        if (hooks_.after_tile) {
            hooks_.after_tile(c.index, i);
        }
    }
    TORCH_INTERNAL_ASSERT(waiting.empty() && next_blend == layout_.count(), "stream: tiles left unblended");
}

void TileRunner::start_cold_at(int64_t j) {
    if (j > 0) {
        for (TileCore& t : tiles_) {
            t.state.cold_start(j);
        }
    }
}

void TileRunner::replay_to(int64_t k, const ChunkInputsFn& inputs_of) {
    const int64_t j = replay_start(k);
    start_cold_at(j);
    for (int64_t ci = j; ci < k; ++ci) {
        const ChunkPlan c = plan_chunk(ci);
        const ChunkInputs in = inputs_of(c, ci == j && j > 0);
        for (TileCore& t : tiles_) {
            (void)run_tile(t, c, in);
        }
    }
}

at::Tensor TileRunner::run(const ChunkPlan& c, const ChunkInputs& in, const ChunkInputsFn& inputs_of) {
    const int64_t n = c.out_end - c.out_begin;
    bool rebuild = false;  // the tiles were replaced after chunk 0: replay to bring them to chunk c
    for (;;) {
        try {
            if (rebuild) {
                replay_to(c.index, inputs_of);
            } else if (c.index == first_chunk_) {
                start_cold_at(c.index);  // the stream's first chunk: fresh tiles start cold there (none at 0)
            }
            rebuild = false;
            at::Tensor canvas;  // float32 [n, Hp, Wp, 3], made by run_tiles at its first blend
            run_tiles(c, in, canvas);
            TORCH_INTERNAL_ASSERT(canvas.size(0) == n);
            return canvas;
        } catch (...) {
            const std::exception_ptr e = std::current_exception();
            const OomKind kind = classify_out_of_memory(e);
            if (kind == OomKind::kNone) {
                throw;
            }
            ++oom_fallbacks_;
            // Smaller tiles, fresh cores; after chunk 0 their state is rebuilt by replay (tiles that
            // finished this chunk before the error are discarded too: nothing of it was emitted).
            TileLayout smaller = layout_;
            if (!shrink_layout(smaller, opt_)) {
                throw OutOfMemory("out of memory in chunk " + std::to_string(c.index) + " with " +
                                  describe_layout() + " (already the smallest tiles" +
                                  (opt_.max_memory > 0
                                       ? "; max_memory=" + std::to_string(opt_.max_memory) + " bytes"
                                       : std::string()) +
                                  "): free memory or lower the resolution, and restart the video [" +
                                  to_string(kind) + ": " + first_line(what_of(e)) + "]");
            }
            tiles_.clear();  // the old cores' state is garbage now: free it before the retry allocates
            if (!eng_.device.is_cpu()) {
                empty_cuda_cache();  // cuBLAS/cuDNN allocate outside the cache
            }
            const bool p = park_after_fallback(eng_, opt_, smaller);
            set_plan(TilePlan{std::move(smaller), p});
            rebuild = c.index > first_chunk_;
        }
    }
}

}  // namespace flashvsr::engine
