// `flashvsr info DIR`: what a model folder holds (files, version, tensor and parameter counts, dtypes and the
// configuration derived from the shapes), without building the networks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/model_dir.h"

namespace flashvsr::models {

struct FileInfo {
    std::string name;
    std::string path;
    int64_t bytes = 0;
    int64_t tensors = 0;
    int64_t parameters = 0;
    std::vector<std::string> dtypes;  // distinct dtypes, e.g. {"bf16"}
    std::string config;               // derived configuration, e.g. "dim=1536 layers=30 ffn=8960 heads=12"
    std::string key_hash;             // DiffSynth key hash (DiT and VAE files)
};

struct ModelInfo {
    ModelDir dir;
    std::vector<FileInfo> files;
    std::vector<std::string> missing;  // published files not in the folder
};

/// Reads every present file's header/tensors (memory-mapped where possible). Throws ModelError for
/// unreadable or inconsistent files, naming the file and the key.
ModelInfo inspect_model_dir(const std::string& dir,
                            const std::optional<ModelVersion>& version = std::nullopt);

std::string to_text(const ModelInfo& info);
std::string to_json(const ModelInfo& info, int indent = 2);

}  // namespace flashvsr::models
