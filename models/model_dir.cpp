#include "models/model_dir.h"

#include <flashvsr/errors.h>

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

/// A symbolic link among the model files must end at a regular file inside the folder (or, for a Hugging Face
/// cache snapshot ".../snapshots/<revision>/", inside that repository's ".../blobs/"): a link leaving the
/// folder or ending nowhere is a ModelError naming the link and its target.
void check_link(const std::string& dir, const fs::path& link) {
    std::error_code ec;
    if (!fs::is_symlink(link, ec)) {
        return;
    }
    const fs::path target = fs::read_symlink(link, ec);
    const std::string shown = "model folder '" + dir + "': " + link.filename().string() +
                              " is a symbolic link to '" + target.string() + "'";
    const fs::path resolved = fs::canonical(link, ec);
    if (ec) {
        throw ModelError(shown + ", which does not exist (" + ec.message() + ")");
    }
    const fs::path folder = fs::canonical(dir, ec);
    const auto inside = [&](const fs::path& root) {
        const fs::path rel = resolved.lexically_relative(root);
        return !root.empty() && !rel.empty() && *rel.begin() != "..";
    };
    const bool hf_snapshot = folder.parent_path().filename() == "snapshots";
    if (!inside(folder) && !(hf_snapshot && inside(folder.parent_path().parent_path() / "blobs"))) {
        throw ModelError(shown +
                         ", outside the folder (copy the file into the folder, or use the folder "
                         "that holds it)");
    }
}

}  // namespace

ModelVersion parse_model_version(const std::string& s) {
    const std::string v = lower(s);
    if (v == "v1.0" || v == "1.0" || v == "v1") {
        return ModelVersion::kV10;
    }
    if (v == "v1.1" || v == "1.1") {
        return ModelVersion::kV11;
    }
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
    constexpr uintmax_t kMaxManifestBytes = 1 << 20;  // a real one is well under 4 KB
    const fs::path p = fs::path(dir) / ModelFiles::kManifest;
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(p, ec))) {
        return std::nullopt;
    }
    const auto fail = [&](const std::string& why) { return ModelError(p.string() + ": " + why); };
    if (!fs::is_regular_file(p, ec)) {
        throw fail("not a regular file");
    }
    const uintmax_t bytes = fs::file_size(p, ec);
    if (ec || bytes > kMaxManifestBytes) {
        throw fail(ec ? "cannot read (" + ec.message() + ")"
                      : "malformed manifest: " + std::to_string(bytes) +
                            " bytes, more than a manifest holds");
    }
    // Every field is checked for its type: nlohmann's value() would convert a float size to an integer.
    const auto text = [&](const nlohmann::json& j, const char* key, const std::string& where) {
        if (!j.contains(key)) {
            return std::string();
        }
        if (!j.at(key).is_string()) {
            throw fail("malformed manifest: " + where + key + " must be a string");
        }
        return j.at(key).get<std::string>();
    };
    try {
        std::ifstream f(p);
        const nlohmann::json j = nlohmann::json::parse(f);
        if (!j.is_object()) {
            throw fail("malformed manifest: not a JSON object");
        }
        Manifest m;
        m.version = text(j, "version", "");
        m.origin = text(j, "origin", "");
        if (j.contains("files")) {
            if (!j.at("files").is_object()) {
                throw fail("malformed manifest: files must be an object");
            }
            for (const auto& [name, e] : j.at("files").items()) {
                const std::string where = "files['" + name + "'].";
                if (!e.is_object()) {
                    throw fail("malformed manifest: files['" + name + "'] must be an object");
                }
                ManifestEntry entry;
                entry.version = text(e, "version", where);
                entry.sha256 = text(e, "sha256", where);
                if (e.contains("size")) {
                    const auto& size = e.at("size");
                    if (!size.is_number_integer() || size.get<int64_t>() < -1) {
                        throw fail("malformed manifest: " + where + "size must be a byte count");
                    }
                    entry.size = size.get<int64_t>();
                }
                m.files[name] = entry;
            }
        }
        if (!m.version.empty()) {
            parse_model_version(m.version);  // validates
        }
        return m;
    } catch (const nlohmann::json::exception& e) {
        throw fail(std::string("malformed manifest: ") + e.what());
    } catch (const InputError& e) {
        throw fail(e.what());
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
        if (!e.sha256.empty()) {
            je["sha256"] = e.sha256;
        }
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
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        throw ModelError("model folder '" + dir + "' does not exist or is not a folder" +
                         (ec && ec != std::errc::no_such_file_or_directory ? " (" + ec.message() + ")" : ""));
    }
    ModelDir md;
    md.dir = fs::absolute(dir, ec).lexically_normal().string();
    if (ec) {
        throw ModelError("model folder '" + dir + "': " + ec.message());
    }
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
        check_link(md.dir, p);
        if (fs::is_regular_file(p, ec)) {
            md.paths[name] = p.string();
        }
    }
    std::vector<std::string> missing;
    for (const auto& r : required) {
        if (!md.paths.count(r)) {
            missing.push_back(r);
        }
    }
    if (!missing.empty()) {
        std::string list;
        for (const auto& m : missing) {
            list += (list.empty() ? "" : ", ") + m;
        }
        throw ModelError("model folder '" + md.dir + "' is missing " + list +
                         " (the published folders FlashVSR/ and FlashVSR-v1.1/ hold all five files; "
                         "`flashvsr download` fetches them)");
    }
    if (manifest) {
        const std::string folder_version = to_string(md.version);
        for (const auto& [name, e] : manifest->files) {
            if (!e.version.empty() && e.version != folder_version) {
                md.warnings.push_back(name + " comes from " + e.version + " but the folder is used as " +
                                      folder_version +
                                      " (mixed v1.0/v1.1 files are a known cause of ghosting)");
            }
            const auto it = md.paths.find(name);
            const uintmax_t bytes = it == md.paths.end() ? 0 : fs::file_size(it->second, ec);
            if (it != md.paths.end() && !ec && e.size >= 0 && static_cast<int64_t>(bytes) != e.size) {
                md.warnings.push_back(name + " has " + std::to_string(bytes) +
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
