// Stream: one video through the chunk schedule of MODEL.md §6.3, tiled or not (a single tile is the untiled
// case: same code). The rooms it drives:
//
// LQ window (engine/lq_window):  frames --push--> raw window --prepare (bicubic xs, 128-grid pad, [-1,1])-->
//                                prepared full frames (<= 25) + the replay buffer of raw frames
// tile runner (engine/tile_runner): chunk k over every tile with its own state -> blended float32 canvas
//                                [n, Hp, Wp, 3]; parking; out-of-memory fallback with replay
// this file: the chunk schedule -- which chunk runs when, its inputs, then once per chunk the colour fix
//            of the blended frames vs the full LQ frames -> [0,1] -> crop the grid padding -> float32 CPU
//            frames --pull-->
// segment:   (scale-out, docs/SCALE_OUT.md) global chunk/frame numbering from a warm-up chunk on; a warm-up
//            start > 0 is the replay's cold start (TileRunner::start_cold_at), and the warm-up chunks' output
//            is discarded (engine/segment.cpp: which frames a segment reads and emits)
#include <flashvsr/flashvsr.h>

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <optional>

#include "csrc/engine/color_fix.h"
#include "csrc/engine/engine_impl.h"
#include "csrc/engine/frames.h"
#include "csrc/engine/lq_window.h"
#include "csrc/engine/prep.h"
#include "csrc/engine/stream_access.h"
#include "csrc/engine/tile_runner.h"
#include "csrc/engine/tiling/planner.h"

namespace flashvsr {

struct Stream::State {
    State(std::shared_ptr<const Engine::Impl> impl, const UpscaleOptions& options,
          const SegmentOptions& segment_options)
        : eng(std::move(impl)),
          opt(options),
          color_fix(engine::parse_color_fix(options.color_fix)),
          segment(segment_options),
          seg(segment_frames(segment_options, options)),
          lq(*eng, opt.scale, transfers),
          runner(*eng, opt, transfers),
          next_chunk(seg.warmup_chunk) {
        lq.set_range(seg.input_begin, seg.input_end);
        runner.set_first_chunk(seg.warmup_chunk);
    }

    std::shared_ptr<const Engine::Impl> eng;
    UpscaleOptions opt;
    engine::ColorFix color_fix;
    // segment (scale-out): frames and chunks keep the video's global numbers; the first chunk run is
    // seg.warmup_chunk, and chunks before segment.first_chunk emit nothing
    SegmentOptions segment;
    SegmentFrames seg;
    engine::TransferBytes transfers;  // host <-> device copies (gpu_check reports them per chunk)
    engine::LqWindow lq;
    engine::TileRunner runner;

    // input geometry (fixed by the first push) and the frame plan (known after finish())
    bool started = false;  // the first push fixed the geometry
    int64_t in_h = 0, in_w = 0;
    engine::GridPadding pad;
    std::optional<engine::FramePlan> plan;
    int64_t next_chunk;

    // output
    std::vector<at::Tensor> ready;
    int64_t done = 0;

    ProgressFn progress;
    const CancelToken* cancel = nullptr;
    std::function<at::Tensor(int64_t, int64_t)> noise_provider;

    /// Full-frame noise from the provider (parity runs), [1,16,nt,Hp/8,Wp/8].
    at::Tensor provided_noise(int64_t t0, int64_t nt) {
        at::Tensor n = noise_provider(t0, nt);
        TORCH_CHECK(n.dim() == 5 && n.size(2) == nt && n.size(3) == pad.padded_height() / 8 &&
                        n.size(4) == pad.padded_width() / 8,
                    "noise provider returned ", n.sizes(), " for latent frames [", t0, ", ", t0 + nt, ")");
        return n;
    }

    /// Chunk c's LQ clips (chunk 0 starts with the priming call; `prime` adds one for a cold start at c),
    /// its decoder / colour-fix condition on the device, and the provider's noise.
    engine::ChunkInputs chunk_inputs(const engine::ChunkPlan& c, bool prime) {
        engine::ChunkInputs in;
        if (prime) {
            const int64_t f = c.lq_clips.front().first - 1;  // priming call: one frame
            in.clips.push_back(lq.slice(f, f + 1));
        }
        for (const auto& [b, e] : c.lq_clips) {
            in.clips.push_back(lq.slice(b, e));
        }
        in.cond = transfers.to(lq.slice(c.cond_begin, c.cond_end), eng->device);
        if (noise_provider) {
            in.noise = provided_noise(c.latent_begin, c.latent_end - c.latent_begin);
        }
        return in;
    }

    void run_chunk() {
        if (cancel != nullptr && cancel->cancelled()) {
            throw Cancelled("cancelled after " + std::to_string(done) + " frames");
        }
        const engine::ChunkPlan c = engine::plan_chunk(next_chunk);
        // A segment's cold start at its warm-up chunk > 0 primes the LQ projector (chunk 0 primes itself).
        const bool cold = c.index == seg.warmup_chunk && c.index > 0;
        const engine::ChunkInputs in = chunk_inputs(c, cold);
        at::Tensor canvas = runner.run(
            c, in, [this](const engine::ChunkPlan& p, bool prime) { return chunk_inputs(p, prime); });
        if (!runner.can_shrink()) {
            lq.stop_replay();  // released after this chunk
        }
        if (c.index < segment.first_chunk) {  // a segment's warm-up chunk: state only, no output
            finish_chunk(c);
            if (progress && !progress(done, total_out())) {  // (0 frames yet: progress also ticks in warm-up)
                throw Cancelled("cancelled by the progress callback during the segment's warm-up");
            }
            return;
        }
        // One colour fix on the blended full frames against the full LQ frames, one frame at a time straight
        // into the output, so its temporaries are a frame each, not the chunk's (every colour fix works
        // frame by frame: the values do not depend on the grouping). Frames past the user's last frame
        // (tail padding) are neither fixed nor output.
        const int64_t limit = plan ? plan->output : lq.pushed();
        const int64_t keep = std::min(c.out_end, limit) - c.out_begin;
        if (keep > 0) {
            RECORD_USER_SCOPE("flashvsr::color_fix");
            const engine::StageScope scope(runner.hooks(), "color_fix");
            const at::Tensor blended =
                canvas.permute({3, 0, 1, 2}).unsqueeze(0);  // [n,Hp,Wp,3] -> [1,3,n,Hp,Wp]
            const at::Tensor out = at::empty({keep, pad.height, pad.width, 3}, at::dtype(at::kFloat));
            for (int64_t f = 0; f < keep; ++f) {
                const at::Tensor fixed =  // float32 [1,3,1,Hp,Wp] in [-1,1]
                    engine::color_fix(blended.narrow(2, f, 1), in.cond.narrow(2, f, 1), color_fix);
                const at::Tensor y = engine::crop_from_grid(fixed.add(1).mul_(0.5).clamp_(0, 1), pad)[0];
                out.narrow(0, f, 1).copy_(transfers.to(y.permute({1, 2, 3, 0}), at::Device(at::kCPU)));
            }
            ready.push_back(out);
            done += keep;
        }
        canvas = at::Tensor();
        finish_chunk(c);
        if (progress && !progress(done, total_out())) {
            throw Cancelled("cancelled by the progress callback after " + std::to_string(done) + " frames");
        }
    }

    void finish_chunk(const engine::ChunkPlan& c) {
        lq.drop_before(c.out_end);  // the next chunk reads from frame out_end on
        ++next_chunk;
        lq.trim_replay(runner.replay_first_frame(next_chunk));
    }

    /// Frames this stream emits in all (-1 while unknown): the video's, or the segment's part of it.
    int64_t total_out() const {
        if (!plan && seg.output_end < 0) {
            return -1;
        }
        const int64_t end = !plan                ? seg.output_end
                            : seg.output_end < 0 ? plan->output
                                                 : std::min(plan->output, seg.output_end);
        return end - seg.output_begin;
    }

    void run_ready_chunks() {
        int64_t last = plan ? plan->chunks : INT64_MAX;
        if (segment.end_chunk >= 0) {
            last = std::min(last, segment.end_chunk);
        }
        while (next_chunk < last && engine::plan_chunk(next_chunk).lq_needed <= lq.available()) {
            run_chunk();
        }
    }
};

Stream::Stream(std::shared_ptr<const Engine::Impl> engine, const UpscaleOptions& options,
               const SegmentOptions& segment) {
    options.validate();
    s_ =
        std::make_unique<State>(std::move(engine), options, segment);  // segment_frames validates the segment
}

Stream::~Stream() = default;
Stream::Stream(Stream&&) noexcept = default;
Stream& Stream::operator=(Stream&&) noexcept = default;

void Stream::push(const at::Tensor& frames) {
    State& s = *s_;
    if (s.plan) {
        throw InputError("push after finish(): start a new stream for a new video");
    }
    TORCH_CHECK(frames.dim() == 4 && frames.size(3) == 3, "push: frames must be [n,H,W,3], got ",
                frames.sizes());
    TORCH_CHECK(frames.scalar_type() == at::kByte || at::isFloatingType(frames.scalar_type()),
                "push: frames must be uint8 or floating point, got ", frames.scalar_type());
    if (frames.size(0) == 0) {
        return;
    }
    if (at::isFloatingType(frames.scalar_type())) {
        // One reduction per push (NaN propagates through min and max); refused before any state changes.
        const auto [lo, hi] = at::aminmax(frames);
        if (!at::isfinite(lo).logical_and(at::isfinite(hi)).item<bool>()) {
            const at::Tensor bad = at::isfinite(frames).flatten(1).all(1).logical_not();  // [n]
            const int64_t i = at::nonzero(bad)[0][0].item<int64_t>();                     // the first one
            throw InputError("push: frame " + std::to_string(s.lq.pushed() + i) + " (index " +
                             std::to_string(i) + " of this batch) contains NaN or infinite values");
        }
    }
    if (!s.started) {
        s.started = true;
        s.in_h = frames.size(1);
        s.in_w = frames.size(2);
        s.pad = engine::grid_padding(s.in_h * s.opt.scale, s.in_w * s.opt.scale);
        s.runner.set_plan(engine::initial_plan(*s.eng, s.opt, s.pad.padded_height(), s.pad.padded_width()));
        // The replay buffer is kept from the start when the tiles can shrink.
        s.lq.start(s.pad, s.runner.can_shrink());
    } else if (frames.size(1) != s.in_h || frames.size(2) != s.in_w) {
        throw InputError("push: frame size changed from " + std::to_string(s.in_w) + "x" +
                         std::to_string(s.in_h) + " to " + std::to_string(frames.size(2)) + "x" +
                         std::to_string(frames.size(1)));
    }
    s.lq.push(frames);
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
    if (s.plan) {
        return;
    }
    if (!s.started) {
        throw InputError("finish: no frames were pushed");
    }
    const engine::FramePlan plan = engine::plan_frames(s.lq.pushed());
    if (s.seg.output_begin >= plan.output) {
        throw InputError("finish: the segment starts at frame " + std::to_string(s.seg.output_begin) +
                         " (chunk " + std::to_string(s.segment.first_chunk) +
                         ") but the video ends at frame " + std::to_string(plan.output));
    }
    s.plan = plan;
    s.lq.finish(s.plan->fed);
    s.run_ready_chunks();
    TORCH_INTERNAL_ASSERT(s.done == s.total_out(), "stream: ", s.done, " frames out for ", s.total_out(),
                          " expected");
    s.lq.clear();
}

void Stream::set_progress(ProgressFn progress) { s_->progress = std::move(progress); }
void Stream::set_cancel(const CancelToken* cancel) { s_->cancel = cancel; }
void Stream::set_noise_provider(std::function<at::Tensor(int64_t, int64_t)> provider) {
    s_->noise_provider = std::move(provider);
}

int64_t Stream::frames_pushed() const { return s_->lq.pushed() - s_->seg.input_begin; }
int64_t Stream::frames_done() const { return s_->done; }
int64_t Stream::chunks_done() const { return s_->next_chunk; }

int64_t Stream::state_bytes() const {
    int64_t b = s_->lq.bytes();
    for (const auto& t : s_->runner.tiles()) {
        b += t.state.bytes() + t.parked.bytes();
    }
    return b;
}

std::vector<TileRect> Stream::tiles() const {
    std::vector<TileRect> v;
    for (const auto& t : s_->runner.tiles()) {
        v.push_back(t.rect);
    }
    return v;
}

namespace {
const engine::TileCore& tile_at(const std::vector<engine::TileCore>& tiles, int64_t tile, const char* what) {
    TORCH_CHECK(tile >= 0 && tile < static_cast<int64_t>(tiles.size()), what, ": tile ", tile,
                " out of range [0, ", tiles.size(), ")");
    return tiles[static_cast<size_t>(tile)];
}
}  // namespace

int64_t Stream::tile_state_bytes(int64_t tile) const {
    return tile_at(s_->runner.tiles(), tile, "tile_state_bytes").state.bytes();
}

int64_t Stream::tile_parked_bytes(int64_t tile) const {
    return tile_at(s_->runner.tiles(), tile, "tile_parked_bytes").parked.bytes();
}

bool Stream::parks_tile_state() const { return s_->runner.parks(); }

int64_t Stream::replay_buffer_bytes() const { return s_->lq.replay_bytes(); }

void engine::StreamAccess::set_hooks(Stream& s, TilingHooks hooks) {
    s.state().runner.set_hooks(std::move(hooks));
}
engine::TransferBytes engine::StreamAccess::transfers(const Stream& s) { return s.state().transfers; }
int64_t engine::StreamAccess::oom_fallbacks(const Stream& s) { return s.state().runner.oom_fallbacks(); }

}  // namespace flashvsr
