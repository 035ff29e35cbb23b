// `flashvsr info` and `flashvsr make-test-weights`.
#include <flashvsr/flashvsr.h>

#include <iostream>

#include "csrc/cli/args.h"
#include "csrc/cli/commands.h"
#include "models/model_info.h"
#include "models/test_weights.h"

namespace flashvsr::cli {

int cmd_info(const std::vector<std::string>& argv) {
    const Args args(argv, {"--version"}, {"--json"});
    if (args.positionals().size() != 1) {
        throw UsageError("usage: flashvsr info MODEL_DIR [--version v1.0|v1.1] [--json]");
    }
    std::optional<models::ModelVersion> version;
    if (args.has("--version")) {
        version = models::parse_model_version(args.get("--version", ""));
    }
    const models::ModelInfo info = models::inspect_model_dir(args.positionals()[0], version);
    std::cout << (args.has("--json") ? models::to_json(info) + "\n" : models::to_text(info));
    return 0;
}

int cmd_make_test_weights(const std::vector<std::string>& argv) {
    const Args args(argv, {"--size", "--version", "--seed", "--prompt-tokens"}, {});
    if (args.positionals().size() != 1) {
        throw UsageError(
            "usage: flashvsr make-test-weights DIR [--size tiny|small|full] [--version v1.0|v1.1] [--seed "
            "N]");
    }
    models::TestWeightsOptions o;
    o.size = args.get("--size", o.size);
    o.version = args.get("--version", o.version);
    const int64_t seed = args.get_int("--seed", 0);
    if (seed < 0) {
        throw UsageError("--seed must be >= 0, got " + std::to_string(seed));
    }
    o.seed = static_cast<uint64_t>(seed);
    o.prompt_tokens = args.get_int("--prompt-tokens", o.prompt_tokens);
    const auto files = models::make_test_weights(args.positionals()[0], o);
    std::cout << "wrote random " << o.size << " FlashVSR " << o.version << " weights (seed " << o.seed
              << ", no real detail) to " << args.positionals()[0] << ":\n";
    for (const auto& f : files) {
        std::cout << "  " << f << "\n";
    }
    return 0;
}

}  // namespace flashvsr::cli
