// `flashvsr download`: the published FlashVSR files over http(s) through libavformat's avio (resumable).
#include <flashvsr/flashvsr.h>

#include <unistd.h>

#include <iomanip>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "io/av_ptr.h"
#include "io/download.h"
#include "models/model_dir.h"

namespace flashvsr::cli {

int cmd_download(const std::vector<std::string>& argv) {
    const Args args(argv, {"--version", "--to", "--base-url"}, {"--help", "-h"});
    const std::string version = args.get("--version", "v1.1");
    const bool v10 = models::parse_model_version(version) == models::ModelVersion::kV10;
    const std::string ver = v10 ? "v1.0" : "v1.1";
    const std::string repo = v10 ? "JunhaoZhuang/FlashVSR" : "JunhaoZhuang/FlashVSR-v1.1";
    const std::string default_base = "https://huggingface.co/" + repo + "/resolve/main/";
    if (args.has("--help") || args.has("-h")) {
        std::cout
            << "usage: flashvsr download [--version v1.0|v1.1] [--to DIR] [--base-url URL]\n\n"
               "Fetches the five published files (DiT, LQ projector, TCDecoder, Wan2.1 VAE, prompt) into "
               "DIR\n"
               "[default: "
            << default_model_dir(ver)
            << "], where `flashvsr upscale` finds them.\n"
               "Interrupted downloads resume (FILE.part); sizes are checked against the server's.\n"
               "  --version   v1.0|v1.1 [default: v1.1]\n"
               "  --to        the model folder to fill\n"
               "  --base-url  where the files are [default: https://huggingface.co/<repo>/resolve/main/]\n";
        return 0;
    }
    if (!args.positionals().empty()) throw UsageError("unexpected argument '" + args.positionals()[0] + "'");
    std::string base = args.get("--base-url", default_base);
    if (!base.empty() && base.back() != '/') base += '/';
    const std::string dir = args.get("--to", default_model_dir(ver));
    io::set_av_logging(false);
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
            if (!tty) return;
            std::cerr << "\r  " << done / 1048576 << " MiB";
            if (total > 0) std::cerr << " of " << total / 1048576 << " MiB (" << 100 * done / total << "%)";
            std::cerr << "\033[K" << std::flush;
        };
        const io::DownloadResult r = io::download_file(base + name, dest, -1, progress);
        if (tty) std::cerr << "\n";
        std::cerr << "  " << r.bytes << " bytes"
                  << (r.resumed_from > 0 ? " (resumed at " + std::to_string(r.resumed_from) + ")" : "")
                  << "\n";
        manifest.files[name] = models::ManifestEntry{manifest.version, r.bytes, ""};
    }
    models::write_manifest(dir, manifest);
    std::cout << "flashvsr: FlashVSR " << manifest.version << " is in " << dir << "\n";
    return 0;
}

}  // namespace flashvsr::cli
