// The fixture of the media tests that write clips: the ffmpeg CLI required, FFmpeg's own log off, and a
// scratch folder per test, temp/flashvsr_<suite>_<test>_<pid>, removed after the test.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "csrc/io/av_ptr.h"
#include "media_test_util.h"

namespace flashvsr::testing_media {

class MediaDirTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!have_ffmpeg()) {
            GTEST_FAIL() << "the ffmpeg CLI is needed to make test clips (scripts/setup.sh)";
        }
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ =
            std::filesystem::temp_directory_path() / ("flashvsr_" + std::string(info->test_suite_name()) +
                                                      "_" + info->name() + "_" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        flashvsr::io::set_av_logging(false);
    }
    void TearDown() override {
        if (!dir_.empty()) {
            std::filesystem::remove_all(dir_);
        }
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }

    std::filesystem::path dir_;
};

}  // namespace flashvsr::testing_media
