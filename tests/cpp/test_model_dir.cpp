// Model folder resolution: version from option / manifest / folder name, missing files, mixed folders.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "error_test_util.h"
#include "models/model_dir.h"

namespace fs = std::filesystem;
using namespace flashvsr::models;
using flashvsr::testing::model_error_of;

namespace {

class ModelDirTest : public ::testing::Test {
  protected:
    void SetUp() override {
        root_ = fs::temp_directory_path() / ("flashvsr_md_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(root_);
    }
    void TearDown() override { fs::remove_all(root_); }
    fs::path folder(const std::string& name, bool all_files = true) {
        const fs::path d = root_ / name;
        fs::create_directories(d);
        if (all_files) {
            for (const char* f : {ModelFiles::kDiT, ModelFiles::kLQProj, ModelFiles::kTCDecoder,
                                  ModelFiles::kVAE, ModelFiles::kPrompt}) {
                std::ofstream(d / f) << "x";
            }
        }
        return d;
    }
    fs::path root_;
};

}  // namespace

TEST_F(ModelDirTest, VersionFromFolderName) {
    EXPECT_EQ(resolve_model_dir(folder("FlashVSR").string(), std::nullopt, {}).version, ModelVersion::kV10);
    const ModelDir v11 = resolve_model_dir(folder("FlashVSR-v1.1").string(), std::nullopt, {});
    EXPECT_EQ(v11.version, ModelVersion::kV11);
    EXPECT_EQ(v11.version_source, "folder name");
    EXPECT_EQ(v11.paths.size(), 5u);
    // An explicit option wins over the name.
    const ModelDir forced = resolve_model_dir(folder("FlashVSR").string(), ModelVersion::kV11, {});
    EXPECT_EQ(forced.version, ModelVersion::kV11);
    EXPECT_EQ(forced.version_source, "option");
    // A neutral name needs an option or a manifest.
    EXPECT_NE(model_error_of([&] {
                  resolve_model_dir(folder("weights").string(), std::nullopt, {});
              }).find("pass the version explicitly"),
              std::string::npos);
}

TEST_F(ModelDirTest, ManifestVersionAndMixedFiles) {
    const fs::path d = folder("weights");
    Manifest m;
    m.version = "v1.0";
    m.origin = "test";
    m.files[ModelFiles::kLQProj] = ManifestEntry{"v1.1", 1, ""};
    m.files[ModelFiles::kDiT] = ManifestEntry{"v1.0", 999, ""};
    write_manifest(d.string(), m);
    const ModelDir md = resolve_model_dir(d.string(), std::nullopt, {});
    EXPECT_EQ(md.version, ModelVersion::kV10);
    EXPECT_EQ(md.version_source, "manifest");
    ASSERT_EQ(md.warnings.size(), 2u);
    EXPECT_NE(md.warnings[0].find("mixed v1.0/v1.1"), std::string::npos);  // LQ proj from v1.1
    EXPECT_NE(md.warnings[1].find("has 1 bytes but the manifest recorded 999"), std::string::npos);
    std::ofstream(d / ModelFiles::kManifest) << "{ not json";
    EXPECT_NE(
        model_error_of([&] { resolve_model_dir(d.string(), std::nullopt, {}); }).find("malformed manifest"),
        std::string::npos);
}

TEST_F(ModelDirTest, MissingFilesAreListed) {
    const fs::path d = folder("FlashVSR-v1.1", false);
    std::ofstream(d / ModelFiles::kDiT) << "x";
    const std::string msg =
        model_error_of([&] { resolve_model_dir(d.string(), std::nullopt, required_files("tiny")); });
    EXPECT_NE(msg.find("LQ_proj_in.ckpt, TCDecoder.ckpt, posi_prompt.pth"), std::string::npos) << msg;
    EXPECT_NE(model_error_of([&] {
                  resolve_model_dir((root_ / "nope").string(), std::nullopt, {});
              }).find("does not exist"),
              std::string::npos);
    EXPECT_THROW(required_files("huge"), flashvsr::InputError);
    EXPECT_THROW(parse_model_version("2.0"), flashvsr::InputError);
}
