// Tiling (issue 5, docs/TILING.md): the tile layout over the padded output frame, the blend ramps that make
// the tiles' weights a partition of unity, the per-tile memory model and the max_memory planner.
//
// A tile is a rectangle of the prepared (bicubic x s, 128-grid padded) frame: heights/widths are multiples
// of 128 output pixels (so every network's divisibility holds), origins multiples of 16 (one DiT token =
// 2 latent pixels = 16 output pixels), so a tile's tokens and noise sit on the untiled grid.
#pragma once

#include <flashvsr/flashvsr.h>

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

namespace flashvsr::engine {

/// One axis: tile starts and the (common) tile length. Invariants: starts[0] = 0, last start = length -
/// tile, starts ascending on the 16 grid, consecutive tiles overlap (or abut), and no pixel is covered by
/// more than two tiles (o[i-1] + o[i] <= tile), so complementary ramps form a partition of unity.
struct AxisLayout {
    int64_t length = 0;  // padded frame length (multiple of 128)
    int64_t tile = 0;    // tile length (multiple of 128, <= length)
    std::vector<int64_t> starts;
    /// Overlap between tile i and i+1 (size starts.size() - 1).
    std::vector<int64_t> overlaps() const;
};

/// Layout of `length` with tiles of `tile` (rounded up to 128, clamped to length) overlapping by at least
/// `min_overlap` (rounded up to 16, at most tile/2) — fewer overlap pixels only when the requested overlap
/// would make three tiles meet; overlaps are spread evenly (they differ by at most 16).
AxisLayout plan_axis(int64_t length, int64_t tile, int64_t min_overlap);

/// A 2-D layout: row-major product of the two axes.
struct TileLayout {
    AxisLayout rows, cols;
    int64_t count() const { return static_cast<int64_t>(rows.starts.size() * cols.starts.size()); }
    TileRect rect(int64_t index) const;
    /// {top, bottom, left, right} ramp lengths for blend_accumulate: the overlap with the neighbour on that
    /// side, 0 at the image border.
    std::array<int64_t, 4> ramps(int64_t index) const;
};

TileLayout plan_tiles(int64_t padded_h, int64_t padded_w, int64_t tile_out, int64_t overlap_out);

/// Output-pixel sizes from the options (input pixels): ceil(v * scale) rounded up to 128 / 16.
int64_t tile_out_pixels(int64_t tile_size_in, int64_t scale);
int64_t overlap_out_pixels(int64_t tile_overlap_in, int64_t scale, int64_t tile_out);

/// The per-tile memory model (bytes, see docs/TILING.md): state that lives as long as the tile (K/V windows,
/// LQ-projector caches, decoder memory) and the transient peak of one chunk of one tile (activations).
struct TileMemoryModel {
    double state_per_px = 0;      // bytes per output pixel of a tile, after the K/V windows are full
    double transient_per_px = 0;  // bytes per output pixel at the peak of a chunk
    double frame_per_px = 0;      // bytes per padded frame pixel: LQ window, canvas, colour fix, output
    double fixed_bytes = 0;       // per stream, independent of size (allocator and op workspaces; calibrated)
    int64_t state_bytes(const TileRect& t) const;
    int64_t transient_bytes(const TileRect& t) const;
    /// Working set of a whole layout: every tile's state + the largest transient + the frame buffers.
    int64_t working_set(const TileLayout& layout) const;
};

TileMemoryModel tile_memory_model(const Engine::Impl& engine, const UpscaleOptions& options);

/// Transient peak per output pixel in units of (DiT width + FFN width) x element size, and the fixed
/// overhead; calibrated on CPU with tiny weights (docs/TILING.md: measured 0.425 and 26 MB, rounded up).
inline constexpr double kTransientPerPxPerDim = 0.45;
inline constexpr double kFixedOverheadBytes = 32.0 * 1024 * 1024;

/// max_memory planner: the largest tile (multiple of 128) whose working set plus the weights fits
/// `options.max_memory`; InputError naming max_memory when even 128-pixel tiles do not fit.
TileLayout plan_for_budget(const Engine::Impl& engine, const UpscaleOptions& options, int64_t padded_h,
                           int64_t padded_w);

/// The layout a stream starts with: explicit tile_size, else the planner when max_memory > 0, else one tile.
TileLayout initial_layout(const Engine::Impl& engine, const UpscaleOptions& options, int64_t padded_h,
                          int64_t padded_w);

/// Out-of-memory fallback: the next smaller layout (tile length halved, rounded to 128, >= 128); returns
/// false when tiles are already 128.
bool shrink_layout(TileLayout& layout, const UpscaleOptions& options);

/// Test hooks of one stream (internal; see tests/cpp/test_tiling.cpp).
struct TilingHooks {
    uint64_t order_seed = 0;  // != 0: tiles run in a pseudo-random order (the output must not change)
    std::function<void(int64_t chunk, int64_t tile, const TileRect&)> before_tile;  // may throw (OOM injection)
    std::function<void(int64_t chunk, int64_t tile)> after_tile;
};

struct StreamAccess {
    static void set_hooks(Stream& s, TilingHooks hooks);
    static const Engine::Impl& impl(const Engine& e) { return *e.impl_; }
};

/// Memory report helpers (memory.cpp, memory_cuda.cpp).
void fill_cuda_memory(MemoryReport& report);

}  // namespace flashvsr::engine
