// libFuzzer harness: model-folder detection (models/model_dir): flashvsr_manifest.json, the version from
// option / manifest / folder name, present and missing files, symbolic links.
//
// Input: byte 0 chooses the folder name and the version option, byte 1 which of the five files exist and
// how (regular file, link inside the folder, link leaving it, dangling link), the rest is the manifest (none
// when empty).
#include <flashvsr/flashvsr.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "fuzz/fuzz_common.h"
#include "models/model_dir.h"

namespace {
namespace fs = std::filesystem;
using flashvsr::models::ModelFiles;
using flashvsr::models::ModelVersion;

void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::array<std::string, 8> names{
        "FlashVSR",     "FlashVSR-v1.1",       "models",       "weights_v1_0", "x",
        "FLASHVSR-V11", std::string(300, 'v'), "snapshots/abc"};
    static const std::array<const char*, 5> files{
        ModelFiles::kDiT, ModelFiles::kLQProj, ModelFiles::kTCDecoder, ModelFiles::kVAE, ModelFiles::kPrompt};
    const uint8_t b0 = size > 0 ? data[0] : 0;
    const uint8_t b1 = size > 1 ? data[1] : 0;
    const fs::path root = flashvsr::fuzz::fresh_folder("model_dir");
    const fs::path outside = root / "outside.bin";
    write(outside, "x");
    const std::string& name = names[b0 & 7];
    const fs::path dir = root / name;
    std::error_code ec;
    fs::create_directories(dir, ec);  // fails for the 300-character name (too long): a missing folder
    if (!ec) {
        write(dir / "inside.bin", "x");
        for (size_t k = 0; k < files.size(); ++k) {
            const int how = (b1 >> k) & 1 ? ((b1 >> 5) + k) % 4 : -1;
            const fs::path p = dir / files[k];
            if (how == 0) {
                write(p, "x");
            }
            if (how == 1) {
                fs::create_symlink("inside.bin", p, ec);
            }
            if (how == 2) {
                fs::create_symlink(outside, p, ec);
            }
            if (how == 3) {
                fs::create_symlink("no_such_file", p, ec);
            }
        }
        if (size > 2) {
            write(dir / ModelFiles::kManifest,
                  std::string(reinterpret_cast<const char*>(data) + 2, size - 2));
        }
    }
    std::optional<ModelVersion> version;
    if ((b0 >> 3) % 3 == 1) {
        version = ModelVersion::kV10;
    }
    if ((b0 >> 3) % 3 == 2) {
        version = ModelVersion::kV11;
    }
    const char* mode = (b0 >> 5) % 2 ? "full" : "tiny";
    try {
        (void)flashvsr::models::read_manifest(dir.string());
    } catch (const flashvsr::Error&) {
    }
    try {
        const auto md = flashvsr::models::resolve_model_dir(
            dir.string(), version,
            (b0 >> 6) ? flashvsr::models::required_files(mode) : std::vector<std::string>{});
        for (const auto& [file, path] : md.paths) {
            if (!fs::is_regular_file(path)) {
                flashvsr::fuzz::fail(file + " is listed but not a regular file");
            }
        }
    } catch (const flashvsr::Error&) {
    }
    return 0;
}
