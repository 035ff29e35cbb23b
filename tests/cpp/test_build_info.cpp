#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

TEST(BuildInfo, VersionMatchesProject) {
    EXPECT_STREQ(flashvsr::version(), FLASHVSR_EXPECTED_VERSION);
    EXPECT_EQ(flashvsr::build_info().version, FLASHVSR_EXPECTED_VERSION);
}

TEST(BuildInfo, ReportsLinkedLibraries) {
    const flashvsr::BuildInfo info = flashvsr::build_info();
    EXPECT_EQ(info.torch.rfind("2.", 0), 0u) << info.torch;             // torch 2.x, never Debian's 1.13
    EXPECT_EQ(info.libavcodec.rfind("59.", 0), 0u) << info.libavcodec;  // FFmpeg 5.1 = libavcodec 59
    EXPECT_EQ(info.libavformat.rfind("59.", 0), 0u) << info.libavformat;
    EXPECT_EQ(info.opencv.rfind("4.", 0), 0u) << info.opencv;
#ifdef FLASHVSR_WITH_CUDA
    EXPECT_TRUE(info.cuda_compiled);
    EXPECT_FALSE(info.cuda_archs.empty());
#else
    EXPECT_FALSE(info.cuda_compiled);
#endif
    EXPECT_EQ(info.cuda_available, info.cuda_device_count > 0);
}

TEST(BuildInfo, JsonRoundTrip) {
    const flashvsr::BuildInfo info = flashvsr::build_info();
    const auto j = nlohmann::json::parse(flashvsr::build_info_json(info));
    EXPECT_EQ(j.at("version"), info.version);
    EXPECT_EQ(j.at("torch"), info.torch);
    EXPECT_EQ(j.at("cuda_compiled").get<bool>(), info.cuda_compiled);
    EXPECT_EQ(j.at("cuda_available").get<bool>(), info.cuda_available);
    EXPECT_EQ(j.at("ffmpeg").at("libavcodec"), info.libavcodec);
    EXPECT_EQ(j.at("ffmpeg").at("libswresample"), info.libswresample);
    EXPECT_EQ(j.at("opencv"), info.opencv);
}
