#include "models/model_dir.h"

#include <flashvsr/flashvsr.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

namespace flashvsr::models {
namespace fs = std::filesystem;
namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

std::optional<ModelVersion> version_from_folder_name(const std::string& dir) {
    std::string name = fs::path(dir).lexically_normal().filename().string();
    if (name.empty()) {
        name = fs::path(dir).lexically_normal().parent_path().filename().string();
    }
    const std::string n = lower(name);
    if (n.find("v1.1") != std::string::npos || n.find("v1_1") != std::string::npos ||
        n.find("v11") != std::string::npos) {
        return ModelVersion::kV11;
    }
    if (n == "flashvsr" || n.find("v1.0") != std::string::npos || n.find("v1_0") != std::string::npos ||
        n.find("v10") != std::string::npos) {
        return ModelVersion::kV10;
    }
    return std::nullopt;
}

}  // namespace

ModelVersion parse_model_version(const std::string& s) {
    const std::string v = lower(s);
    if (v == "v1.0" || v == "1.0" || v == "v1") return ModelVersion::kV10;
    if (v == "v1.1" || v == "1.1") return ModelVersion::kV11;
    throw InputError("model version must be 'v1.0' or 'v1.1', got '" + s + "'");
}

const char* to_string(ModelVersion v) { return v == ModelVersion::kV10 ? "v1.0" : "v1.1"; }

const std::string& ModelDir::path(const char* name) const {
    const auto it = paths.find(name);
    if (it == paths.end()) {
        throw ModelError("model folder '" + dir + "' has no " + name);
    }
    return it->second;
}

std::optional<Manifest> read_manifest(const std::string& dir) {
    const fs::path p = fs::path(dir) / ModelFiles::kManifest;
    if (!fs::exists(p)) {
        return std::nullopt;
    }
    try {
        std::ifstream f(p);
        const nlohmann::json j = nlohmann::json::parse(f);
        Manifest m;
        m.version = j.value("version", "");
        m.origin = j.value("origin", "");
        if (j.contains("files")) {
            for (const auto& [name, e] : j.at("files").items()) {
                ManifestEntry entry;
                entry.version = e.value("version", "");
                entry.size = e.value("size", int64_t{-1});
                entry.sha256 = e.value("sha256", "");
                m.files[name] = entry;
            }
        }
        if (!m.version.empty()) {
            parse_model_version(m.version);  // validates
        }
        return m;
    } catch (const nlohmann::json::exception& e) {
        throw ModelError(p.string() + ": malformed manifest: " + e.what());
    } catch (const InputError& e) {
        throw ModelError(p.string() + ": " + e.what());
    }
}

void write_manifest(const std::string& dir, const Manifest& m) {
    nlohmann::ordered_json j;
    j["version"] = m.version;
    j["origin"] = m.origin;
    nlohmann::ordered_json files = nlohmann::ordered_json::object();
    for (const auto& [name, e] : m.files) {
        nlohmann::ordered_json je;
        je["version"] = e.version;
        je["size"] = e.size;
        if (!e.sha256.empty()) je["sha256"] = e.sha256;
        files[name] = je;
    }
    j["files"] = files;
    const fs::path p = fs::path(dir) / ModelFiles::kManifest;
    const fs::path tmp = fs::path(dir) / (std::string(ModelFiles::kManifest) + ".partial");
    {
        std::ofstream f(tmp);
        f << j.dump(2) << "\n";
        if (!f) {
            throw ModelError("cannot write " + tmp.string());
        }
    }
    std::error_code ec;
    fs::rename(tmp, p, ec);
    if (ec) {
        fs::remove(tmp, ec);
        throw ModelError("cannot write " + p.string());
    }
}

ModelDir resolve_model_dir(const std::string& dir, const std::optional<ModelVersion>& version,
                           const std::vector<std::string>& required) {
    if (!fs::is_directory(dir)) {
        throw ModelError("model folder '" + dir + "' does not exist or is not a folder");
    }
    ModelDir md;
    md.dir = fs::absolute(dir).lexically_normal().string();
    const std::optional<Manifest> manifest = read_manifest(dir);
    if (version) {
        md.version = *version;
        md.version_source = "option";
    } else if (manifest && !manifest->version.empty()) {
        md.version = parse_model_version(manifest->version);
        md.version_source = "manifest";
    } else if (const auto v = version_from_folder_name(md.dir)) {
        md.version = *v;
        md.version_source = "folder name";
    } else {
        throw ModelError("cannot tell the FlashVSR version of '" + md.dir +
                         "' (v1.0 and v1.1 files have identical keys): pass the version explicitly "
                         "(--version v1.0|v1.1) or name the folder FlashVSR (v1.0) / FlashVSR-v1.1");
    }
    for (const char* name : {ModelFiles::kDiT, ModelFiles::kLQProj, ModelFiles::kTCDecoder, ModelFiles::kVAE,
                             ModelFiles::kPrompt}) {
        const fs::path p = fs::path(md.dir) / name;
        if (fs::is_regular_file(p)) {
            md.paths[name] = p.string();
        }
    }
    std::vector<std::string> missing;
    for (const auto& r : required) {
        if (!md.paths.count(r)) missing.push_back(r);
    }
    if (!missing.empty()) {
        std::string list;
        for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
        throw ModelError("model folder '" + md.dir + "' is missing " + list +
                         " (the published folders FlashVSR/ and FlashVSR-v1.1/ hold all five files; "
                         "`flashvsr download` fetches them)");
    }
    if (manifest) {
        const std::string folder_version = to_string(md.version);
        for (const auto& [name, e] : manifest->files) {
            if (!e.version.empty() && e.version != folder_version) {
                md.warnings.push_back(name + " comes from " + e.version + " but the folder is used as " +
                                      folder_version + " (mixed v1.0/v1.1 files are a known cause of ghosting)");
            }
            const auto it = md.paths.find(name);
            if (it != md.paths.end() && e.size >= 0 &&
                static_cast<int64_t>(fs::file_size(it->second)) != e.size) {
                md.warnings.push_back(name + " has " + std::to_string(fs::file_size(it->second)) +
                                      " bytes but the manifest recorded " + std::to_string(e.size) +
                                      " (replaced by a file from elsewhere?)");
            }
        }
    }
    return md;
}

std::vector<std::string> required_files(const std::string& mode) {
    if (mode == "tiny" || mode == "tiny-long") {
        return {ModelFiles::kDiT, ModelFiles::kLQProj, ModelFiles::kTCDecoder, ModelFiles::kPrompt};
    }
    if (mode == "full") {
        return {ModelFiles::kDiT, ModelFiles::kLQProj, ModelFiles::kVAE, ModelFiles::kPrompt};
    }
    throw InputError("mode must be 'tiny', 'tiny-long' or 'full', got '" + mode + "'");
}

}  // namespace flashvsr::models
