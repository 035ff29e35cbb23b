// Tile planner: per-tile memory model, max_memory planner with parking, out-of-memory fallback layouts,
// replay bound (see tiling/planner.h, docs/TILING.md).
#include "csrc/engine/tiling/planner.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "csrc/engine/engine_impl.h"

namespace flashvsr::engine {

int64_t TileMemoryModel::state_bytes(const TileRect& t) const {
    return static_cast<int64_t>(state_per_px * static_cast<double>(t.height * t.width));
}

int64_t TileMemoryModel::transient_bytes(const TileRect& t) const {
    return static_cast<int64_t>(transient_per_px * static_cast<double>(t.height * t.width));
}

int64_t TileMemoryModel::working_set(const TileLayout& layout, bool parked) const {
    int64_t sum = 0, largest = 0, peak = 0;
    for (int64_t i = 0; i < layout.count(); ++i) {
        sum += state_bytes(layout.rect(i));
        largest = std::max(largest, state_bytes(layout.rect(i)));
        peak = std::max(peak, transient_bytes(layout.rect(i)));
    }
    const double frame_px = static_cast<double>(layout.rows.length * layout.cols.length);
    return (parked ? largest : sum) + peak + static_cast<int64_t>(frame_per_px * frame_px + fixed_bytes);
}

TileMemoryModel tile_memory_model(const Engine::Impl& eng, const UpscaleOptions& opt) {
    const double e = static_cast<double>(c10::elementSize(eng.dtype));
    const auto& d = eng.dit->config();
    const auto& l = eng.lq_proj->config();
    // Elements per output pixel (one token = 16x16 output pixels, one latent pixel = 8x8).
    const double kv_slices = std::floor(opt.kv_ratio);
    double state =
        static_cast<double>(d.num_layers) * 2 * kv_slices * 2 * static_cast<double>(d.dim) / 256;  // K, V
    state += static_cast<double>(l.in_channels + l.conv1_channels) * 2 / 256;  // LQ conv caches, 2 frames
    if (eng.tc_decoder) {
        const auto& c = eng.tc_decoder->config().channels;  // 3 MemBlocks per stage at 1/8, 1/4, 1/2
        state += 3.0 * (static_cast<double>(c[0]) / 64 + static_cast<double>(c[1]) / 16 +
                        static_cast<double>(c[2]) / 4);
    } else {  // Wan VAE feature caches, 2 frames per cached conv (rough: 8 per level, widths 4/4/2/1 x dim)
        const double dim = static_cast<double>(eng.vae_decoder->config().dim);
        state += 16 * dim * (4.0 / 64 + 4.0 / 16 + 2.0 / 4 + 1.0);
    }
    TileMemoryModel m;
    m.state_per_px = state * e;
    m.transient_per_px = kTransientPerPxPerDim * static_cast<double>(d.dim + d.ffn_dim) * e;
    // LQ window (<= 25 frames, compute dtype) + canvas, its colour-fixed copy and the output (8 frames,
    // fp32).
    m.frame_per_px = 25 * 3 * e + 3 * 8 * 3 * 4.0;
    m.fixed_bytes = kFixedOverheadBytes;
    return m;
}

Parking parse_parking(const std::string& value) {
    if (value == "auto") {
        return Parking::kAuto;
    }
    if (value == "on") {
        return Parking::kOn;
    }
    if (value == "off") {
        return Parking::kOff;
    }
    throw InputError("park_tile_state must be auto, on or off, got '" + value + "'");
}

std::optional<TilePlan> fit_budget(const TileMemoryModel& m, int64_t budget, int64_t padded_h,
                                   int64_t padded_w, const UpscaleOptions& opt, bool device_budget,
                                   int64_t* least) {
    const Parking mode = parse_parking(opt.park_tile_state);
    std::vector<bool> passes;  // park?, in order of preference
    if (mode != Parking::kOn) {
        passes.push_back(false);
    }
    if (mode == Parking::kOn || (mode == Parking::kAuto && device_budget)) {
        passes.push_back(true);
    }
    int64_t smallest = INT64_MAX;
    for (const bool park : passes) {
        for (int64_t t = round_up(std::max(padded_h, padded_w), 128); t >= 128; t -= 128) {
            const TileLayout layout =
                plan_tiles(padded_h, padded_w, t, overlap_out_pixels(opt.tile_overlap, opt.scale, t));
            const bool can_shrink = std::max(layout.rows.tile, layout.cols.tile) > 128;
            const int64_t ws =
                m.working_set(layout, park && device_budget) +
                (!device_budget && can_shrink ? replay_buffer_bound(padded_h, padded_w, opt) : 0);
            smallest = std::min(smallest, ws);
            if (ws <= budget) {
                return TilePlan{layout, park && (mode == Parking::kOn || layout.count() > 1)};
            }
        }
    }
    if (least != nullptr) {
        *least = smallest;
    }
    return std::nullopt;
}

TilePlan plan_for_budget(const Engine::Impl& eng, const UpscaleOptions& opt, int64_t padded_h,
                         int64_t padded_w) {
    int64_t least = 0;
    const std::optional<TilePlan> p =
        fit_budget(tile_memory_model(eng, opt), opt.max_memory - eng.info.weight_bytes, padded_h, padded_w,
                   opt, !eng.device.is_cpu(), &least);
    if (p) {
        return *p;
    }
    throw InputError("max_memory=" + std::to_string(opt.max_memory) +
                     " bytes is below the estimated need of " +
                     std::to_string(eng.info.weight_bytes + least) + " bytes (weights " +
                     std::to_string(eng.info.weight_bytes) + " + working set " + std::to_string(least) +
                     " with 128-pixel tiles) for a " + std::to_string(padded_w) + "x" +
                     std::to_string(padded_h) + " padded frame");
}

TilePlan initial_plan(const Engine::Impl& eng, const UpscaleOptions& opt, int64_t padded_h,
                      int64_t padded_w) {
    const Parking mode = parse_parking(opt.park_tile_state);
    if (opt.tile_size > 0) {
        const int64_t t = tile_out_pixels(opt.tile_size, opt.scale);
        TilePlan p{plan_tiles(padded_h, padded_w, t, overlap_out_pixels(opt.tile_overlap, opt.scale, t)),
                   false};
        p.park =
            mode == Parking::kOn ||
            (mode == Parking::kAuto && !eng.device.is_cpu() && opt.max_memory > 0 && p.layout.count() > 1 &&
             tile_memory_model(eng, opt).working_set(p.layout) > opt.max_memory - eng.info.weight_bytes);
        return p;
    }
    if (opt.max_memory > 0) {
        return plan_for_budget(eng, opt, padded_h, padded_w);
    }
    return TilePlan{plan_tiles(padded_h, padded_w, std::max(padded_h, padded_w), 0), mode == Parking::kOn};
}

bool shrink_layout(TileLayout& layout, const UpscaleOptions& opt) {
    const int64_t t = std::max(layout.rows.tile, layout.cols.tile);
    if (t <= 128) {
        return false;
    }
    const int64_t next = std::max<int64_t>(128, t / 2 / 128 * 128);
    layout = plan_tiles(layout.rows.length, layout.cols.length, next,
                        overlap_out_pixels(opt.tile_overlap, opt.scale, next));
    return true;
}

bool park_after_fallback(const Engine::Impl& eng, const UpscaleOptions& opt, const TileLayout& layout) {
    const Parking mode = parse_parking(opt.park_tile_state);
    return mode == Parking::kOn || (mode == Parking::kAuto && !eng.device.is_cpu() && layout.count() > 1);
}

int64_t replay_chunks(const UpscaleOptions& opt) {
    return std::max<int64_t>(2, static_cast<int64_t>(opt.kv_ratio)) + kReplayWarmupChunks;
}

int64_t replay_buffer_bound(int64_t padded_h, int64_t padded_w, const UpscaleOptions& opt) {
    const int64_t frames = 8 * replay_chunks(opt) + 4;
    const int64_t in_px = ((padded_h + opt.scale - 1) / opt.scale) * ((padded_w + opt.scale - 1) / opt.scale);
    return frames * in_px * 3 * static_cast<int64_t>(sizeof(float));
}

}  // namespace flashvsr::engine
