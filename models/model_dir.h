// A FlashVSR model folder: which files it must hold, which version (v1.0 / v1.1) it is, and a manifest
// (flashvsr_manifest.json) recording where each file came from, so mixed folders can be noticed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace flashvsr::models {

enum class ModelVersion { kV10, kV11 };

/// "v1.0" / "1.0" / "v1.1" / "1.1" (case-insensitive); anything else throws InputError naming the value.
ModelVersion parse_model_version(const std::string& s);
const char* to_string(ModelVersion v);

/// The published file names (identical in FlashVSR/ and FlashVSR-v1.1/).
struct ModelFiles {
    static constexpr const char* kDiT = "diffusion_pytorch_model_streaming_dmd.safetensors";
    static constexpr const char* kLQProj = "LQ_proj_in.ckpt";
    static constexpr const char* kTCDecoder = "TCDecoder.ckpt";
    static constexpr const char* kVAE = "Wan2.1_VAE.pth";
    static constexpr const char* kPrompt = "posi_prompt.pth";
    static constexpr const char* kManifest = "flashvsr_manifest.json";
};

/// What the manifest says about one file.
struct ManifestEntry {
    std::string version;  // "v1.0" | "v1.1" | "" (unknown)
    int64_t size = -1;    // bytes when written/downloaded, -1 unknown
    std::string sha256;   // optional
};

struct Manifest {
    std::string version;  // the folder's version
    std::string origin;   // e.g. "make-test-weights size=tiny seed=0" or "download"
    std::map<std::string, ManifestEntry> files;
};

/// Reads DIR/flashvsr_manifest.json if present (ModelError when present but malformed).
std::optional<Manifest> read_manifest(const std::string& dir);
/// Writes it (temporary name + rename).
void write_manifest(const std::string& dir, const Manifest& m);

/// The resolved folder: absolute paths of the files and the version with where it came from.
struct ModelDir {
    std::string dir;
    ModelVersion version = ModelVersion::kV11;
    std::string version_source;                // "option", "manifest" or "folder name"
    std::map<std::string, std::string> paths;  // file name -> path, for the files that exist
    std::vector<std::string> warnings;         // e.g. mixed versions, files changed since the manifest
    bool has(const char* name) const { return paths.count(name) != 0; }
    const std::string& path(const char* name) const;  // throws ModelError naming the missing file
};

/// Resolves `dir`. Version: `version` when given, else the manifest's, else the folder name ("FlashVSR" ->
/// v1.0, "FlashVSR-v1.1" -> v1.1, any name containing v1.1 / v1_1 / v11 -> v1.1); otherwise ModelError
/// asking for an explicit version. `required` files missing -> ModelError listing them all.
ModelDir resolve_model_dir(const std::string& dir, const std::optional<ModelVersion>& version,
                           const std::vector<std::string>& required);

/// The files a pipeline mode needs: tiny / tiny-long -> DiT, LQ proj, TCDecoder, prompt;
/// full -> DiT, LQ proj, VAE, prompt.
std::vector<std::string> required_files(const std::string& mode);

}  // namespace flashvsr::models
