// The AVX2 register tiles of the CPU attention (kernels/block_sparse_attention/attention_tiles.h) against
// double-precision products: every tile height (1-6 and several tiles), key ranges across the 256-key passes,
// offsets into the panels, head sizes 16 and 128, padded row strides.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "csrc/core/cpu_isa.h"
#include "kernels/block_sparse_attention/attention_tiles.h"

namespace tiles = flashvsr::kernels::attention_tiles;

namespace {

/// K, V [keys, heads*hd] as the op holds them, and the panels of head h.
struct Packed {
    at::Tensor k, v, kp, vp;
};

Packed pack(int64_t keys, int64_t heads, int64_t hd, int64_t h) {
    Packed p;
    p.k = at::randn({keys, heads * hd});
    p.v = at::randn({keys, heads * hd});
    p.kp = at::full({hd * keys}, std::nan(""));
    p.vp = at::full({hd * keys}, std::nan(""));
    tiles::pack_keys(p.k.const_data_ptr<float>(), keys, heads * hd, h, hd, p.kp.data_ptr<float>());
    tiles::pack_values(p.v.const_data_ptr<float>(), keys, heads * hd, h, hd, p.vp.data_ptr<float>());
    return p;
}

}  // namespace

TEST(AttentionTiles, SupportedWhereTheCpuRunsAvx2AndTheHeadSizeIsAMultipleOf16) {
    const bool avx2 = flashvsr::core::cpu_supports(flashvsr::core::CpuIsa::kAvx2);
    EXPECT_EQ(tiles::supported(128), avx2);
    EXPECT_EQ(tiles::supported(16), avx2);
    EXPECT_FALSE(tiles::supported(8));
    EXPECT_FALSE(tiles::supported(24));
    EXPECT_FALSE(tiles::supported(0));
}

TEST(AttentionTiles, PanelsHoldKTransposedAndVInSixteenColumnStrips) {
    at::manual_seed(1);
    const int64_t keys = 48, heads = 3, hd = 32, h = 1;
    const Packed p = pack(keys, heads, hd, h);
    const at::Tensor kh = p.k.narrow(1, h * hd, hd), vh = p.v.narrow(1, h * hd, hd);  // [keys, hd]
    // kp[p][d][i] = K[16p + i, d]; vp[t][j][i] = V[j, 16t + i]: exact copies.
    EXPECT_TRUE(at::equal(p.kp.view({keys / 16, hd, 16}), kh.reshape({keys / 16, 16, hd}).transpose(1, 2)));
    EXPECT_TRUE(at::equal(p.vp.view({hd / 16, keys, 16}), vh.reshape({keys, hd / 16, 16}).transpose(0, 1)));
}

TEST(AttentionTiles, ScoresAndAccumulateMatchDoubleProducts) {
    if (!tiles::supported(16)) {
        GTEST_SKIP() << "this CPU has no AVX2 + FMA: the op uses MKL's sgemm instead (tested elsewhere)";
    }
    at::manual_seed(2);
    const int64_t heads = 2, h = 1, keys = 640;  // 40 panels: ranges across the 256-key passes
    for (const int64_t hd : {16, 128}) {
        const Packed p = pack(keys, heads, hd, h);
        const at::Tensor kh = p.k.narrow(1, h * hd, hd).to(at::kDouble),
                         vh = p.v.narrow(1, h * hd, hd).to(at::kDouble);
        for (const int64_t rows : {1, 2, 3, 4, 5, 6, 7, 13, 128, 256}) {
            for (const auto& [key0, n] :
                 {std::pair<int64_t, int64_t>{0, 16}, {32, 256}, {16, 608}, {128, 512}}) {
                const std::string where = "hd " + std::to_string(hd) + " rows " + std::to_string(rows) +
                                          " keys " + std::to_string(key0) + "+" + std::to_string(n);
                // q: rows of a wider matrix (row stride 3*hd); s and p: padded rows.
                const at::Tensor qw = at::randn({rows, 3 * hd});
                const at::Tensor q = qw.narrow(1, hd, hd);
                const int64_t lds = n + 16;
                at::Tensor s = at::full({rows, lds}, 7.0f);
                const float scale = 0.125f;
                tiles::scores(q.const_data_ptr<float>(), 3 * hd, rows, p.kp.const_data_ptr<float>(), key0, n,
                              hd, scale, s.data_ptr<float>(), lds);
                const at::Tensor want = at::matmul(q.to(at::kDouble), kh.narrow(0, key0, n).t()) * scale;
                const at::Tensor got = s.narrow(1, 0, n).to(at::kDouble);
                // float32 sums of hd products of N(0,1) values: a few ulp of the sum of magnitudes.
                const double bound =
                    1e-5 * (at::matmul(q.abs().to(at::kDouble), kh.narrow(0, key0, n).abs().t()) * scale)
                               .max()
                               .item<double>();
                EXPECT_LE((got - want).abs().max().item<double>(), bound) << where;
                EXPECT_TRUE(s.narrow(1, n, 16).eq(7.0f).all().item<bool>()) << where;  // padding untouched

                const at::Tensor pm = at::rand({rows, lds});
                const at::Tensor o0 = at::randn({rows, 2 * hd});
                at::Tensor o = o0.clone();
                tiles::accumulate(pm.const_data_ptr<float>(), lds, rows, p.vp.const_data_ptr<float>(), keys,
                                  key0, n, hd, o.data_ptr<float>() + hd, 2 * hd);
                const at::Tensor pd = pm.narrow(1, 0, n).to(at::kDouble);
                const at::Tensor want_o =
                    o0.narrow(1, hd, hd).to(at::kDouble) + at::matmul(pd, vh.narrow(0, key0, n));
                const double bound_o = 1e-5 * (at::matmul(pd, vh.narrow(0, key0, n).abs()) +
                                               o0.narrow(1, hd, hd).abs().to(at::kDouble))
                                                  .max()
                                                  .item<double>();
                EXPECT_LE((o.narrow(1, hd, hd).to(at::kDouble) - want_o).abs().max().item<double>(), bound_o)
                    << where;
                EXPECT_TRUE(at::equal(o.narrow(1, 0, hd), o0.narrow(1, 0, hd)))
                    << where;  // other head untouched
            }
        }
    }
}
