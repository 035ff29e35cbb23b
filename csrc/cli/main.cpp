// The `flashvsr` command-line tool.
// Exit codes: 0 success, 1 failure, 2 usage error, 130 interrupted.
#include <flashvsr/flashvsr.h>

#include <c10/util/Exception.h>

#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "csrc/cli/args.h"
#include "csrc/cli/commands.h"

namespace {

struct Command {
    const char* name;
    const char* usage;
    const char* summary;
    int (*run)(const std::vector<std::string>&);
};

const Command kCommands[] = {
    {"upscale", "upscale IN -o OUT [options]   (flashvsr upscale --help lists every option)",
     "upscale a video file or an image sequence (PNG/TIFF/EXR): audio/subtitles copied, timestamps kept, "
     "Ctrl-C keeps the frames done",
     &flashvsr::cli::cmd_upscale},
    {"demo", "demo [-o OUT]",
     "synthetic clip + tiny random weights, upscaled end to end (checks the installation; no real detail)",
     &flashvsr::cli::cmd_demo},
    {"download", "download [--version v1.1] [--to DIR]",
     "fetch the published weights (resumable, size and SHA-256 checked) into the folder `upscale` searches",
     &flashvsr::cli::cmd_download},
    {"info", "info MODEL_DIR [--version v1.0|v1.1] [--json]",
     "show a model folder: files, version, tensor/parameter counts, dtypes, derived configuration",
     &flashvsr::cli::cmd_info},
    {"make-test-weights", "make-test-weights DIR [--size tiny|small|full] [--version v1.1] [--seed 0]",
     "write random weights in the published file formats (for tests and demos; no real detail)",
     &flashvsr::cli::cmd_make_test_weights},
    {"build-info", "build-info", "print the build information as JSON (torch, FFmpeg, OpenCV, CUDA)",
     &flashvsr::cli::cmd_build_info},
};

void print_help(std::ostream& os) {
    os << "flashvsr " << flashvsr::version()
       << " — FlashVSR streaming video super-resolution (C++/LibTorch engine)\n\n"
          "Usage:\n"
          "  flashvsr <command> [options]\n"
          "  flashvsr --version | -V     print the version and the build's torch/CUDA configuration\n"
          "  flashvsr --help | -h        print this help\n\n"
          "Commands:\n";
    for (const Command& c : kCommands) {
        os << "  " << c.usage << "\n      " << c.summary << "\n";
    }
    os << "\nExit codes: 0 success, 1 failure, 2 usage error, 130 interrupted.\n";
}

}  // namespace

namespace flashvsr::cli {

int cmd_version(const std::vector<std::string>&) {
    const BuildInfo info = build_info();
    std::cout << "flashvsr " << info.version << " (torch " << info.torch << ", CUDA kernels: "
              << (info.cuda_compiled ? "compiled for " + info.cuda_archs : std::string("not compiled"))
              << ", CUDA device: "
              << (info.cuda_available ? std::to_string(info.cuda_device_count) + " available"
                                      : std::string("none"))
              << ")\n";
    return 0;
}

int cmd_build_info(const std::vector<std::string>& args) {
    if (!args.empty()) {
        throw UsageError("build-info: unexpected argument '" + args[0] + "'");
    }
    std::cout << build_info_json(build_info()) << "\n";
    return 0;
}

}  // namespace flashvsr::cli

int main(int argc, char** argv) {
    if (argc < 2) {
        print_help(std::cerr);
        return 2;
    }
    const std::string cmd = argv[1];
    const std::vector<std::string> rest(argv + 2, argv + argc);
    try {
        if (cmd == "--help" || cmd == "-h" || cmd == "help") {
            print_help(std::cout);
            return 0;
        }
        if (cmd == "--version" || cmd == "-V" || cmd == "version") {
            return flashvsr::cli::cmd_version(rest);
        }
        for (const Command& c : kCommands) {
            if (cmd == c.name) {
                return c.run(rest);
            }
        }
        std::cerr << "flashvsr: unknown command '" << cmd << "' (see flashvsr --help)\n";
        return 2;
    } catch (const flashvsr::cli::UsageError& e) {
        std::cerr << "flashvsr " << cmd << ": " << e.what() << "\n";
        return 2;
    } catch (const flashvsr::InputError& e) {
        std::cerr << "flashvsr " << cmd << ": error: " << e.what() << "\n";
        return 1;
    } catch (const flashvsr::Cancelled& e) {
        std::cerr << "flashvsr " << cmd << ": interrupted: " << e.what() << "\n";
        return 130;
    } catch (const flashvsr::Error& e) {
        std::cerr << "flashvsr " << cmd << ": error: " << e.what() << "\n";
        return 1;
    } catch (const c10::Error& e) {
        std::cerr << "flashvsr " << cmd << ": error: " << e.what_without_backtrace() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "flashvsr " << cmd << ": internal error: " << e.what() << "\n";
        return 1;
    }
}
