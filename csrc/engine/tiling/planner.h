// Tile planner (docs/TILING.md): the per-tile memory model, the max_memory planner (the largest tiles that
// fit, with or without parking the tiles' states on the host), the out-of-memory fallback's next layout and
// the replay bound. The geometry it plans with is tiling/layout.h.
#pragma once

#include <flashvsr/flashvsr.h>

#include <cstdint>
#include <optional>
#include <string>

#include "csrc/engine/tiling/layout.h"

namespace flashvsr::engine {

/// The per-tile memory model (bytes, see docs/TILING.md): state that lives as long as the tile (K/V windows,
/// LQ-projector caches, decoder memory) and the transient peak of one chunk of one tile (activations).
struct TileMemoryModel {
    double state_per_px = 0;      // bytes per output pixel of a tile, after the K/V windows are full
    double transient_per_px = 0;  // bytes per output pixel at the peak of a chunk
    double frame_per_px = 0;      // bytes per padded frame pixel: LQ window, canvas, colour fix, output
    double fixed_bytes = 0;       // per stream, independent of size (allocator and op workspaces; calibrated)
    int64_t state_bytes(const TileRect& t) const;
    int64_t transient_bytes(const TileRect& t) const;
    /// Working set of a whole layout on the compute device: every tile's state (with `parked`: only the
    /// largest tile's, the others wait in host memory) + the largest transient + the frame buffers + fixed.
    int64_t working_set(const TileLayout& layout, bool parked = false) const;
};

TileMemoryModel tile_memory_model(const Engine::Impl& engine, const UpscaleOptions& options);

/// Transient peak per output pixel in units of (DiT width + FFN width) x element size, and the fixed
/// overhead; calibrated on CPU with tiny weights (docs/TILING.md: measured 0.425 and 26 MB, rounded up).
inline constexpr double kTransientPerPxPerDim = 0.45;
inline constexpr double kFixedOverheadBytes = 32.0 * 1024 * 1024;

/// UpscaleOptions::park_tile_state.
enum class Parking { kAuto, kOn, kOff };
/// "auto" | "on" | "off"; InputError naming park_tile_state otherwise.
Parking parse_parking(const std::string& value);

/// A layout and whether its tiles' states are parked on the host between their chunks.
struct TilePlan {
    TileLayout layout;
    bool park = false;
};

/// The planner's rule on a memory model: the largest tile (multiple of 128, from the whole frame down) whose
/// working set fits `budget` (bytes for everything but the weights). `device_budget`: the budget is device
/// memory apart from the host (CUDA), so parked states do not count against it; on a CPU device they do, and
/// parking cannot help. Parking "off": resident states only; "on": parked (counted as such only with
/// device_budget); "auto": the largest tile that fits without parking, else (device_budget) the largest that
/// fits with parking. nullopt when nothing fits; `least` then holds the smallest working set tried.
std::optional<TilePlan> fit_budget(const TileMemoryModel& model, int64_t budget, int64_t padded_h,
                                   int64_t padded_w, const UpscaleOptions& options, bool device_budget,
                                   int64_t* least = nullptr);

/// max_memory planner: fit_budget for the engine's model and device, max_memory minus the weights;
/// InputError naming max_memory when even 128-pixel tiles do not fit.
TilePlan plan_for_budget(const Engine::Impl& engine, const UpscaleOptions& options, int64_t padded_h,
                         int64_t padded_w);

/// The plan a stream starts with: explicit tile_size (parked by "auto" only on CUDA with > 1 tile when the
/// resident working set exceeds max_memory), else the planner when max_memory > 0, else one tile.
TilePlan initial_plan(const Engine::Impl& engine, const UpscaleOptions& options, int64_t padded_h,
                      int64_t padded_w);

/// Out-of-memory fallback: the next smaller layout (tile length halved, rounded to 128, >= 128); returns
/// false when tiles are already 128.
bool shrink_layout(TileLayout& layout, const UpscaleOptions& options);
/// Whether tiles are parked after an out-of-memory fallback to `layout`: "on", or "auto" on a CUDA device
/// with more than one tile.
bool park_after_fallback(const Engine::Impl& engine, const UpscaleOptions& options, const TileLayout& layout);

/// Chunks replayed to rebuild the tiles' state when the fallback re-tiles at chunk k > 0: the new tiles
/// start cold at chunk k - R and chunks k-R .. k-1 are re-run from the replay buffer with their output
/// discarded. R = the K/V window (max(2, int(kv_ratio)) slices, one per chunk) + kReplayWarmupChunks, so the
/// window's oldest slice was itself computed with 3 chunks of history (6 for the default kv_ratio 3). The
/// error after the switch falls with R (measured, docs/TILING.md: max 0.041 / 0.0064 / 3.1e-4 / 4.6e-5 for
/// R = 2 / 4 / 6 / 8 on tiny weights); R = 6 keeps it below half an 8-bit level.
inline constexpr int64_t kReplayWarmupChunks = 3;
int64_t replay_chunks(const UpscaleOptions& options);
/// The planner's bound on the replay buffer: 8R+4 raw input frames of the padded frame / scale, float32.
/// It lives in host memory and exists only while the tiles can still shrink (tile > 128 px), so it counts
/// against CPU (RSS) budgets of such layouts and never against a device budget.
int64_t replay_buffer_bound(int64_t padded_h, int64_t padded_w, const UpscaleOptions& options);

}  // namespace flashvsr::engine
