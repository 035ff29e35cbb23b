// blend_accumulate CPU twin: against a slow reference loop, partition of unity over a tile grid,
// reduced-precision tiles, the Meta kernel and bad input.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "kernels/blend_accumulate/blend_accumulate.h"

namespace {

using flashvsr::kernels::blend_accumulate;

// Independent reference: the weight written out per pixel as the documented formula.
float ref_weight(int64_t i, int64_t n, int64_t r0, int64_t r1) {
    double w = 1.0;
    if (r0 > 0 && i < r0) {
        w *= (i + 0.5) / r0;
    }
    if (r1 > 0 && i >= n - r1) {
        w *= (n - i - 0.5) / r1;
    }
    return static_cast<float>(w);
}

at::Tensor reference(at::Tensor canvas, const at::Tensor& tile, int64_t top, int64_t left,
                     std::array<int64_t, 4> r) {
    canvas = canvas.clone();
    auto c = canvas.accessor<float, 4>();
    const at::Tensor t32 = tile.to(at::kFloat);
    auto t = t32.accessor<float, 4>();
    for (int64_t f = 0; f < tile.size(0); ++f) {
        for (int64_t y = 0; y < tile.size(1); ++y) {
            for (int64_t x = 0; x < tile.size(2); ++x) {
                for (int64_t ch = 0; ch < tile.size(3); ++ch) {
                    c[f][top + y][left + x][ch] += ref_weight(y, tile.size(1), r[0], r[1]) *
                                                   ref_weight(x, tile.size(2), r[2], r[3]) * t[f][y][x][ch];
                }
            }
        }
    }
    return canvas;
}

// Tile origins along one axis of length n with tile size t and overlap o (last tile flush with the edge).
std::vector<int64_t> starts(int64_t n, int64_t t, int64_t o) {
    std::vector<int64_t> s{0};
    while (s.back() + t < n) {
        s.push_back(std::min(s.back() + t - o, n - t));
    }
    return s;
}

}  // namespace

TEST(BlendAccumulate, MatchesReferenceLoop) {
    at::manual_seed(0);
    const at::Tensor canvas = at::rand({2, 37, 53, 3});
    const at::Tensor tile = at::rand({2, 20, 30, 3});
    for (const auto& ramps : {std::array<int64_t, 4>{0, 0, 0, 0}, std::array<int64_t, 4>{5, 0, 7, 3},
                              std::array<int64_t, 4>{10, 10, 15, 15}, std::array<int64_t, 4>{1, 19, 0, 30}}) {
        at::Tensor out = canvas.clone();
        blend_accumulate(out, tile, 11, 17, ramps);
        const at::Tensor expected = reference(canvas, tile, 11, 17, ramps);
        EXPECT_LE((out - expected).abs().max().item<float>(), 1e-6f) << ramps[0] << "," << ramps[2];
    }
}

TEST(BlendAccumulate, OnlyTheTileRegionChanges) {
    const at::Tensor canvas = at::zeros({1, 16, 16, 3});
    at::Tensor out = canvas.clone();
    blend_accumulate(out, at::ones({1, 4, 5, 3}), 3, 6, {0, 0, 0, 0});
    EXPECT_EQ(out.sum().item<float>(), 4 * 5 * 3);
    EXPECT_EQ(out.slice(1, 3, 7).slice(2, 6, 11).min().item<float>(), 1.0f);
}

TEST(BlendAccumulate, TileGridIsAPartitionOfUnity) {
    // 3x4 grid of 32x40 tiles over a 80x130 frame; overlaps differ per boundary (the last tile is flush).
    const int64_t H = 80, W = 130, th = 32, tw = 40, o = 8;
    const auto ys = starts(H, th, o);
    const auto xs = starts(W, tw, o);
    ASSERT_GE(ys.size(), 3u);
    ASSERT_GE(xs.size(), 4u);
    at::Tensor canvas = at::zeros({2, H, W, 3});
    const at::Tensor ones = at::ones({2, th, tw, 3});
    for (size_t i = 0; i < ys.size(); ++i) {
        for (size_t j = 0; j < xs.size(); ++j) {
            const int64_t rt = i > 0 ? ys[i - 1] + th - ys[i] : 0;
            const int64_t rb = i + 1 < ys.size() ? ys[i] + th - ys[i + 1] : 0;
            const int64_t rl = j > 0 ? xs[j - 1] + tw - xs[j] : 0;
            const int64_t rr = j + 1 < xs.size() ? xs[j] + tw - xs[j + 1] : 0;
            blend_accumulate(canvas, ones, ys[i], xs[j], {rt, rb, rl, rr});
        }
    }
    EXPECT_LE((canvas - 1).abs().max().item<float>(), 1e-6f);
    // Borders carry weight exactly 1 (no darkened edges).
    EXPECT_EQ(canvas.select(1, 0).min().item<float>(), 1.0f);
    EXPECT_EQ(canvas.select(2, W - 1).min().item<float>(), 1.0f);
}

TEST(BlendAccumulate, ReducedPrecisionTiles) {
    at::manual_seed(1);
    const at::Tensor tile = at::rand({1, 12, 12, 3});
    for (const auto dtype : {at::kHalf, at::kBFloat16}) {
        at::Tensor out = at::zeros({1, 12, 12, 3});
        const at::Tensor t = tile.to(dtype);
        blend_accumulate(out, t, 0, 0, {4, 4, 4, 4});
        const at::Tensor expected =
            reference(at::zeros({1, 12, 12, 3}), t.to(at::kFloat), 0, 0, {4, 4, 4, 4});
        EXPECT_LE((out - expected).abs().max().item<float>(), 1e-6f) << dtype;
    }
}

TEST(BlendAccumulate, MetaKernelChecksShapesOnly) {
    at::Tensor canvas = at::empty({2, 64, 64, 3}, at::TensorOptions().device(at::kMeta));
    const at::Tensor tile = at::empty({2, 32, 32, 3}, at::TensorOptions().device(at::kMeta));
    EXPECT_NO_THROW(blend_accumulate(canvas, tile, 32, 32, {8, 0, 8, 0}));
    EXPECT_THROW(blend_accumulate(canvas, tile, 40, 0, {0, 0, 0, 0}), c10::Error);
}

TEST(BlendAccumulate, BadInputNamesTheProblem) {
    at::Tensor canvas = at::zeros({1, 16, 16, 3});
    // blend_accumulate(canvas, tile, top, left, ramps) must throw an error that contains `needle`
    auto expect_error = [](at::Tensor target, const at::Tensor& tile, int64_t top, int64_t left,
                           std::array<int64_t, 4> ramps, const std::string& needle) {
        try {
            blend_accumulate(target, tile, top, left, ramps);
            ADD_FAILURE() << "no error for " << needle;
        } catch (const c10::Error& e) {
            EXPECT_NE(std::string(e.what_without_backtrace()).find(needle), std::string::npos)
                << e.what_without_backtrace();
        }
    };
    const at::Tensor tile = at::ones({1, 8, 8, 3});
    expect_error(canvas, tile, 10, 0, {0, 0, 0, 0}, "does not fit inside canvas");
    expect_error(canvas, tile, 0, 0, {5, 4, 0, 0}, "do not fit a 8x8 tile");
    expect_error(canvas, tile, 0, 0, {-1, 0, 0, 0}, "ramps must be >= 0");
    expect_error(canvas, at::ones({1, 8, 8, 3}, at::kDouble), 0, 0, {0, 0, 0, 0},
                 "tile must be float32, float16 or bfloat16");
    expect_error(at::zeros({1, 16, 16, 3}, at::kHalf), tile, 0, 0, {0, 0, 0, 0}, "canvas must be float32");
    expect_error(canvas, at::ones({2, 8, 8, 3}), 0, 0, {0, 0, 0, 0}, "frames/channels differ");
}
