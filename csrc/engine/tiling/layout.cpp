// Tile layout: axes, 2-D layouts, blend ramps (see tiling/layout.h, docs/TILING.md).
#include "csrc/engine/tiling/layout.h"

#include <c10/util/Exception.h>

#include <algorithm>

namespace flashvsr::engine {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

std::vector<int64_t> AxisLayout::overlaps() const {
    std::vector<int64_t> o;
    for (size_t i = 1; i < starts.size(); ++i) {
        o.push_back(starts[i - 1] + tile - starts[i]);
    }
    return o;
}

AxisLayout plan_axis(int64_t length, int64_t tile, int64_t min_overlap) {
    TORCH_CHECK(length > 0 && length % 128 == 0, "plan_axis: length ", length,
                " is not a positive multiple of 128");
    AxisLayout a;
    a.length = length;
    a.tile = std::min(round_up(std::max<int64_t>(tile, 128), 128), length);
    if (a.tile == length) {
        a.starts = {0};
        return a;
    }
    const int64_t ov = std::min(round_up(std::max<int64_t>(min_overlap, 0), 16), a.tile / 2 / 16 * 16);
    const int64_t n_min = (length - ov + (a.tile - ov) - 1) / (a.tile - ov);  // ceil: overlaps >= ov
    const int64_t n_low = (length + a.tile - 1) / a.tile;                     // fewest tiles that cover
    for (int64_t n = std::max(n_min, n_low); n >= n_low; --n) {
        const int64_t units = (n * a.tile - length) / 16;  // total overlap in 16-pixel units
        std::vector<int64_t> o(static_cast<size_t>(n - 1));
        for (int64_t i = 0; i < n - 1; ++i) {
            o[static_cast<size_t>(i)] = 16 * (units / (n - 1) + (i < units % (n - 1)));
        }
        bool ok = true;  // no pixel under three tiles: the two ramps of a tile fit inside it
        for (size_t i = 1; i < o.size(); ++i) {
            ok = ok && o[i - 1] + o[i] <= a.tile;
        }
        if (!ok) {
            continue;
        }
        a.starts = {0};
        for (int64_t v : o) {
            a.starts.push_back(a.starts.back() + a.tile - v);
        }
        TORCH_INTERNAL_ASSERT(a.starts.back() + a.tile == length,
                              "plan_axis: layout does not end at the border");
        return a;
    }
    TORCH_INTERNAL_ASSERT(false, "plan_axis: no layout for length ", length, " tile ", a.tile);
}

TileRect TileLayout::rect(int64_t index) const {
    const int64_t nc = static_cast<int64_t>(cols.starts.size());
    const auto r = static_cast<size_t>(index / nc), c = static_cast<size_t>(index % nc);
    return TileRect{rows.starts[r], cols.starts[c], rows.tile, cols.tile};
}

std::array<int64_t, 4> TileLayout::ramps(int64_t index) const {
    const int64_t nc = static_cast<int64_t>(cols.starts.size());
    const auto r = static_cast<size_t>(index / nc), c = static_cast<size_t>(index % nc);
    const std::vector<int64_t> orow = rows.overlaps(), ocol = cols.overlaps();
    return {r > 0 ? orow[r - 1] : 0, r < orow.size() ? orow[r] : 0, c > 0 ? ocol[c - 1] : 0,
            c < ocol.size() ? ocol[c] : 0};
}

TileLayout plan_tiles(int64_t padded_h, int64_t padded_w, int64_t tile_out, int64_t overlap_out) {
    return TileLayout{plan_axis(padded_h, tile_out, overlap_out), plan_axis(padded_w, tile_out, overlap_out)};
}

int64_t tile_out_pixels(int64_t tile_size_in, int64_t scale) { return round_up(tile_size_in * scale, 128); }

int64_t overlap_out_pixels(int64_t tile_overlap_in, int64_t scale, int64_t tile_out) {
    if (tile_overlap_in <= 0) {
        return std::max<int64_t>(32, round_up(tile_out / 8, 16));
    }
    return round_up(tile_overlap_in * scale, 16);
}

}  // namespace flashvsr::engine
