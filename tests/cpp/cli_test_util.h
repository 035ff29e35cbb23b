// The fixture of the tests that run the built `flashvsr` CLI: tiny random weights made once per suite in
// temp/flashvsr_<suite>_<pid>/FlashVSR-v1.1, a scratch folder per test beside them, everything removed
// after the suite.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <regex>
#include <string>

#include "media_test_util.h"
#include "models/test_weights.h"

namespace flashvsr::testing_media {

class CliTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        const auto* suite = ::testing::UnitTest::GetInstance()->current_test_suite();
        root_ = std::filesystem::temp_directory_path() /
                ("flashvsr_" + std::string(suite != nullptr ? suite->name() : "cli") + "_" +
                 std::to_string(::getpid()));
        flashvsr::models::TestWeightsOptions o;
        o.size = "tiny";
        o.seed = 5;
        o.prompt_tokens = 64;
        flashvsr::models::make_test_weights((root_ / "FlashVSR-v1.1").string(), o);
    }
    static void TearDownTestSuite() { std::filesystem::remove_all(root_); }
    void SetUp() override {
        if (!have_ffmpeg()) {
            GTEST_FAIL() << "the ffmpeg CLI is needed to make test inputs (scripts/setup.sh)";
        }
        dir_ = root_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
        std::filesystem::create_directories(dir_);
    }
    std::string path(const std::string& n) const { return (dir_ / n).string(); }
    static std::string weights() { return (root_ / "FlashVSR-v1.1").string(); }
    /// `flashvsr <args>`, stdout and stderr captured together.
    static CmdResult cli(const std::string& args) {
        return run_cmd(std::string(FLASHVSR_CLI_PATH) + " " + args);
    }

    struct Interrupted {
        int done = -1;     // frames done, from "interrupted: N frames done, kept in PATH"
        std::string kept;  // PATH
        std::string err;   // the whole stderr
    };
    /// `flashvsr upscale IN -o OUT` with the suite's weights at scale 2 on the CPU, SIGINT once `after`
    /// frames are done; expects exit code 130 and the "interrupted" line (failures are recorded).
    static Interrupted interrupt_upscale(const std::string& in, const std::string& out, int after) {
        const InterruptedRun run =
            run_and_interrupt({FLASHVSR_CLI_PATH, "upscale", in, "-o", out, "--model-dir", weights(),
                               "--scale", "2", "--device", "cpu", "--progress-interval", "0"},
                              after);
        Interrupted r;
        r.err = run.err;
        EXPECT_TRUE(run.sent) << run.err;
        EXPECT_TRUE(run.exited) << run.err;
        EXPECT_EQ(run.code, 130) << run.err;
        std::smatch m;
        if (std::regex_search(run.err, m, std::regex("interrupted: (\\d+) frames done, kept in (\\S+)"))) {
            r.done = std::stoi(m[1]);
            r.kept = m[2].str();
        } else {
            ADD_FAILURE() << "no 'interrupted' line:\n" << run.err;
        }
        return r;
    }

    static inline std::filesystem::path root_;
    std::filesystem::path dir_;
};

}  // namespace flashvsr::testing_media
