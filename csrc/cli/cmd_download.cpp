// `flashvsr download`: the published FlashVSR files over http(s) through libavformat's avio (resumable).
#include <flashvsr/flashvsr.h>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>

#include "csrc/cli/args.h"
#include "csrc/cli/commands.h"
#include "csrc/io/av_ptr.h"
#include "csrc/io/download.h"
#include "csrc/pipeline/model_search.h"
#include "models/model_dir.h"

namespace flashvsr::cli {
namespace {

/// Hugging Face's file list (GET /api/models/<repo>/tree/main): per file its size, the SHA-256 of LFS files
/// (lfs.oid) and the git blob SHA-1 of the others (oid). Throws on anything that is not such a list.
std::map<std::string, io::ExpectedFile> parse_file_list(const std::string& body) {
    std::map<std::string, io::ExpectedFile> out;
    const nlohmann::json j = nlohmann::json::parse(body);
    if (!j.is_array()) {
        throw std::runtime_error("not a JSON list of files");
    }
    for (const auto& e : j) {
        if (!e.is_object() || !e.contains("path") || e.value("type", "file") != "file") {
            continue;
        }
        io::ExpectedFile x;
        x.size = e.value("size", int64_t{-1});
        if (e.contains("lfs") && e["lfs"].is_object()) {
            x.sha256 = e["lfs"].value("oid", "");
            if (x.sha256.rfind("sha256:", 0) == 0) {
                x.sha256 = x.sha256.substr(7);
            }
            x.size = e["lfs"].value("size", x.size);
        } else {
            x.git_sha1 = e.value("oid", "");
        }
        out[e["path"].get<std::string>()] = x;
    }
    return out;
}

}  // namespace

int cmd_download(const std::vector<std::string>& argv) {
    const Args args(argv, {"--version", "--to", "--base-url", "--api-url"}, {"--help", "-h"});
    const std::string version = args.get("--version", "v1.1");
    const bool v10 = models::parse_model_version(version) == models::ModelVersion::kV10;
    const std::string ver = v10 ? "v1.0" : "v1.1";
    const std::string repo = v10 ? "JunhaoZhuang/FlashVSR" : "JunhaoZhuang/FlashVSR-v1.1";
    const std::string default_base = "https://huggingface.co/" + repo + "/resolve/main/";
    const std::string default_api = "https://huggingface.co/api/models/" + repo + "/tree/main";
    if (args.has("--help") || args.has("-h")) {
        std::cout
            << "usage: flashvsr download [--version v1.0|v1.1] [--to DIR] [--base-url URL] [--api-url "
               "URL]\n\n"
               "Fetches the five published files (DiT, LQ projector, TCDecoder, Wan2.1 VAE, prompt) into "
               "DIR\n"
               "[default: "
            << pipeline::default_model_dir(ver)
            << "], where `flashvsr upscale` finds them.\n"
               "Interrupted downloads resume (FILE.part). Before downloading, the repository's file\n"
               "list is read from --api-url; each file's size and SHA-256 (git blob SHA-1 for non-LFS\n"
               "files) are checked against it (the whole file, a resumed prefix included). A file that\n"
               "fails is deleted and the command exits 1. Without the list (unreachable, or --base-url\n"
               "without --api-url) only sizes are checked against the server's. The SHA-256 of every\n"
               "file goes into flashvsr_manifest.json. Files already in DIR that their hash proves are\n"
               "kept.\n"
               "  --version   v1.0|v1.1 [default: v1.1]\n"
               "  --to        the model folder to fill\n"
               "  --base-url  where the files are [default: https://huggingface.co/<repo>/resolve/main/]\n"
               "  --api-url   the JSON file list with sizes and hashes, \"\" for none [default:\n"
               "              https://huggingface.co/api/models/<repo>/tree/main; none with --base-url]\n";
        return 0;
    }
    if (!args.positionals().empty()) {
        throw UsageError("unexpected argument '" + args.positionals()[0] + "'");
    }
    std::string base = args.get("--base-url", default_base);
    if (!base.empty() && base.back() != '/') {
        base += '/';
    }
    const std::string dir = args.get("--to", pipeline::default_model_dir(ver));
    io::set_av_logging(false);
    const std::string api = args.get("--api-url", args.has("--base-url") ? "" : default_api);
    std::map<std::string, io::ExpectedFile> known;
    if (api.empty()) {
        std::cerr
            << "flashvsr: note: no file list (--api-url): sizes are checked against the server's only\n";
    } else {
        try {
            known = parse_file_list(io::fetch_text(api));
        } catch (const std::exception& e) {
            std::cerr << "flashvsr: warning: cannot read the file list " << api << " (" << e.what()
                      << "): sizes are checked against the server's only, no hashes\n";
        }
    }
    const bool tty = ::isatty(2) != 0;
    models::Manifest manifest;
    manifest.version = ver;
    manifest.origin = "download " + base;
    for (const char* name :
         {models::ModelFiles::kDiT, models::ModelFiles::kLQProj, models::ModelFiles::kTCDecoder,
          models::ModelFiles::kVAE, models::ModelFiles::kPrompt}) {
        const std::string dest = dir + "/" + name;
        std::cerr << "flashvsr: " << base + name << " -> " << dest << "\n";
        const auto progress = [&](int64_t done, int64_t total) {
            if (!tty) {
                return;
            }
            std::cerr << "\r  " << done / 1048576 << " MiB";
            if (total > 0) {
                std::cerr << " of " << total / 1048576 << " MiB (" << 100 * done / total << "%)";
            }
            std::cerr << "\033[K" << std::flush;
        };
        const auto it = known.find(name);
        if (!known.empty() && it == known.end()) {
            std::cerr << "flashvsr: warning: " << name
                      << " is not in the file list: no size or hash to check\n";
        }
        if (it != known.end()) {  // already downloaded and proven by its hash: keep it
            const io::FileCheck have = io::check_file(dest, it->second);
            if (have.matches) {
                std::cerr << "  already here: " << have.bytes << " bytes, sha256 " << have.sha256
                          << " (verified)\n";
                manifest.files[name] = models::ManifestEntry{manifest.version, have.bytes, have.sha256};
                std::error_code ec;
                std::filesystem::remove(dest + ".part", ec);  // a stale partial download is of no use now
                continue;
            }
        }
        const io::DownloadResult r = io::download_file(
            base + name, dest, it != known.end() ? it->second : io::ExpectedFile{}, progress);
        if (tty) {
            std::cerr << "\n";
        }
        std::cerr << "  " << r.bytes << " bytes"
                  << (r.resumed_from > 0 ? " (resumed at " + std::to_string(r.resumed_from) + ")" : "")
                  << ", sha256 " << r.sha256 << (r.verified ? " (verified)" : " (no published hash)") << "\n";
        manifest.files[name] = models::ManifestEntry{manifest.version, r.bytes, r.sha256};
    }
    models::write_manifest(dir, manifest);
    std::cout << "flashvsr: FlashVSR " << manifest.version << " is in " << dir << "\n";
    return 0;
}

}  // namespace flashvsr::cli
