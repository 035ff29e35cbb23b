// The CLI's subcommands. Each returns the process exit code (0 ok, 1 failure, 2 usage, 130 interrupted)
// and may throw flashvsr::Error or cli::UsageError, which main() reports in one line.
#pragma once

#include <string>
#include <vector>

namespace flashvsr::cli {

int cmd_version(const std::vector<std::string>& args);
int cmd_build_info(const std::vector<std::string>& args);
int cmd_info(const std::vector<std::string>& args);
int cmd_make_test_weights(const std::vector<std::string>& args);

}  // namespace flashvsr::cli
