// The CLI's subcommands. Each returns the process exit code (0 ok, 1 failure, 2 usage, 130 interrupted)
// and may throw flashvsr::Error or cli::UsageError, which main() reports in one line.
#pragma once

#include <flashvsr/flashvsr.h>

#include <string>
#include <vector>

#include "csrc/pipeline/transcode.h"

namespace flashvsr::cli {

int cmd_version(const std::vector<std::string>& args);
int cmd_build_info(const std::vector<std::string>& args);
int cmd_info(const std::vector<std::string>& args);
int cmd_make_test_weights(const std::vector<std::string>& args);
int cmd_upscale(const std::vector<std::string>& args);
int cmd_demo(const std::vector<std::string>& args);
int cmd_download(const std::vector<std::string>& args);

/// One `upscale` run as parsed from the command line (or set up by `demo`): the library's transcode job and
/// what only the CLI does with it.
struct UpscaleRun {
    pipeline::TranscodeJob job;
    std::string report;               // JSON summary path ("" = none)
    bool progress = true;             // progress lines on stderr
    double progress_interval_s = -1;  // < 0: 0.25 s on a terminal, 5 s otherwise
};

/// pipeline::transcode with SIGINT/SIGTERM as cancel, the progress line, notes and warnings on stderr and
/// the --report file. Returns 0, or 130 when cancelled (the frames done are in OUT.partial.EXT, or
/// DIR.partial/ for an image sequence). Throws flashvsr::Error (no output file is left behind) or
/// UsageError.
int run_upscale(const UpscaleRun& run);

}  // namespace flashvsr::cli
