// Stream: one video (or tile) through the chunk schedule of spec §6.3 with explicit per-stream state.
//
// frames --push--> raw window --prepare (bicubic xs, 128-grid pad, [-1,1])--> LQ window (<= 25 frames)
//   per chunk k: LQ projector clips -> tokens; noise (global position) -> DiT -> latent = noise - v
//                -> TCDecoder / Wan VAE (carried memory) -> colour fix vs the chunk's LQ frames
//                -> [0,1], crop the grid padding -> float32 CPU frames --pull-->
#include <flashvsr/flashvsr.h>

#include <ATen/ATen.h>

#include <deque>
#include <optional>

#include "engine/color_fix.h"
#include "engine/engine_impl.h"
#include "engine/frames.h"
#include "engine/noise.h"
#include "engine/prep.h"

namespace flashvsr {

struct Stream::State {
    std::shared_ptr<const Engine::Impl> eng;
    UpscaleOptions opt;
    engine::ColorFix color_fix = engine::ColorFix::kAdain;
    models::AttentionOptions attn;

    // Input geometry, fixed by the first push.
    int64_t in_h = 0, in_w = 0;
    engine::GridPadding pad;

    // Frames: raw (as pushed, not yet prepared) and prepared LQ frames [3, Hp, Wp] (compute dtype).
    std::deque<at::Tensor> raw;
    int64_t raw_base = 0;  // index of raw.front()
    std::deque<at::Tensor> lq;
    int64_t lq_base = 0;   // index of lq.front()
    at::Tensor last_lq;    // the last real prepared frame: the tail padding repeats it
    int64_t pushed = 0;
    std::optional<engine::FramePlan> plan;  // known after finish()

    // Network state.
    models::LQProjState lq_state;
    models::DiTState dit_state;
    models::TCDecoderState tc_state;
    models::VAEDecodeState vae_state;
    int64_t next_chunk = 0;

    // Output.
    std::vector<at::Tensor> ready;
    int64_t done = 0;

    ProgressFn progress;
    const CancelToken* cancel = nullptr;
    std::function<at::Tensor(int64_t, int64_t)> noise_provider;

    at::Device lq_device() const { return eng->keep_lq_on_host ? at::Device(at::kCPU) : eng->device; }

    int64_t available() const { return plan ? plan->fed : pushed; }

    at::Tensor prepare_one(const at::Tensor& frame) const {  // [h,w,3] -> [3,Hp,Wp]
        const at::Tensor x = engine::prepare_lq(frame.unsqueeze(0).to(eng->device), opt.scale, pad, eng->dtype);
        return x[0].select(1, 0).to(lq_device());  // [1,3,1,Hp,Wp] -> [3,Hp,Wp]
    }

    void ensure_lq(int64_t end) {
        while (lq_base + static_cast<int64_t>(lq.size()) < end) {
            const int64_t i = lq_base + static_cast<int64_t>(lq.size());
            if (i < pushed) {
                TORCH_INTERNAL_ASSERT(!raw.empty() && raw_base == i, "stream: raw frame ", i, " missing");
                last_lq = prepare_one(raw.front());
                raw.pop_front();
                ++raw_base;
                lq.push_back(last_lq);
            } else {
                TORCH_INTERNAL_ASSERT(plan && i < plan->fed && last_lq.defined(), "stream: frame ", i, " unavailable");
                lq.push_back(last_lq);  // tail padding: copies of the last frame (shares storage)
            }
        }
    }

    at::Tensor lq_slice(int64_t b, int64_t e) {  // -> [1, 3, e-b, Hp, Wp] on the compute device
        ensure_lq(e);
        TORCH_INTERNAL_ASSERT(b >= lq_base, "stream: LQ frame ", b, " already dropped");
        std::vector<at::Tensor> v;
        for (int64_t i = b; i < e; ++i) v.push_back(lq[static_cast<size_t>(i - lq_base)]);
        return at::stack(v, 1).unsqueeze(0).to(eng->device);  // e-b x [3,Hp,Wp] -> [1,3,e-b,Hp,Wp]
    }

    void drop_lq_before(int64_t index) {
        while (lq_base < index && !lq.empty()) {
            lq.pop_front();
            ++lq_base;
        }
    }

    at::Tensor noise(int64_t t0, int64_t nt) {
        if (noise_provider) {
            at::Tensor n = noise_provider(t0, nt);
            TORCH_CHECK(n.dim() == 5 && n.size(2) == nt && n.size(3) == pad.padded_height() / 8 &&
                            n.size(4) == pad.padded_width() / 8,
                        "noise provider returned ", n.sizes(), " for latent frames [", t0, ", ", t0 + nt, ")");
            return n.to(eng->device, eng->dtype);
        }
        const engine::LatentRegion r{t0, nt, 0, pad.padded_height() / 8, 0, pad.padded_width() / 8};
        return engine::latent_noise(opt.seed, r, eng->dit->config().in_dim).to(eng->device, eng->dtype);
    }

    void run_chunk() {
        if (cancel != nullptr && cancel->cancelled()) {
            throw Cancelled("cancelled after " + std::to_string(done) + " frames");
        }
        const engine::ChunkPlan c = engine::plan_chunk(next_chunk);
        // LQ projector: the chunk's clips (chunk 0 starts with the priming call).
        std::vector<at::Tensor> tokens;
        for (const auto& [b, e] : c.lq_clips) {
            at::Tensor t = eng->lq_proj->stream(lq_slice(b, e), lq_state, eng->cache_order);
            if (t.defined()) tokens.push_back(std::move(t));
        }
        const at::Tensor lq_tokens = at::cat(tokens, 1);  // f x [1, h*w, dim] -> [1, f*h*w, dim]
        // One step of the DiT from pure noise at timestep 1000: latent = noise - v.
        const at::Tensor n = noise(c.latent_begin, c.latent_end - c.latent_begin);
        const at::Tensor v = eng->dit->forward_chunk(n, lq_tokens, eng->constants, dit_state, attn);
        const at::Tensor latent = n - v;
        // Decode with carried memory, then the colour fix against the same LQ frames.
        const at::Tensor cond = lq_slice(c.cond_begin, c.cond_end);
        at::Tensor frames;
        if (eng->tc_decoder) {
            frames = eng->tc_decoder->decode(latent, cond, tc_state) * 2 - 1;  // ~[0,1] -> ~[-1,1]
        } else {
            frames = eng->vae_decoder->decode(latent, vae_state);
        }
        TORCH_CHECK(frames.size(2) == c.out_end - c.out_begin, "chunk ", c.index, ": decoder produced ",
                    frames.size(2), " frames, expected ", c.out_end - c.out_begin);
        const at::Tensor fixed = engine::color_fix(frames, cond, color_fix);  // float32 [1,3,n,Hp,Wp]
        at::Tensor out = engine::crop_from_grid(fixed.add(1).mul_(0.5).clamp_(0, 1), pad)[0];  // [3,n,H,W]
        out = out.permute({1, 2, 3, 0});                                                    // -> [n,H,W,3]
        // Frames past the user's last frame (tail padding) are not output.
        const int64_t limit = plan ? plan->output : pushed;
        const int64_t keep = std::min(c.out_end, limit) - c.out_begin;
        if (keep > 0) {
            ready.push_back(out.narrow(0, 0, keep).to(at::kCPU).contiguous());
            done += keep;
        }
        drop_lq_before(c.out_end);  // the next chunk reads from frame out_end on
        ++next_chunk;
        if (progress && !progress(done, plan ? plan->output : -1)) {
            throw Cancelled("cancelled by the progress callback after " + std::to_string(done) + " frames");
        }
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
    if (s.pushed == 0) {
        s.in_h = frames.size(1);
        s.in_w = frames.size(2);
        s.pad = engine::grid_padding(s.in_h * s.opt.scale, s.in_w * s.opt.scale);
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
    int64_t b = s.lq_state.bytes() + s.dit_state.bytes() + s.tc_state.bytes() + s.vae_state.bytes();
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

}  // namespace flashvsr
