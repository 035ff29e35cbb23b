// The model folder search order (model_search.h).
#include "csrc/pipeline/model_search.h"

#include <flashvsr/flashvsr.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

namespace flashvsr::pipeline {
namespace fs = std::filesystem;
namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::string(v) : std::string();
}

/// $<xdg>/flashvsr, else ~/<fallback>/flashvsr; empty when neither variable is set.
fs::path user_dir(const char* xdg, const char* fallback) {
    const std::string x = env(xdg);
    if (!x.empty()) {
        return fs::path(x) / "flashvsr";
    }
    const std::string home = env("HOME");
    return home.empty() ? fs::path() : fs::path(home) / fallback / "flashvsr";
}

std::string folder_name(const std::string& version) {
    return version == "v1.0" ? "FlashVSR" : "FlashVSR-v1.1";
}

}  // namespace

std::string find_model_dir(const std::string& version) {
    const std::string name = folder_name(version);
    std::vector<fs::path> places;
    if (const std::string d = env("FLASHVSR_MODEL_DIR"); !d.empty()) {
        places.emplace_back(d);
    }
    places.push_back(fs::path("models") / name);
    if (const fs::path d = user_dir("XDG_DATA_HOME", ".local/share"); !d.empty()) {
        places.push_back(d / name);
    }
    if (const fs::path d = user_dir("XDG_CACHE_HOME", ".cache"); !d.empty()) {
        places.push_back(d / name);
    }
    std::string tried;
    for (const fs::path& p : places) {
        std::error_code ec;
        if (fs::is_directory(p, ec)) {
            return p.string();
        }
        tried += (tried.empty() ? "" : ", ") + p.string();
    }
    throw ModelError("no model folder found (tried " + tried +
                     "); pass --model-dir DIR, set FLASHVSR_MODEL_DIR, or run `flashvsr download`");
}

std::string cache_dir() {
    fs::path cache = user_dir("XDG_CACHE_HOME", ".cache");
    if (cache.empty()) {
        cache = fs::temp_directory_path() / "flashvsr";
    }
    return cache.string();
}

std::string default_model_dir(const std::string& version) {
    return (fs::path(cache_dir()) / folder_name(version)).string();
}

}  // namespace flashvsr::pipeline
