#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "csrc/core/md5.h"
#include "error_test_util.h"
#include "models/common/params.h"

using namespace flashvsr::models;

TEST(Md5, KnownVectors) {
    EXPECT_EQ(flashvsr::md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
    EXPECT_EQ(flashvsr::md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
    EXPECT_EQ(flashvsr::md5_hex("The quick brown fox jumps over the lazy dog"),
              "9e107d9d372bb6826bd81d3542a419d6");
    std::string million(1000000, 'a');
    EXPECT_EQ(flashvsr::md5_hex(million), "7707d6ae4e027c70eea2a935c2296f21");
}

TEST(KeyHash, DiffSynthFormula) {
    // "b:3" and "a:1_2" plus the bare keys, sorted: "a", "a:1_2", "b", "b:3".
    const std::vector<ParamSpec> specs{{"b", {3}}, {"a", {1, 2}}};
    EXPECT_EQ(key_hash(specs), flashvsr::md5_hex("a,a:1_2,b,b:3"));
}

TEST(ParamTable, StrictLoadNamesFileAndKey) {
    at::Tensor w, b;
    ParamTable t;
    t.add("lin.weight", &w, {4, 3});
    t.add("lin.bias", &b, {4});
    EXPECT_EQ(t.numel(), 16);
    TensorMap ok{{"lin.weight", at::ones({4, 3})}, {"lin.bias", at::zeros({4})}};
    t.load(ok, "f.safetensors", LoadOptions{at::kBFloat16});
    EXPECT_EQ(w.scalar_type(), at::kBFloat16);
    EXPECT_NE(w.data_ptr(), ok["lin.weight"].data_ptr());  // own copy
    auto msg = [&](const TensorMap& m) {
        return flashvsr::testing::model_error_of([&] { t.load(m, "f.safetensors", LoadOptions{}); });
    };
    EXPECT_EQ(msg({{"lin.weight", at::ones({4, 3})}}),
              "f.safetensors: missing key 'lin.bias' (expected shape [4])");
    EXPECT_EQ(msg({{"lin.weight", at::ones({4, 2})}, {"lin.bias", at::zeros({4})}}),
              "f.safetensors: key 'lin.weight' has shape [4, 2], expected [4, 3]");
    EXPECT_EQ(
        msg({{"lin.weight", at::ones({4, 3})}, {"lin.bias", at::zeros({4})}, {"extra", at::zeros({1})}}),
        "f.safetensors: unexpected key 'extra' with shape [1]");
}

#include "models/common/random_weights.h"

TEST(RandomWeights, DeterministicAndScaled) {
    const std::vector<ParamSpec> specs{{"conv.weight", {64, 32, 3, 3}},
                                       {"conv.bias", {64}},
                                       {"norm1.gamma", {64, 1, 1, 1}},
                                       {"blocks.0.modulation", {1, 6, 256}}};
    const TensorMap a = random_weights(specs, 5);
    const TensorMap b = random_weights(specs, 5, at::kBFloat16);
    ASSERT_EQ(a.size(), 4u);
    EXPECT_EQ(a.at("conv.weight").scalar_type(), at::kFloat);
    EXPECT_EQ(b.at("conv.weight").scalar_type(), at::kBFloat16);
    EXPECT_TRUE(at::allclose(a.at("conv.weight"), b.at("conv.weight").to(at::kFloat), 1e-2, 1e-3));
    EXPECT_FALSE(at::equal(a.at("conv.weight"), random_weights(specs, 6).at("conv.weight")));
    EXPECT_NEAR(a.at("conv.weight").std().item<double>(), 1.0 / std::sqrt(32.0 * 9.0), 0.01);
    EXPECT_NEAR(a.at("norm1.gamma").mean().item<double>(), 1.0, 0.05);
    EXPECT_NEAR(a.at("blocks.0.modulation").std().item<double>(), 1.0 / 16.0, 0.01);
    EXPECT_LT(a.at("conv.bias").abs().max().item<double>(), 0.5);
}

TEST(ParamTable, DerivedTensorsAreHeldButAreNoCheckpointKeys) {
    // A derived tensor (e.g. a Winograd or phase form made at load) is moved and counted with the
    // parameters, but loading neither asks for nor accepts a key for it.
    at::Tensor w, derived;
    ParamTable t;
    t.add("conv.weight", &w, {2, 3});
    t.add_derived(&derived);
    EXPECT_EQ(t.specs().size(), 1u);
    EXPECT_EQ(t.bytes(), 0);  // nothing defined yet
    t.load(TensorMap{{"conv.weight", at::ones({2, 3})}}, "f.safetensors", LoadOptions{});
    EXPECT_FALSE(derived.defined());
    EXPECT_EQ(t.bytes(), 6 * 4);
    derived = at::zeros({5}, at::kDouble);
    EXPECT_EQ(t.bytes(), 6 * 4 + 5 * 8);
    t.move_to(at::kCPU);
    EXPECT_TRUE(derived.defined());
    EXPECT_EQ(flashvsr::testing::model_error_of([&] {
                  t.load(TensorMap{{"conv.weight", at::ones({2, 3})}, {"derived", at::ones({5})}},
                         "f.safetensors", LoadOptions{});
              }).find("derived") != std::string::npos,
              true);
}
