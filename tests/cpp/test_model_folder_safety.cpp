// Hostile model folders: symbolic links leaving the folder, files that change while mapped (a truncated
// mapping would raise SIGBUS), a DiT header declaring 10^12 elements, manifests of the wrong types.
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "error_test_util.h"
#include "models/checkpoint/mapped_file.h"
#include "models/checkpoint/safetensors.h"
#include "models/common/params.h"
#include "models/model_dir.h"
#include "models/test_weights.h"
#include "random_weights.h"

namespace fs = std::filesystem;
using namespace flashvsr::models;
using flashvsr::testing::error_of;

namespace {

class ModelFolderSafety : public ::testing::Test {
  protected:
    void SetUp() override {
        root_ = fs::temp_directory_path() / ("flashvsr_mfs_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(root_);
    }
    void TearDown() override { fs::remove_all(root_); }
    /// A folder with the five files (one byte each), version from its name.
    fs::path folder(const fs::path& d) {
        fs::create_directories(d);
        for (const char* f : {ModelFiles::kDiT, ModelFiles::kLQProj, ModelFiles::kTCDecoder, ModelFiles::kVAE,
                              ModelFiles::kPrompt}) {
            std::ofstream(d / f) << "x";
        }
        return d;
    }
    std::string resolve_error(const fs::path& d) {
        return error_of([&] { resolve_model_dir(d.string(), std::nullopt, required_files("tiny")); });
    }
    fs::path root_;
};

long peak_rss_kib() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

}  // namespace

TEST_F(ModelFolderSafety, LinkLeavingTheFolderIsRefused) {
    const fs::path d = folder(root_ / "FlashVSR-v1.1");
    std::ofstream(root_ / "elsewhere.ckpt") << "x";
    fs::remove(d / ModelFiles::kLQProj);
    fs::create_symlink(root_ / "elsewhere.ckpt", d / ModelFiles::kLQProj);
    const std::string msg = resolve_error(d);
    EXPECT_NE(msg.find("LQ_proj_in.ckpt is a symbolic link to"), std::string::npos) << msg;
    EXPECT_NE(msg.find("elsewhere.ckpt"), std::string::npos) << msg;
    EXPECT_NE(msg.find("outside the folder"), std::string::npos) << msg;

    fs::remove(d / ModelFiles::kLQProj);  // ../ inside a relative link is resolved too
    fs::create_symlink("../elsewhere.ckpt", d / ModelFiles::kLQProj);
    EXPECT_NE(resolve_error(d).find("outside the folder"), std::string::npos);
}

TEST_F(ModelFolderSafety, LinkInsideTheFolderAndHuggingFaceBlobsAreAccepted) {
    const fs::path d = folder(root_ / "FlashVSR-v1.1");
    fs::create_directories(d / "store");
    std::ofstream(d / "store" / "dit.bin") << "x";
    fs::remove(d / ModelFiles::kDiT);
    fs::create_symlink("store/dit.bin", d / ModelFiles::kDiT);
    EXPECT_EQ(resolve_error(d), "<no error>");

    // huggingface_hub's cache: snapshots/<revision>/<file> -> ../../blobs/<hash>
    const fs::path repo = root_ / "models--JunhaoZhuang--FlashVSR-v1.1";
    const fs::path snap = repo / "snapshots" / "0123abc";
    fs::create_directories(repo / "blobs");
    fs::create_directories(snap);
    for (const char* f :
         {ModelFiles::kDiT, ModelFiles::kLQProj, ModelFiles::kTCDecoder, ModelFiles::kPrompt}) {
        std::ofstream(repo / "blobs" / (std::string("h_") + f)) << "x";
        fs::create_symlink(fs::path("../../blobs") / (std::string("h_") + f), snap / f);
    }
    const std::string msg =
        error_of([&] { resolve_model_dir(snap.string(), ModelVersion::kV11, required_files("tiny")); });
    EXPECT_EQ(msg, "<no error>");
}

TEST_F(ModelFolderSafety, DanglingLinkIsNamed) {
    const fs::path d = folder(root_ / "FlashVSR-v1.1");
    fs::remove(d / ModelFiles::kTCDecoder);
    fs::create_symlink("gone.ckpt", d / ModelFiles::kTCDecoder);
    const std::string msg = resolve_error(d);
    EXPECT_NE(msg.find("TCDecoder.ckpt is a symbolic link to 'gone.ckpt', which does not exist"),
              std::string::npos)
        << msg;
}

TEST_F(ModelFolderSafety, FifoIsRefusedWithoutBlocking) {
    const fs::path fifo = root_ / "pipe.safetensors";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    const std::string msg = error_of([&] { read_safetensors(fifo.string()); });
    EXPECT_NE(msg.find("pipe.safetensors: not a regular file"), std::string::npos) << msg;
}

TEST_F(ModelFolderSafety, ManifestFieldsOfTheWrongTypeAreModelErrors) {
    const fs::path d = folder(root_ / "FlashVSR-v1.1");
    for (const char* text : {R"({"version": "v1.1", "files": {"LQ_proj_in.ckpt": {"size": 1e300}}})",
                             R"({"version": 11})", R"([1, 2])", R"({"files": [1]})",
                             R"({"files": {"a": {"sha256": 5}}})", R"({"files": {"a": {"size": -5}}})"}) {
        std::ofstream(d / ModelFiles::kManifest) << text;
        const std::string msg = error_of([&] { read_manifest(d.string()); });
        EXPECT_NE(msg.find("flashvsr_manifest.json: "), std::string::npos) << text << " -> " << msg;
    }
    fs::remove(d / ModelFiles::kManifest);
    fs::create_directory(d / ModelFiles::kManifest);
    EXPECT_NE(error_of([&] { read_manifest(d.string()); }).find("not a regular file"), std::string::npos);
}

TEST_F(ModelFolderSafety, FileTruncatedWhileMappedIsAModelErrorNotSigbus) {
    const std::string path = (root_ / "w.safetensors").string();
    write_safetensors(path, {{"w", at::ones({256, 1024})}});  // 1 MiB of data
    const SafetensorsFile f = read_safetensors(path);         // zero-copy views of the mapping
    ASSERT_EQ(::truncate(path.c_str(), 4096), 0);             // most pages of the mapping are gone

    at::Tensor slot;
    ParamTable table;
    table.add("w", &slot, {256, 1024});
    const std::string msg = error_of([&] { table.load(f.tensors, path, LoadOptions{}); });
    EXPECT_NE(msg.find("w.safetensors: the file changed while it was being read"), std::string::npos) << msg;
    EXPECT_NE(msg.find("4096 bytes now"), std::string::npos) << msg;
    // What the lost pages read as: zeros, never the old data or a crash.
    EXPECT_EQ(f.tensors.at("w")[255].sum().item<float>(), 0.0f);
}

TEST_F(ModelFolderSafety, FileGrownWhileMappedIsAModelError) {
    const std::string path = (root_ / "g.safetensors").string();
    write_safetensors(path, {{"w", at::ones({4, 4})}});
    const SafetensorsFile f = read_safetensors(path);
    std::ofstream(path, std::ios::app) << "more";
    at::Tensor slot;
    ParamTable table;
    table.add("w", &slot, {4, 4});
    EXPECT_NE(
        error_of([&] { table.load(f.tensors, path, LoadOptions{}); }).find("changed while it was being read"),
        std::string::npos);
}

TEST_F(ModelFolderSafety, DiTHeaderDeclaringTeraElementsIsAClearError) {
    const fs::path d = root_ / "FlashVSR-v1.1";
    TestWeightsOptions o;
    o.size = "tiny";
    o.prompt_tokens = 16;
    make_test_weights(d.string(), o);
    const fs::path dit = d / ModelFiles::kDiT;
    // The tiny DiT's tensors, but blocks.0.ffn.0.weight declared as [10^6, 10^6] float32 (4 TB), placed last.
    const std::string key = "blocks.0.ffn.0.weight";
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    std::string blob;
    {
        const SafetensorsFile tiny = read_safetensors(dit.string());
        for (const auto& [k, t] : tiny.tensors) {
            if (k == key) {
                continue;
            }
            ASSERT_EQ(t.scalar_type(), at::kFloat) << k;
            const at::Tensor c = t.contiguous();
            header[k] = {{"dtype", "F32"},
                         {"shape", c.sizes().vec()},
                         {"data_offsets", {blob.size(), blob.size() + c.nbytes()}}};
            blob.append(static_cast<const char*>(c.data_ptr()), c.nbytes());
        }
    }
    const uint64_t huge = uint64_t{4} * 1000 * 1000 * 1000 * 1000;
    header[key] = {
        {"dtype", "F32"}, {"shape", {1000000, 1000000}}, {"data_offsets", {blob.size(), blob.size() + huge}}};
    const std::string text = header.dump();
    const auto write_dit = [&](uint64_t extra) {
        {
            std::ofstream out(dit, std::ios::binary | std::ios::trunc);
            const uint64_t n = text.size();
            out.write(reinterpret_cast<const char*>(&n), 8);
            out << text << blob;
        }
        fs::resize_file(dit, 8 + text.size() + blob.size() + extra);  // sparse: no disk space used
    };
    flashvsr::EngineOptions eo;
    eo.model_dir = d.string();
    eo.device = "cpu";

    write_dit(16);  // the file ends long before the declared data
    std::string msg = error_of([&] { flashvsr::Engine::load(eo); });
    EXPECT_NE(msg.find("diffusion_pytorch_model_streaming_dmd.safetensors: tensor 'blocks.0.ffn.0.weight': "
                       "data_offsets ["),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("outside the data buffer"), std::string::npos) << msg;

    const long rss_before = peak_rss_kib();
    write_dit(huge);  // the 4 TB are really there (as a hole)
    msg = error_of([&] { flashvsr::Engine::load(eo); });
    EXPECT_NE(msg.find("diffusion_pytorch_model_streaming_dmd.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("blocks.0.ffn"), std::string::npos) << msg;
    EXPECT_LT(peak_rss_kib() - rss_before, 512 * 1024) << "loading allocated for the declared size";
}
