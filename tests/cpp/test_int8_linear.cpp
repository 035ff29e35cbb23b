// int8_linear (kernels/int8_linear): the fused CPU kernel against the unfused int8 arithmetic written here
// with plain ATen ops (the DiT's int8 path before the op existed), on DiT sizes, odd sizes, zero / huge /
// tiny rows and bfloat16 input; the scalar and AVX-512 row loops against each other; Meta; bad input.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "csrc/core/cpu_isa.h"
#include "kernels/int8_linear/int8_linear.h"
#include "kernels/int8_linear/int8_linear_rows.h"
#include "kernels/int8_linear/int_mm.h"

namespace {

using flashvsr::kernels::int8_linear;
namespace rows = flashvsr::kernels::int8_rows;

// The unfused path: per-token absmax, round, _int_mm, then the two scales and the bias, one ATen op each.
at::Tensor unfused(const at::Tensor& x, const at::Tensor& qweight, const at::Tensor& wscale,
                   const std::optional<at::Tensor>& bias) {
    const int64_t k = x.size(-1), n = qweight.size(1);
    const auto x2 = x.reshape({-1, k}).to(at::kFloat);
    const auto amax = x2.abs().amax(1, true).clamp_min(1e-20);
    const auto xq = (x2 * (127.0 / amax)).round_().to(at::kChar);
    auto y = at::_int_mm(xq, qweight).to(at::kFloat);
    y.mul_(amax * (1.0 / 127.0)).mul_(wscale);
    if (bias) {
        y.add_(*bias);
    }
    auto sizes = x.sizes().vec();
    sizes.back() = n;
    return y.view(sizes).to(x.scalar_type());
}

// A per-output-channel int8 weight as DiT::quantize_int8 makes it: qweight [K, N], wscale [N].
std::pair<at::Tensor, at::Tensor> quantized_weight(int64_t k, int64_t n) {
    const auto w = at::randn({n, k}) * 0.05;
    const auto scale = (w.abs().amax(1, true) / 127.0).clamp_min(1e-20);
    return {(w / scale).round_().clamp_(-127, 127).to(at::kChar).t().contiguous(),
            scale.view({-1}).contiguous()};
}

double max_rel(const at::Tensor& got, const at::Tensor& ref) {
    const auto r = ref.to(at::kDouble);
    const double scale = std::max(r.abs().max().item<double>(), 1e-300);
    return (got.to(at::kDouble) - r).abs().max().item<double>() / scale;
}

}  // namespace

TEST(Int8Linear, FusedEqualsUnfusedOnDitAndOddShapes) {
    at::manual_seed(0);
    // (M, K, N): DiT sizes (tokens of a steady 256x384 chunk = 768, first chunk 2304; dim 1536, FFN 8960),
    // M not a multiple of 8 or 16, M <= 16, K and N not multiples of 8 or 16.
    const std::vector<std::tuple<int64_t, int64_t, int64_t>> shapes = {
        {773, 1536, 1536}, {37, 1536, 8960}, {29, 8960, 1536}, {1, 1536, 1536},
        {17, 13, 7},       {5, 40, 24},      {3, 1, 1}};
    for (const auto& [m, k, n] : shapes) {
        const auto [qw, ws] = quantized_weight(k, n);
        const auto bias = at::randn({n});
        auto x = at::randn({m, k});
        if (m > 4) {
            x[0].zero_();      // a zero row: scale clamped to 1e-20, output = bias
            x[1].mul_(1e30);   // huge
            x[2].mul_(1e-25);  // tiny (under the 1e-20 clamp: quantizes to 0)
            x[3].mul_(3e-18);  // small but above the clamp
        }
        for (const bool with_bias : {true, false}) {
            const auto b = with_bias ? std::optional<at::Tensor>(bias) : std::nullopt;
            const auto got = int8_linear(x, qw, ws, b);
            const auto ref = unfused(x, qw, ws, b);
            ASSERT_EQ(got.sizes(), ref.sizes());
            ASSERT_EQ(got.scalar_type(), at::kFloat);
            const std::string where = "M=" + std::to_string(m) + " K=" + std::to_string(k) +
                                      " N=" + std::to_string(n) + (with_bias ? " bias" : " no bias");
            EXPECT_LE(max_rel(got, ref), 1e-6) << where;
            EXPECT_TRUE(at::equal(got, ref)) << where << ": the same float operations in the same order";
        }
    }
}

TEST(Int8Linear, LeadingDimensionsZeroRowsAndBfloat16) {
    at::manual_seed(1);
    const auto [qw, ws] = quantized_weight(64, 48);
    const auto bias = at::randn({48});
    const auto x = at::randn({1, 2, 35, 64});  // [..., K]: 70 tokens
    const auto y = int8_linear(x, qw, ws, bias);
    ASSERT_EQ(y.sizes(), at::IntArrayRef({1, 2, 35, 48}));
    EXPECT_TRUE(at::equal(y, unfused(x, qw, ws, bias)));
    // Non-contiguous input.
    const auto xt = at::randn({64, 35}).t();
    EXPECT_TRUE(at::equal(int8_linear(xt, qw, ws, bias), unfused(xt, qw, ws, bias)));
    // No tokens at all.
    const auto empty = int8_linear(at::empty({1, 0, 64}), qw, ws, bias);
    EXPECT_EQ(empty.sizes(), at::IntArrayRef({1, 0, 48}));
    // bfloat16 activations and bias (the CUDA compute dtype): float32 inside, bfloat16 out.
    const auto xb = x.to(at::kBFloat16);
    const auto bb = bias.to(at::kBFloat16);
    const auto yb = int8_linear(xb, qw, ws, bb);
    EXPECT_EQ(yb.scalar_type(), at::kBFloat16);
    EXPECT_TRUE(at::equal(yb, unfused(xb, qw, ws, bb)));
}

TEST(Int8Linear, ReferenceKernelEqualsUnfused) {
    at::manual_seed(2);
    const auto [qw, ws] = quantized_weight(96, 40);
    const auto bias = at::randn({40});
    const auto x = at::randn({21, 96});
    EXPECT_TRUE(
        at::equal(flashvsr::kernels::int8_linear_reference(x, qw, ws, bias), unfused(x, qw, ws, bias)));
    EXPECT_TRUE(at::equal(flashvsr::kernels::int8_linear_reference(x, qw, ws, std::nullopt),
                          unfused(x, qw, ws, std::nullopt)));
}

TEST(Int8Linear, FloatSliceProductIsExactlyIntMm) {
    // K across the 1024 slice boundary; one row and one column at -128 make a slice's sum exactly 2^24.
    at::manual_seed(5);
    for (const int64_t k : {8, 1024, 1032, 2504}) {
        auto a = at::randint(-128, 128, {37, k}, at::kChar);
        auto b = at::randint(-128, 128, {k, 29}, at::kChar);
        a[3].fill_(-128);
        b.select(1, 5).fill_(-128);
        const at::Tensor ref = at::_int_mm(a, b);
        const at::Tensor got =
            flashvsr::kernels::int_mm_cpu(a, b, flashvsr::kernels::IntMmPath::kFloatSlices);
        EXPECT_TRUE(at::equal(got, ref)) << "K=" << k;
        EXPECT_EQ(got[3][5].item<int32_t>(), 128 * 128 * static_cast<int32_t>(k));
        EXPECT_TRUE(at::equal(flashvsr::kernels::int_mm_cpu(a, b), ref)) << "K=" << k;
    }
    EXPECT_THROW(flashvsr::kernels::int_mm_cpu(at::zeros({2, 3}, at::kChar), at::zeros({4, 2}, at::kChar)),
                 c10::Error);
}

TEST(Int8Linear, ScalarAndVectorRowLoopsAgreeBitForBit) {
    at::manual_seed(3);
    // Lengths around the 16-lane width (tails of every size), rows of every magnitude, exact .5 ties.
    for (const int64_t k : {1, 7, 15, 16, 17, 31, 33, 1536}) {
        const int64_t m = 9;
        auto x = at::randn({m, k});
        x[0].zero_();
        x[1].mul_(1e30);
        x[2].mul_(1e-25);
        if (k >= 3) {
            x[3].copy_(at::arange(k, at::kFloat).sub(k / 2).mul(0.5));  // many values land on .5 ties
        }
        const std::vector<rows::Isa> isas = flashvsr::core::supported_cpu_isas();  // ends with kScalar
        const auto quantize = [&](rows::Isa isa) {
            std::pair<at::Tensor, at::Tensor> r{at::empty({m, k}, at::kChar), at::empty({m})};
            rows::quantize_rows(x.const_data_ptr<float>(), k, 0, m, r.first.data_ptr<int8_t>(),
                                r.second.data_ptr<float>(), isa);
            return r;
        };
        const auto [q0, t0] = quantize(rows::Isa::kScalar);
        for (const rows::Isa isa : isas) {
            const auto [q1, t1] = quantize(isa);
            EXPECT_TRUE(at::equal(q0, q1)) << "K=" << k << " isa " << static_cast<int>(isa);
            EXPECT_TRUE(at::equal(t0, t1)) << "K=" << k << " isa " << static_cast<int>(isa);
        }
        EXPECT_LE(q0.abs().max().item<int>(), 127);
        EXPECT_EQ(q0[1].abs().max().item<int>(), 127) << "the row's absmax maps to 127";
        EXPECT_EQ(q0[2].abs().max().item<int>(), 0) << "a row under the 1e-20 clamp is all zeros";

        const int64_t n = k;  // epilogue over rows of N = k products
        const auto acc = at::randint(-2000000, 2000000, {m, n}, at::kInt);
        const auto ws = at::rand({n});
        const auto bias = at::randn({n});
        const auto dequantize = [&](rows::Isa isa) {
            at::Tensor out = acc.clone();
            rows::dequantize_rows(out.data_ptr<int32_t>(), n, 0, m, t0.const_data_ptr<float>(),
                                  ws.const_data_ptr<float>(), bias.const_data_ptr<float>(), isa);
            return out;
        };
        const at::Tensor out0 = dequantize(rows::Isa::kScalar);
        for (const rows::Isa isa : isas) {
            EXPECT_TRUE(at::equal(out0, dequantize(isa))) << "K=" << k << " isa " << static_cast<int>(isa);
        }
        const auto expect = (acc.to(at::kFloat) * t0.view({m, 1}) * ws) + bias;
        EXPECT_TRUE(at::equal(out0.view(at::kFloat), expect)) << "K=" << k;
    }
}

TEST(Int8Linear, MetaGivesTheShape) {
    const auto x = at::empty({2, 19, 1536}, at::device(at::kMeta));
    const auto qw = at::empty({1536, 8960}, at::device(at::kMeta).dtype(at::kChar));
    const auto ws = at::empty({8960}, at::device(at::kMeta));
    const auto y = int8_linear(x, qw, ws, std::nullopt);
    EXPECT_EQ(y.sizes(), at::IntArrayRef({2, 19, 8960}));
    EXPECT_TRUE(y.is_meta());
}

TEST(Int8Linear, BadInputNamesTheParameter) {
    const auto [qw, ws] = quantized_weight(32, 16);
    const auto x = at::randn({4, 32});
    auto expect_error = [](auto&& fn, const std::string& needle) {
        try {
            fn();
            ADD_FAILURE() << "no error, expected one naming " << needle;
        } catch (const c10::Error& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    const auto x31 = at::randn({4, 31});
    expect_error([&] { int8_linear(x31, qw, ws, std::nullopt); }, "qweight must be [K, N] with K = 31");
    expect_error([&] { int8_linear(x, qw.to(at::kFloat), ws, std::nullopt); }, "qweight must be int8");
    expect_error([&] { int8_linear(x, qw.t(), ws, std::nullopt); }, "qweight must be");
    expect_error([&] { int8_linear(x, qw, ws.narrow(0, 0, 8), std::nullopt); },
                 "wscale must be float32 [16]");
    expect_error([&] { int8_linear(x, qw, ws.to(at::kDouble), std::nullopt); }, "wscale must be float32");
    expect_error([&] { int8_linear(x, qw, ws, at::randn({15})); }, "bias must be a float [16]");
    expect_error([&] { int8_linear(x.to(at::kInt), qw, ws, std::nullopt); }, "x must be float32");
    expect_error([&] { int8_linear(at::randn({4, 0}), qw, ws, std::nullopt); }, "K > 0");
}
