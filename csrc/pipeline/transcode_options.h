// The transcode job's options as a table (flashvsr/options.h): the encoder's, the decoder's, the image
// sequences' and the job's own, with the CLI's flags (-c:v, -e, --no-audio, ...) and which face takes
// each. The CLI's upscale flags and --help, flashvsr.upscale_file()'s keywords (UPSCALE_FILE_OPTIONS) and
// the ComfyUI video node's crf input are built from it. Adding a job option: the field in TranscodeJob
// (or its parts), its rule in TranscodeJob::validate(), and one row in transcode_options.cpp.
#pragma once

#include <flashvsr/options.h>

#include <string>
#include <vector>

#include "csrc/pipeline/transcode.h"

namespace flashvsr::pipeline {

/// The rows, in the order of `flashvsr upscale --help` (group "transcode").
const std::vector<OptionSpec>& transcode_option_specs();
/// The row named `name` (nullptr when none).
const OptionSpec* find_transcode_option_spec(const std::string& name);

/// Read or set a job option by name: InputError for an unknown name, a value of the wrong type, or a value
/// that cannot be read (fps "abc"); the other rules are TranscodeJob::validate()'s.
OptionValue get_option(const TranscodeJob& job, const std::string& name);
void set_option(TranscodeJob& job, const std::string& name, const OptionValue& value);

}  // namespace flashvsr::pipeline
