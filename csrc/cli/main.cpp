// The `flashvsr` command-line tool. Subcommands are added by later issues (upscale, info, demo, ...).
// Exit codes: 0 success, 1 failure, 2 usage error, 130 interrupted.
#include <flashvsr/flashvsr.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

namespace {

void print_help(std::ostream& os) {
    os << "flashvsr " << flashvsr::version()
       << " — FlashVSR streaming video super-resolution (C++/LibTorch engine)\n"
          "\n"
          "Usage:\n"
          "  flashvsr <command> [options]\n"
          "  flashvsr --version | -V     print the version and the build's torch/CUDA configuration\n"
          "  flashvsr --help | -h        print this help\n"
          "\n"
          "Commands:\n"
          "  build-info                  print the build information as JSON (versions of torch, FFmpeg,\n"
          "                              OpenCV; whether CUDA kernels are compiled and a GPU is usable)\n"
          "\n"
          "Exit codes: 0 success, 1 failure, 2 usage error, 130 interrupted.\n";
}

int cmd_version() {
    const flashvsr::BuildInfo info = flashvsr::build_info();
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
        std::cerr << "flashvsr build-info: unexpected argument '" << args[0] << "'\n";
        return 2;
    }
    std::cout << flashvsr::build_info_json(flashvsr::build_info()) << "\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc < 2) {
            print_help(std::cerr);
            return 2;
        }
        const std::string cmd = argv[1];
        const std::vector<std::string> rest(argv + 2, argv + argc);
        if (cmd == "--help" || cmd == "-h" || cmd == "help") {
            print_help(std::cout);
            return 0;
        }
        if (cmd == "--version" || cmd == "-V" || cmd == "version") {
            return cmd_version();
        }
        if (cmd == "build-info") {
            return cmd_build_info(rest);
        }
        std::cerr << "flashvsr: unknown command '" << cmd << "' (see flashvsr --help)\n";
        return 2;
    } catch (const flashvsr::Error& e) {
        std::cerr << "flashvsr: error: " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "flashvsr: internal error: " << e.what() << "\n";
        return 1;
    }
}
