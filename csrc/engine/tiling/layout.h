// Tile layout (pure geometry, docs/TILING.md): the tiles over the padded output frame and the blend ramps
// that make their weights a partition of unity. No model, option or memory knowledge here (that is
// tiling/planner.h).
//
// A tile is a rectangle of the prepared (bicubic x s, 128-grid padded) frame: heights/widths are multiples
// of 128 output pixels (so every network's divisibility holds), origins multiples of 16 (one DiT token =
// 2 latent pixels = 16 output pixels), so a tile's tokens and noise sit on the untiled grid.
#pragma once

#include <flashvsr/flashvsr.h>

#include <array>
#include <cstdint>
#include <vector>

namespace flashvsr::engine {

/// v rounded up to a multiple of m (v >= 0, m > 0).
int64_t round_up(int64_t v, int64_t m);

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

}  // namespace flashvsr::engine
