// Opt-in int8 DiT (DiT::quantize_int8, EngineOptions::dtype = "int8"): close to float32 but not equal,
// half the weight bytes of bf16, and the engine contract (float32 [0,1], N frames in -> N out) kept.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>

#include "models/common/random_weights.h"
#include "models/dit.h"
#include "models/test_weights.h"

using namespace flashvsr::models;
namespace fs = std::filesystem;

namespace {

double rel_rms(const at::Tensor& got, const at::Tensor& ref) {
    const auto r = ref.to(at::kDouble);
    return (got.to(at::kDouble) - r).pow(2).mean().sqrt().item<double>() /
           r.pow(2).mean().sqrt().item<double>();
}

double psnr(const at::Tensor& a, const at::Tensor& b) {
    const double mse = (a.to(at::kDouble) - b.to(at::kDouble)).pow(2).mean().item<double>();
    return 10.0 * std::log10(1.0 / mse);
}

}  // namespace

TEST(DitInt8, ChunksCloseToFloat32AndHalfTheBytesOfBf16) {
    DiTConfig cfg = DiTConfig::preset("small");  // 4 heads of 128
    const TensorMap w = random_weights(DiTConfig::manifest(cfg), 7, at::kFloat);
    DiT ref(w, "dit.safetensors", LoadOptions{at::kFloat});
    DiT q8(w, "dit.safetensors", LoadOptions{at::kBFloat16});
    const DiT bf16(w, "dit.safetensors", LoadOptions{at::kBFloat16});
    q8.quantize_int8(at::kFloat);
    EXPECT_TRUE(q8.quantized());
    EXPECT_EQ(q8.dtype(), at::kFloat);
    EXPECT_THROW(q8.quantize_int8(at::kFloat), c10::Error);
    const double ratio = static_cast<double>(q8.weight_bytes()) / static_cast<double>(bf16.weight_bytes());
    EXPECT_LE(ratio, 0.55);
    EXPECT_GE(ratio, 0.45);

    at::manual_seed(1);
    const auto prompt = at::randn({1, 16, cfg.text_dim});
    const DiTConstants c_ref = ref.prepare(prompt), c_q8 = q8.prepare(prompt);
    DiTState s_ref, s_q8;
    AttentionOptions ao;
    for (int64_t k = 0; k < 3; ++k) {
        const int64_t f = k == 0 ? 6 : 2;
        const auto lat = at::randn({1, 16, f, 16, 32});  // 128x256 output: 8x16 tokens, 1x2 windows
        const auto lq = 0.5 * at::randn({1, f * 8 * 16, cfg.dim});
        const auto v_ref = ref.forward_chunk(lat, lq, c_ref, s_ref, ao);
        const auto v_q8 = q8.forward_chunk(lat, lq, c_q8, s_q8, ao);
        ASSERT_EQ(v_q8.scalar_type(), at::kFloat);
        const double e = rel_rms(v_q8, v_ref);
        EXPECT_LE(e, 0.05) << "chunk " << k;  // int8 error stays small through 4 blocks and the K/V cache
        EXPECT_GE(e, 1e-5) << "chunk " << k;  // and the int8 path really ran
    }
}

TEST(DitInt8, EngineContract) {
    const fs::path dir =
        fs::temp_directory_path() / ("flashvsr_int8_" + std::to_string(::getpid())) / "FlashVSR-v1.1";
    TestWeightsOptions o;
    o.size = "tiny";
    o.seed = 5;
    make_test_weights(dir.string(), o);
    flashvsr::EngineOptions eo;
    eo.model_dir = dir.string();
    eo.device = "cpu";
    const auto fp32 = flashvsr::Engine::load(eo);
    eo.dtype = "int8";
    const auto int8 = flashvsr::Engine::load(eo);
    EXPECT_EQ(int8->info().dtype, "int8");
    EXPECT_LT(int8->info().weight_bytes, fp32->info().weight_bytes);
    at::manual_seed(2);
    const auto frames = at::rand({9, 32, 48, 3});
    flashvsr::UpscaleOptions uo;
    uo.scale = 2;
    const auto a = fp32->upscale(frames, uo), b = int8->upscale(frames, uo);
    ASSERT_EQ(b.sizes(), at::IntArrayRef({9, 64, 96, 3}));
    EXPECT_EQ(b.scalar_type(), at::kFloat);
    EXPECT_GE(b.min().item<float>(), 0.0f);
    EXPECT_LE(b.max().item<float>(), 1.0f);
    const double p = psnr(b, a);
    std::printf("int8 vs fp32 engine output (tiny random weights): PSNR %.2f dB\n", p);
    EXPECT_GE(p, 30.0);
    EXPECT_FALSE(at::equal(a, b));
    fs::remove_all(dir.parent_path());
}
