// Engine::to on the CPU: the call, its refusals and its bookkeeping (a move between devices needs a GPU:
// tests/cpp/gpu/test_engine_cuda.cpp and scripts/gpu_check.sh).
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <filesystem>
#include <functional>

#include "error_test_util.h"
#include "models/test_weights.h"

namespace fs = std::filesystem;

using flashvsr::testing::input_error_of;

namespace {

class EngineTo : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new fs::path(fs::temp_directory_path() / ("flashvsr_engine_to_" + std::to_string(::getpid())) /
                            "FlashVSR-v1.1");
        flashvsr::models::TestWeightsOptions o;
        o.size = "tiny";
        o.seed = 8;
        o.prompt_tokens = 16;
        flashvsr::models::make_test_weights(dir_->string(), o);
    }
    static void TearDownTestSuite() {
        fs::remove_all(dir_->parent_path());
        delete dir_;
    }
    static std::shared_ptr<flashvsr::Engine> load(const std::string& mode) {
        flashvsr::EngineOptions eo;
        eo.model_dir = dir_->string();
        eo.mode = mode;
        eo.device = "cpu";
        return flashvsr::Engine::load(eo);
    }
    static flashvsr::UpscaleOptions scale2() {
        flashvsr::UpscaleOptions u;
        u.scale = 2;
        return u;
    }
    static fs::path* dir_;
};
fs::path* EngineTo::dir_ = nullptr;

}  // namespace

TEST_F(EngineTo, SameDeviceKeepsTheOutputInEveryMode) {
    at::manual_seed(1);
    const at::Tensor v = at::rand({9, 32, 48, 3});
    for (const std::string mode : {"tiny", "full"}) {
        SCOPED_TRACE(mode);
        const auto e = load(mode);
        const at::Tensor before = e->upscale(v, scale2());
        e->to("cpu");
        if (!at::globalContext().hasCUDA()) {
            e->to("auto");  // auto = cpu here
        }
        EXPECT_EQ(e->info().device, "cpu");
        EXPECT_TRUE(at::equal(e->upscale(v, scale2()), before));
    }
}

TEST_F(EngineTo, RefusesWhileAStreamIsAlive) {
    const auto e = load("tiny");
    {
        flashvsr::Stream s = e->stream(scale2());
        s.push(at::rand({3, 32, 48, 3}));
        flashvsr::Stream moved = std::move(s);  // one stream, whoever holds it
        const std::string what = input_error_of([&] { e->to("cpu"); });
        EXPECT_NE(what.find("Engine::to('cpu'): 1 stream(s) made from this engine are still alive"),
                  std::string::npos)
            << what;
        EXPECT_NE(what.find("finish and destroy them"), std::string::npos) << what;
        moved.finish();
        EXPECT_EQ(moved.pull().size(0), 3);  // the refused move changed nothing
    }
    e->to("cpu");  // the stream is gone
    EXPECT_EQ(e->info().device, "cpu");
}

TEST_F(EngineTo, BadDevicesAreInputErrorsAndChangeNothing) {
    const auto e = load("tiny");
    EXPECT_NE(
        input_error_of([&] { e->to("tpu"); }).find("device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
        std::string::npos);
    if (!at::globalContext().hasCUDA()) {
        EXPECT_NE(input_error_of([&] { e->to("cuda:0"); }).find("no CUDA device is available"),
                  std::string::npos);
    }
    EXPECT_EQ(e->info().device, "cpu");
    EXPECT_EQ(e->upscale(at::rand({1, 16, 16, 3}), scale2()).sizes(), (at::IntArrayRef{1, 32, 32, 3}));
}
