// Stream: one video through the chunk schedule of spec §6.3, tiled or not (a single tile is the untiled
// case: same code), with explicit per-tile state.
//
// frontend:  frames --push--> raw window --prepare (bicubic xs, 128-grid pad, [-1,1])--> LQ window (<= 25
//            full frames)
// per chunk k, every tile t (TileCore: its own LQ-projector caches, K/V windows, decoder memory):
//            LQ clips cropped to t -> tokens; noise (global latent position) -> DiT -> latent = noise - v
//            -> TCDecoder / Wan VAE (carried memory) -> raw frames [-1,1], unclamped
//            -> blend_accumulate into a float32 canvas [n, Hp, Wp, 3] of this chunk only (ramps where a
//               neighbour overlaps, weight 1 at the image border; tiles blended in index order)
// then once: colour fix of the blended frames vs the full LQ frames -> [0,1] -> crop the grid padding
//            -> float32 CPU frames --pull-->
// parking:   with park_tile_state, a tile's state is unparked from the host before its chunk and parked after
// OOM:       any out-of-memory error (engine/oom.h: allocator, host, cuBLAS, cuDNN, CUDA runtime) -> smaller
//            tiles, fresh cores; after chunk 0 they are brought to the failed chunk by replaying the last R
//            chunks from the replay buffer (raw input frames, host) with outputs discarded
#include <flashvsr/flashvsr.h>

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <deque>
#include <map>
#include <new>
#include <numeric>
#include <optional>
#include <random>

#include "engine/color_fix.h"
#include "engine/engine_impl.h"
#include "engine/frames.h"
#include "engine/noise.h"
#include "engine/oom.h"
#include "engine/prep.h"
#include "engine/tile_state.h"
#include "engine/tiling.h"
#include "kernels/blend_accumulate/blend_accumulate.h"

namespace flashvsr {
namespace {

using engine::TileCore;

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

/// Calls hooks.stage(name, true) now and hooks.stage(name, false) when it goes out of scope.
class StageScope {
  public:
    StageScope(const engine::TilingHooks& h, const char* name) : h_(h), name_(name) {
        if (h_.stage) h_.stage(name_, true);
    }
    ~StageScope() {
        if (h_.stage && std::uncaught_exceptions() == 0) h_.stage(name_, false);
    }
    StageScope(const StageScope&) = delete;
    StageScope& operator=(const StageScope&) = delete;

  private:
    const engine::TilingHooks& h_;
    const char* name_;
};

}  // namespace

struct Stream::State {
    std::shared_ptr<const Engine::Impl> eng;
    UpscaleOptions opt;
    engine::ColorFix color_fix = engine::ColorFix::kAdain;
    models::AttentionOptions attn;

    // ---- frontend: input geometry (fixed by the first push), raw and prepared frames ----
    int64_t in_h = 0, in_w = 0;
    engine::GridPadding pad;
    std::deque<at::Tensor> raw;  // as pushed, not yet prepared
    int64_t raw_base = 0;        // index of raw.front()
    // Replay buffer (out-of-memory fallback after chunk 0): host copies of the raw frames [ring_base, ...)
    // already prepared, as far back as a replay of replay_chunks() chunks reads. Kept while the layout can
    // still shrink.
    std::deque<at::Tensor> ring;
    int64_t ring_base = 0;  // index of ring.front()
    bool keep_ring = false;
    std::deque<at::Tensor> lq;   // prepared full LQ frames [3, Hp, Wp] (compute dtype)
    int64_t lq_base = 0;         // index of lq.front()
    at::Tensor last_lq;          // the last real prepared frame: the tail padding repeats it
    int64_t pushed = 0;
    std::optional<engine::FramePlan> plan;  // known after finish()

    // ---- tiles: the layout and one core per tile ----
    engine::TileLayout layout;
    std::vector<TileCore> tiles;
    bool park = false;  // tile states wait in host memory between their chunks
    engine::TilingHooks hooks;
    int64_t next_chunk = 0;
    int64_t oom_fallbacks = 0;  // out-of-memory errors the fallback caught

    // ---- output ----
    std::vector<at::Tensor> ready;
    int64_t done = 0;

    ProgressFn progress;
    const CancelToken* cancel = nullptr;
    std::function<at::Tensor(int64_t, int64_t)> noise_provider;
    mutable engine::TransferBytes transfers;  // host <-> device copies (gpu_check reports them per chunk)

    /// t on `device` (and `dtype` when given), counting the bytes when it crosses between host and device.
    at::Tensor to(const at::Tensor& t, at::Device device, std::optional<at::ScalarType> dtype = std::nullopt) const {
        if (t.device() != device) {
            if (t.is_cpu() && !device.is_cpu()) transfers.host_to_device += static_cast<int64_t>(t.nbytes());
            if (!t.is_cpu() && device.is_cpu()) transfers.device_to_host += static_cast<int64_t>(t.nbytes());
        }
        return dtype ? t.to(device, *dtype) : t.to(device);
    }

    at::Device lq_device() const { return eng->keep_lq_on_host ? at::Device(at::kCPU) : eng->device; }

    int64_t available() const { return plan ? plan->fed : pushed; }

    /// A new layout with fresh tile cores (all previous tile state dropped). The replay buffer is kept from
    /// the start when the tiles can shrink; once they cannot, it is released after the current chunk.
    void set_layout(engine::TilePlan p) {
        layout = std::move(p.layout);
        park = p.park;
        tiles.clear();
        tiles.resize(static_cast<size_t>(layout.count()));
        for (int64_t i = 0; i < layout.count(); ++i) tiles[static_cast<size_t>(i)].rect = layout.rect(i);
        engine::TileLayout smaller = layout;
        const bool can_shrink = engine::shrink_layout(smaller, opt);
        if (pushed == 0) keep_ring = can_shrink;  // first layout: before any frame is prepared
        if (!can_shrink) keep_ring = false;
    }

    int64_t replay_chunks() const { return hooks.replay_chunks > 0 ? hooks.replay_chunks : engine::replay_chunks(opt); }

    /// First frame a replay for an out-of-memory error in chunk `k` (or later) reads.
    int64_t replay_first_frame(int64_t k) const {
        const int64_t j = k - replay_chunks();
        return j <= 0 ? 0 : engine::plan_chunk(j).cond_begin;
    }

    void trim_ring() {
        if (!keep_ring) {
            ring.clear();
            return;
        }
        const int64_t from = replay_first_frame(next_chunk);
        while (ring_base < from && !ring.empty()) {
            ring.pop_front();
            ++ring_base;
        }
    }

    // Named ranges (flashvsr::prep, lq_proj, dit, decoder, color_fix) for profilers and bench_speed; free
    // when nothing observes them.
    at::Tensor prepare_one(const at::Tensor& frame) const {  // [h,w,3] -> [3,Hp,Wp]
        RECORD_USER_SCOPE("flashvsr::prep");
        const at::Tensor x = engine::prepare_lq(to(frame.unsqueeze(0), eng->device), opt.scale, pad, eng->dtype);
        return to(x[0].select(1, 0), lq_device());  // [1,3,1,Hp,Wp] -> [3,Hp,Wp]
    }

    void ensure_lq(int64_t end) {
        while (lq_base + static_cast<int64_t>(lq.size()) < end) {
            const int64_t i = lq_base + static_cast<int64_t>(lq.size());
            if (i < pushed) {
                TORCH_INTERNAL_ASSERT(!raw.empty() && raw_base == i, "stream: raw frame ", i, " missing");
                last_lq = prepare_one(raw.front());
                if (keep_ring) {
                    TORCH_INTERNAL_ASSERT(ring_base + static_cast<int64_t>(ring.size()) == i, "stream: replay gap");
                    const at::Tensor& f = raw.front();  // own storage on the host: never pins a pushed batch
                    ring.push_back(f.is_cpu() ? f.clone() : to(f, at::Device(at::kCPU)));
                }
                raw.pop_front();
                ++raw_base;
                lq.push_back(last_lq);
            } else {
                TORCH_INTERNAL_ASSERT(plan && i < plan->fed && last_lq.defined(), "stream: frame ", i, " unavailable");
                lq.push_back(last_lq);  // tail padding: copies of the last frame (shares storage)
            }
        }
    }

    /// Prepared frame i: from the LQ window, or (replay) re-prepared from the replay buffer — the same
    /// computation on the same raw frame, so the same values.
    at::Tensor prepared(int64_t i) {
        if (i >= lq_base) {
            ensure_lq(i + 1);
            return lq[static_cast<size_t>(i - lq_base)];
        }
        if (i >= pushed) return last_lq;  // tail padding
        TORCH_INTERNAL_ASSERT(i >= ring_base && i < ring_base + static_cast<int64_t>(ring.size()), "stream: LQ frame ",
                              i, " already dropped");
        return prepare_one(ring[static_cast<size_t>(i - ring_base)]);
    }

    at::Tensor lq_slice(int64_t b, int64_t e) {  // -> [1, 3, e-b, Hp, Wp] (on the LQ device)
        std::vector<at::Tensor> v;
        for (int64_t i = b; i < e; ++i) v.push_back(prepared(i));
        return at::stack(v, 1).unsqueeze(0);  // e-b x [3,Hp,Wp] -> [1,3,e-b,Hp,Wp]
    }

    void drop_lq_before(int64_t index) {
        while (lq_base < index && !lq.empty()) {
            lq.pop_front();
            ++lq_base;
        }
    }

    /// Full-frame noise from the provider (parity runs), [1,16,nt,Hp/8,Wp/8].
    at::Tensor provided_noise(int64_t t0, int64_t nt) {
        at::Tensor n = noise_provider(t0, nt);
        TORCH_CHECK(n.dim() == 5 && n.size(2) == nt && n.size(3) == pad.padded_height() / 8 &&
                        n.size(4) == pad.padded_width() / 8,
                    "noise provider returned ", n.sizes(), " for latent frames [", t0, ", ", t0 + nt, ")");
        return n;
    }

    /// One chunk of one tile: raw decoded frames [1, 3, n, th, tw] in ~[-1, 1] (compute dtype, unclamped).
    at::Tensor run_tile(TileCore& core, const engine::ChunkPlan& c, const std::vector<at::Tensor>& clips,
                        const at::Tensor& cond, const at::Tensor& full_noise) const {
        const at::Device dev = eng->device;
        if (core.is_parked && !dev.is_cpu()) transfers.host_to_device += core.parked.bytes();
        engine::unpark(core, dev);
        engine::TileState& st = core.state;
        const TileRect& rect = core.rect;
        std::vector<at::Tensor> tokens;
        at::Tensor lq_tokens;
        {
            const StageScope scope(hooks, "lq_proj");
            RECORD_USER_SCOPE("flashvsr::lq_proj");
            for (const auto& clip : clips) {
                at::Tensor k = eng->lq_proj->stream(to(crop(clip, rect), dev), st.lq, eng->cache_order);
                if (k.defined()) tokens.push_back(std::move(k));
            }
            lq_tokens = at::cat(tokens, 1);  // f x [1, h*w, dim] -> [1, f*h*w, dim]
        }
        // Noise keyed by the global latent position: the tile's latent offset is its pixel origin / 8.
        const engine::LatentRegion r{c.latent_begin, c.latent_end - c.latent_begin, rect.top / 8, rect.height / 8,
                                     rect.left / 8, rect.width / 8};
        const at::Tensor n = to(full_noise.defined() ? full_noise.narrow(3, r.y0, r.ny).narrow(4, r.x0, r.nx)
                                                     : engine::latent_noise(opt.seed, r, eng->dit->config().in_dim),
                                dev, eng->dtype);
        // One step of the DiT from pure noise at timestep 1000: latent = noise - v. The top-k budget follows
        // from the tile's own size (spec §2.9).
        at::Tensor v;
        {
            const StageScope scope(hooks, "dit");
            RECORD_USER_SCOPE("flashvsr::dit");
            v = eng->dit->forward_chunk(n, lq_tokens, eng->constants, st.dit, attn);
        }
        const at::Tensor latent = n - v;
        at::Tensor frames;
        {
            const StageScope scope(hooks, "decoder");
            RECORD_USER_SCOPE("flashvsr::decoder");
            if (eng->tc_decoder) {
                frames = eng->tc_decoder->decode(latent, to(crop(cond, rect), dev), st.tc) * 2 - 1;  // ~[0,1] -> ~[-1,1]
            } else {
                frames = eng->vae_decoder->decode(latent, st.vae);
            }
        }
        TORCH_CHECK(frames.size(2) == c.out_end - c.out_begin, "chunk ", c.index, ": decoder produced ",
                    frames.size(2), " frames, expected ", c.out_end - c.out_begin);
        if (park) {
            if (!dev.is_cpu()) transfers.device_to_host += core.state.bytes();
            engine::park(core, at::Device(at::kCPU));
        }
        return frames;
    }

    /// Every tile's chunk k blended into `canvas` [n, Hp, Wp, 3] (float32). Tiles may run in any order
    /// (hooks.order_seed); they are blended in index order, each as soon as all before it are, so the
    /// floating-point sums never depend on the run order.
    void run_tiles(const engine::ChunkPlan& c, const std::vector<at::Tensor>& clips, const at::Tensor& cond,
                   const at::Tensor& full_noise, at::Tensor& canvas) {
        std::vector<int64_t> order(static_cast<size_t>(layout.count()));
        std::iota(order.begin(), order.end(), 0);
        if (hooks.order_seed != 0) {
            std::mt19937_64 rng(hooks.order_seed + static_cast<uint64_t>(c.index));
            std::shuffle(order.begin(), order.end(), rng);
        }
        std::map<int64_t, at::Tensor> waiting;  // decoded tiles whose predecessors are not blended yet
        int64_t next_blend = 0;
        for (const int64_t i : order) {
            TileCore& t = tiles[static_cast<size_t>(i)];
            if (hooks.before_tile) hooks.before_tile(c.index, i, t.rect);
            waiting[i] = run_tile(t, c, clips, cond, full_noise);
            for (auto it = waiting.find(next_blend); it != waiting.end(); it = waiting.find(next_blend)) {
                const at::Tensor tile = it->second[0].permute({1, 2, 3, 0});  // [3,n,th,tw] -> [n,th,tw,3]
                const TileRect& rr = tiles[static_cast<size_t>(next_blend)].rect;
                const StageScope scope(hooks, "blend");
                kernels::blend_accumulate(canvas, tile.contiguous(), rr.top, rr.left, layout.ramps(next_blend));
                waiting.erase(it);
                ++next_blend;
            }
            if (hooks.after_tile) hooks.after_tile(c.index, i);
        }
        TORCH_INTERNAL_ASSERT(waiting.empty() && next_blend == layout.count(), "stream: tiles left unblended");
    }

    /// Brings fresh tile cores (a new layout) to chunk k > 0: they start at chunk j = max(0, k - R) with the
    /// global chunk counter, RoPE positions and noise keys of chunk j, cold (empty K/V windows, zero decoder
    /// memory, LQ projector primed on the frame before the chunk's first clip; j = 0 is an ordinary start),
    /// and chunks j .. k-1 are re-run from the replay buffer with their outputs discarded.
    void replay_to(int64_t k) {
        const int64_t j = std::max<int64_t>(0, k - replay_chunks());
        if (j > 0) {
            for (TileCore& t : tiles) {
                t.state.dit.chunk_index = j;
                t.state.tc.started = true;
                if (eng->vae_decoder) eng->vae_decoder->cold_start(t.state.vae);
            }
        }
        for (int64_t ci = j; ci < k; ++ci) {
            const engine::ChunkPlan c = engine::plan_chunk(ci);
            std::vector<at::Tensor> clips;
            if (ci == j && j > 0) {
                const int64_t f = c.lq_clips.front().first - 1;  // priming call: one frame
                clips.push_back(lq_slice(f, f + 1));
            }
            for (const auto& [b, e] : c.lq_clips) clips.push_back(lq_slice(b, e));
            const at::Tensor cond = to(lq_slice(c.cond_begin, c.cond_end), eng->device);
            const at::Tensor full_noise =
                noise_provider ? provided_noise(c.latent_begin, c.latent_end - c.latent_begin) : at::Tensor();
            for (TileCore& t : tiles) (void)run_tile(t, c, clips, cond, full_noise);
        }
    }

    void run_chunk() {
        if (cancel != nullptr && cancel->cancelled()) {
            throw Cancelled("cancelled after " + std::to_string(done) + " frames");
        }
        const engine::ChunkPlan c = engine::plan_chunk(next_chunk);
        std::vector<at::Tensor> clips;  // the chunk's LQ-projector clips (chunk 0 starts with the priming call)
        for (const auto& [b, e] : c.lq_clips) clips.push_back(lq_slice(b, e));
        const at::Tensor cond = to(lq_slice(c.cond_begin, c.cond_end), eng->device);  // decoder + colour fix
        const at::Tensor full_noise =
            noise_provider ? provided_noise(c.latent_begin, c.latent_end - c.latent_begin) : at::Tensor();
        const int64_t n = c.out_end - c.out_begin;
        at::Tensor canvas;
        bool rebuild = false;  // the tiles were replaced after chunk 0: replay to bring them to chunk c
        for (;;) {
            try {
                if (rebuild) replay_to(c.index);
                rebuild = false;
                canvas = at::zeros({n, pad.padded_height(), pad.padded_width(), 3},
                                   at::TensorOptions().dtype(at::kFloat).device(eng->device));
                run_tiles(c, clips, cond, full_noise, canvas);
                break;
            } catch (...) {
                const std::exception_ptr e = std::current_exception();
                const engine::OomKind kind = engine::classify_out_of_memory(e);
                if (kind == engine::OomKind::kNone) throw;
                ++oom_fallbacks;
                canvas = at::Tensor();
                // Smaller tiles, fresh cores; after chunk 0 their state is rebuilt by replay (tiles that
                // finished this chunk before the error are discarded too: nothing of it was emitted).
                engine::TileLayout smaller = layout;
                if (!engine::shrink_layout(smaller, opt)) {
                    throw OutOfMemory("out of memory in chunk " + std::to_string(c.index) + " with " +
                                      describe_layout() + " (already the smallest tiles" +
                                      (opt.max_memory > 0 ? "; max_memory=" + std::to_string(opt.max_memory) + " bytes"
                                                          : std::string()) +
                                      "): free memory or lower the resolution, and restart the video [" +
                                      engine::to_string(kind) + ": " + engine::first_line(what_of(e)) + "]");
                }
                tiles.clear();  // the old cores' state is garbage now: free it before the retry allocates
                if (!eng->device.is_cpu()) engine::empty_cuda_cache();  // cuBLAS/cuDNN allocate outside the cache
                const bool p = engine::park_after_fallback(*eng, opt, smaller);
                set_layout(engine::TilePlan{std::move(smaller), p});
                rebuild = c.index > 0;
            }
        }
        // One colour fix on the blended full frames against the full LQ frames.
        RECORD_USER_SCOPE("flashvsr::color_fix");
        const at::Tensor blended = canvas.permute({3, 0, 1, 2}).unsqueeze(0);  // [n,Hp,Wp,3] -> [1,3,n,Hp,Wp]
        at::Tensor fixed;
        {
            const StageScope scope(hooks, "color_fix");
            fixed = engine::color_fix(blended, cond, color_fix);  // float32 [1,3,n,Hp,Wp]
        }
        canvas = at::Tensor();
        at::Tensor out = engine::crop_from_grid(fixed.add(1).mul_(0.5).clamp_(0, 1), pad)[0];  // [3,n,H,W]
        out = out.permute({1, 2, 3, 0});                                                    // -> [n,H,W,3]
        // Frames past the user's last frame (tail padding) are not output.
        const int64_t limit = plan ? plan->output : pushed;
        const int64_t keep = std::min(c.out_end, limit) - c.out_begin;
        if (keep > 0) {
            ready.push_back(to(out.narrow(0, 0, keep), at::Device(at::kCPU)).contiguous());
            done += keep;
        }
        drop_lq_before(c.out_end);  // the next chunk reads from frame out_end on
        ++next_chunk;
        trim_ring();
        if (progress && !progress(done, plan ? plan->output : -1)) {
            throw Cancelled("cancelled by the progress callback after " + std::to_string(done) + " frames");
        }
    }

    std::string describe_layout() const {
        return std::to_string(layout.count()) + " tile(s) of " + std::to_string(layout.cols.tile) + "x" +
               std::to_string(layout.rows.tile) + " output pixels";
    }

    void run_ready_chunks() {
        const int64_t last = plan ? plan->chunks : INT64_MAX;
        while (next_chunk < last && engine::plan_chunk(next_chunk).lq_needed <= available()) {
            run_chunk();
        }
    }
};

Stream::Stream(std::shared_ptr<const Engine::Impl> engine, const UpscaleOptions& options)
    : s_(std::make_unique<State>()) {
    options.validate();
    s_->eng = std::move(engine);
    s_->opt = options;
    s_->color_fix = engine::parse_color_fix(options.color_fix);
    s_->attn.sparse_ratio = options.sparse_ratio;
    s_->attn.kv_ratio = options.kv_ratio;
    s_->attn.local_range = options.local_range;
}

Stream::~Stream() = default;
Stream::Stream(Stream&&) noexcept = default;
Stream& Stream::operator=(Stream&&) noexcept = default;

void Stream::push(const at::Tensor& frames) {
    State& s = *s_;
    if (s.plan) throw InputError("push after finish(): start a new stream for a new video");
    TORCH_CHECK(frames.dim() == 4 && frames.size(3) == 3, "push: frames must be [n,H,W,3], got ", frames.sizes());
    TORCH_CHECK(frames.scalar_type() == at::kByte || at::isFloatingType(frames.scalar_type()),
                "push: frames must be uint8 or floating point, got ", frames.scalar_type());
    if (frames.size(0) == 0) return;
    if (at::isFloatingType(frames.scalar_type())) {
        // One reduction per push (NaN propagates through min and max); refused before any state changes.
        const auto [lo, hi] = at::aminmax(frames);
        if (!at::isfinite(lo).logical_and(at::isfinite(hi)).item<bool>()) {
            const at::Tensor bad = at::isfinite(frames).flatten(1).all(1).logical_not();  // [n]
            const int64_t i = at::nonzero(bad)[0][0].item<int64_t>();                        // the first one
            throw InputError("push: frame " + std::to_string(s.pushed + i) + " (index " + std::to_string(i) +
                             " of this batch) contains NaN or infinite values");
        }
    }
    if (s.pushed == 0) {
        s.in_h = frames.size(1);
        s.in_w = frames.size(2);
        s.pad = engine::grid_padding(s.in_h * s.opt.scale, s.in_w * s.opt.scale);
        s.set_layout(engine::initial_plan(*s.eng, s.opt, s.pad.padded_height(), s.pad.padded_width()));
    } else if (frames.size(1) != s.in_h || frames.size(2) != s.in_w) {
        throw InputError("push: frame size changed from " + std::to_string(s.in_w) + "x" + std::to_string(s.in_h) +
                         " to " + std::to_string(frames.size(2)) + "x" + std::to_string(frames.size(1)));
    }
    for (int64_t i = 0; i < frames.size(0); ++i) s.raw.push_back(frames[i]);
    s.pushed += frames.size(0);
    s.run_ready_chunks();
}

at::Tensor Stream::pull() {
    State& s = *s_;
    at::Tensor out;
    if (s.ready.empty()) {
        const int64_t h = s.in_h * s.opt.scale, w = s.in_w * s.opt.scale;
        out = at::empty({0, h, w, 3}, at::kFloat);
    } else {
        out = s.ready.size() == 1 ? s.ready[0] : at::cat(s.ready, 0);
    }
    s.ready.clear();
    return out;
}

void Stream::finish() {
    State& s = *s_;
    if (s.plan) return;
    if (s.pushed == 0) throw InputError("finish: no frames were pushed");
    s.plan = engine::plan_frames(s.pushed);
    s.run_ready_chunks();
    TORCH_INTERNAL_ASSERT(s.done == s.pushed, "stream: ", s.done, " frames out for ", s.pushed, " in");
    s.lq.clear();
    s.raw.clear();
    s.ring.clear();
}

void Stream::set_progress(ProgressFn progress) { s_->progress = std::move(progress); }
void Stream::set_cancel(const CancelToken* cancel) { s_->cancel = cancel; }
void Stream::set_noise_provider(std::function<at::Tensor(int64_t, int64_t)> provider) {
    s_->noise_provider = std::move(provider);
}

int64_t Stream::frames_pushed() const { return s_->pushed; }
int64_t Stream::frames_done() const { return s_->done; }
int64_t Stream::chunks_done() const { return s_->next_chunk; }

int64_t Stream::state_bytes() const {
    const State& s = *s_;
    int64_t b = 0;
    for (const auto& t : s.tiles) b += t.state.bytes() + t.parked.bytes();
    std::vector<const void*> seen;  // padding copies share one storage: count it once
    for (const auto& t : s.lq) {
        const void* p = t.storage().data();
        if (std::find(seen.begin(), seen.end(), p) == seen.end()) {
            seen.push_back(p);
            b += static_cast<int64_t>(t.storage().nbytes());
        }
    }
    return b;
}

std::vector<TileRect> Stream::tiles() const {
    std::vector<TileRect> v;
    for (const auto& t : s_->tiles) v.push_back(t.rect);
    return v;
}

namespace {
const TileCore& tile_at(const std::vector<TileCore>& tiles, int64_t tile, const char* what) {
    TORCH_CHECK(tile >= 0 && tile < static_cast<int64_t>(tiles.size()), what, ": tile ", tile, " out of range [0, ",
                tiles.size(), ")");
    return tiles[static_cast<size_t>(tile)];
}
}  // namespace

int64_t Stream::tile_state_bytes(int64_t tile) const {
    return tile_at(s_->tiles, tile, "tile_state_bytes").state.bytes();
}

int64_t Stream::tile_parked_bytes(int64_t tile) const {
    return tile_at(s_->tiles, tile, "tile_parked_bytes").parked.bytes();
}

bool Stream::parks_tile_state() const { return s_->park; }

int64_t Stream::replay_buffer_bytes() const {
    int64_t b = 0;
    for (const auto& f : s_->ring) b += static_cast<int64_t>(f.nbytes());
    return b;
}

void engine::StreamAccess::set_hooks(Stream& s, TilingHooks hooks) { s.s_->hooks = std::move(hooks); }
engine::TransferBytes engine::StreamAccess::transfers(const Stream& s) { return s.s_->transfers; }
int64_t engine::StreamAccess::oom_fallbacks(const Stream& s) { return s.s_->oom_fallbacks; }

}  // namespace flashvsr
