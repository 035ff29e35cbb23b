// Engine-level CUDA tests (need a GPU; label `gpu`): CUDA against the CPU end to end, Engine::to to host RAM
// and back, device memory after unloading, parking on the device. scripts/gpu_check.sh runs these and
// measures the same things at full size.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>

#include <cmath>
#include <filesystem>

#include "models/test_weights.h"

namespace at::cuda {
void clearCublasWorkspaces();  // ATen/cuda/CUDAContextLight.h (which pulls in every CUDA library header)
}

namespace fs = std::filesystem;

namespace {

class EngineCuda : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new fs::path(fs::temp_directory_path() /
                            ("flashvsr_engine_cuda_" + std::to_string(::getpid())) / "FlashVSR-v1.1");
        flashvsr::models::TestWeightsOptions o;
        o.size = "tiny";
        o.seed = 9;
        o.prompt_tokens = 64;
        flashvsr::models::make_test_weights(dir_->string(), o);
    }
    static void TearDownTestSuite() {
        fs::remove_all(dir_->parent_path());
        delete dir_;
    }
    void SetUp() override { ASSERT_TRUE(at::globalContext().hasCUDA()) << "this binary needs a CUDA device"; }
    static std::shared_ptr<flashvsr::Engine> load(const std::string& device, const std::string& dtype,
                                                  const std::string& mode = "tiny") {
        flashvsr::EngineOptions eo;
        eo.model_dir = dir_->string();
        eo.mode = mode;
        eo.device = device;
        eo.dtype = dtype;
        return flashvsr::Engine::load(eo);
    }
    static at::Tensor video() {
        at::manual_seed(3);
        return at::rand({9, 32, 48, 3});
    }
    static flashvsr::UpscaleOptions scale2() {
        flashvsr::UpscaleOptions u;
        u.scale = 2;
        return u;
    }
    /// Allocated bytes of live tensors on device 0, after dropping the cuBLAS workspaces and cached blocks.
    static int64_t allocated() {
        c10::cuda::device_synchronize();
        at::cuda::clearCublasWorkspaces();
        c10::cuda::CUDACachingAllocator::emptyCache();
        const auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
        return s.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].current;
    }
    static fs::path* dir_;
};
fs::path* EngineCuda::dir_ = nullptr;

double psnr(const at::Tensor& a, const at::Tensor& b) {
    const double mse = (a.to(at::kDouble) - b.to(at::kDouble)).pow(2).mean().item<double>();
    return 10.0 * std::log10(1.0 / std::max(mse, 1e-30));
}

}  // namespace

TEST_F(EngineCuda, MatchesTheCpuEndToEnd) {
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
    for (const std::string mode : {"tiny", "full"}) {
        SCOPED_TRACE(mode);
        const at::Tensor ref = load("cpu", "fp32", mode)->upscale(video(), scale2());
        const at::Tensor fp32 = load("cuda", "fp32", mode)->upscale(video(), scale2());
        EXPECT_EQ(fp32.device().type(), at::kCPU);
        EXPECT_EQ(fp32.sizes(), ref.sizes());
        EXPECT_LE((fp32 - ref).abs().max().item<double>(), 1e-4);
        const at::Tensor bf16 = load("cuda", "bf16", mode)->upscale(video(), scale2());
        EXPECT_GE(psnr(bf16, ref), 38.0);
        const at::Tensor fp16 = load("cuda", "fp16", mode)->upscale(video(), scale2());
        std::printf("[ cuda     ] %s: fp32 max %.3g, bf16 %.2f dB, fp16 %.2f dB vs CPU fp32\n", mode.c_str(),
                    (fp32 - ref).abs().max().item<double>(), psnr(bf16, ref), psnr(fp16, ref));
    }
}

TEST_F(EngineCuda, ToHostAndBackFreesTheDeviceAndKeepsTheOutput) {
    const int64_t base = allocated();
    auto e = load("cuda", "auto");
    const at::Tensor before = e->upscale(video(), scale2());
    const int64_t loaded = allocated();
    EXPECT_GE(loaded - base, e->info().weight_bytes / 2);
    e->to("cpu");
    EXPECT_EQ(e->info().device, "cpu");
    EXPECT_EQ(allocated(), base);                              // every weight and constant left the device
    const at::Tensor on_host = e->upscale(video(), scale2());  // the engine computes on the CPU meanwhile
    EXPECT_EQ(on_host.sizes(), before.sizes());
    e->to("cuda");
    EXPECT_EQ(e->info().device, "cuda:0");
    EXPECT_EQ(allocated(), loaded);
    EXPECT_LE((e->upscale(video(), scale2()) - before).abs().max().item<double>(), 1e-6);
}

TEST_F(EngineCuda, UnloadingReturnsEveryDeviceByte) {
    const int64_t base = allocated();
    for (int i = 0; i < 3; ++i) {
        {
            auto e = load("cuda", "auto", i == 1 ? "full" : "tiny");
            (void)e->upscale(video(), scale2());
        }
        EXPECT_EQ(allocated(), base) << "cycle " << i;
    }
}

TEST_F(EngineCuda, ParkingOnTheDeviceIsExact) {
    auto e = load("cuda", "auto");
    at::manual_seed(4);
    const at::Tensor v = at::rand({9, 40, 72, 3});  // x2: padded 128x256, 64-pixel tiles: three 128x128 tiles
    flashvsr::UpscaleOptions u = scale2();
    u.tile_size = 64;
    u.park_tile_state = "off";
    const at::Tensor off = e->upscale(v, u);
    u.park_tile_state = "on";
    EXPECT_TRUE(at::equal(e->upscale(v, u), off));
}
