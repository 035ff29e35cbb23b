// The CLI's subcommands. Each returns the process exit code (0 ok, 1 failure, 2 usage, 130 interrupted)
// and may throw flashvsr::Error or cli::UsageError, which main() reports in one line.
#pragma once

#include <flashvsr/flashvsr.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/video_decoder.h"
#include "io/video_encoder.h"

namespace flashvsr::cli {

int cmd_version(const std::vector<std::string>& args);
int cmd_build_info(const std::vector<std::string>& args);
int cmd_info(const std::vector<std::string>& args);
int cmd_make_test_weights(const std::vector<std::string>& args);
int cmd_upscale(const std::vector<std::string>& args);
int cmd_demo(const std::vector<std::string>& args);
int cmd_download(const std::vector<std::string>& args);

/// Where `download` puts a version by default: $XDG_CACHE_HOME/flashvsr/<name> (~/.cache/flashvsr/<name>),
/// <name> = FlashVSR-v1.1 (FlashVSR for v1.0); the last place of the model search order.
std::string default_model_dir(const std::string& version);

/// One `upscale` run, as parsed from the command line (or set up by `demo`). `input` is a video file, a
/// folder of images or a pattern like in/%05d.png; `output` a video file, a pattern like out/%05d.png or
/// a folder "out/" (io/image_sequence.h).
struct UpscaleJob {
    std::string input, output;
    EngineOptions engine;
    UpscaleOptions upscale;
    io::EncoderOptions encoder;
    io::DecoderOptions decoder;
    std::string report;               // JSON summary path ("" = none)
    bool progress = true;             // progress lines on stderr
    double progress_interval_s = -1;  // < 0: 0.25 s on a terminal, 5 s otherwise
    int64_t batch = 4;                // frames decoded per step
    int64_t pipeline_depth = 2;       // batches queued before and after the engine (0: no threads)
    int64_t start_number = -1;        // image-sequence input pattern: first number (-1: the lowest present)
    int fps_num = 25, fps_den = 1;    // image-sequence input: its frame rate (for a video output)
    int bit_depth = 0;                // image-sequence output: 8/16 (PNG, TIFF), 16/32 (EXR); 0 = default
    CancelToken* cancel = nullptr;    // external token (SIGINT/SIGTERM cancel it too); null = an internal one
};

/// Decode -> engine -> encode. Returns 0, or 130 when cancelled (the frames done are in OUT.partial.EXT, or
/// DIR.partial/ for an image sequence).
/// Throws flashvsr::Error (no output file is left behind) or UsageError.
int run_upscale(const UpscaleJob& job);

/// The model folder when --model-dir is absent: $FLASHVSR_MODEL_DIR, ./models/<name>,
/// $XDG_DATA_HOME/flashvsr/<name>, $XDG_CACHE_HOME/flashvsr/<name>. Throws ModelError listing the places.
std::string find_model_dir(const std::string& version);

}  // namespace flashvsr::cli
