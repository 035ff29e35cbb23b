// Where a model folder is looked for when none is named: the CLI's and flashvsr.upscale_file's search order.
#pragma once

#include <string>

namespace flashvsr::pipeline {

/// The model folder when none is given: $FLASHVSR_MODEL_DIR, ./models/<name>, $XDG_DATA_HOME/flashvsr/<name>
/// (~/.local/share), $XDG_CACHE_HOME/flashvsr/<name> (~/.cache); <name> is FlashVSR-v1.1 (FlashVSR for
/// version "v1.0"). Throws ModelError listing the places tried.
std::string find_model_dir(const std::string& version);

/// flashvsr's cache folder: $XDG_CACHE_HOME/flashvsr, else ~/.cache/flashvsr, else <temp>/flashvsr.
std::string cache_dir();

/// Where `flashvsr download` puts a version by default: cache_dir()/<name>, the last place of the search.
std::string default_model_dir(const std::string& version);

}  // namespace flashvsr::pipeline
