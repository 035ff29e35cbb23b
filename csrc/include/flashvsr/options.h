// The options described once, as tables: name, type, default, choices, range, help, CLI flag. Three
// tables: the engine's (EngineOptions) and the upscale's (UpscaleOptions) here, the transcode job's
// (codec, crf, start, batch, ...: pipeline/transcode_options.h). Every face is built from them: the CLI's
// flags, parsing and --help; Python's option classes, flashvsr.load()/Engine() and upscale_file()
// keyword checks (UPSCALE_FILE_OPTIONS); the ComfyUI nodes' inputs (defaults, ranges, choices, tooltips)
// and their execute(**options) checks. The values' defaults are the structs' own; validate() stays the
// structs'. Adding an option: the field in its struct, its validate() rule, and one row (with its help
// line) in options.cpp or transcode_options.cpp; tests/python/test_options.py proves every face has it.
#pragma once

#include <flashvsr/flashvsr.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace flashvsr {

enum class OptionType { Int, Float, Bool, Choice, Text, KeyValues };

/// KEY=VALUE pairs in order (an encoder's private options: the CLI's repeated -e, a Python dict).
using KeyValues = std::vector<std::pair<std::string, std::string>>;

/// A value of an option (Int: int64_t, Float: double, Bool: bool, Choice and Text: std::string,
/// KeyValues: KeyValues).
using OptionValue = std::variant<int64_t, double, bool, std::string, KeyValues>;

/// The faces that take an option (a bit set): the CLI's flags, the Python keywords.
enum OptionFace : unsigned { kCliFace = 1, kPythonFace = 2, kEveryFace = 3 };

/// Where an option of the transcode job applies; the CLI refuses it elsewhere.
enum class OptionScope { Any, VideoOutput, SequenceInput, SequenceOutput };

struct OptionSpec {
    std::string name;   // snake_case: the Python keyword and ComfyUI input; the CLI flag is cli_flag()
    std::string group;  // "engine" (EngineOptions) | "upscale" (UpscaleOptions) | "transcode" (the job)
    OptionType type = OptionType::Text;
    OptionValue default_value;         // the struct's default
    std::vector<std::string> choices;  // Choice: every accepted value
    bool has_range = false;            // Int/Float: the range a UI offers (validate() has the exact rule)
    double min = 0, max = 0, step = 0;
    std::string meta;  // the CLI's value placeholder: "N", "F", "a|b|c", "DIR"
    std::string help;  // one line: --help, docstrings, tooltips
    // The transcode job's rows use these (the engine and upscale rows keep the defaults):
    std::string flag;         // the CLI flag when it is not --name ("-c:v"; a Bool defaulting to true:
                              // "--no-audio", present = false, its --help line "do not " + help)
    std::string cli_default;  // the default --help shows when it is not default_text() ("end")
    unsigned faces = kEveryFace;
    OptionScope scope = OptionScope::Any;
    std::optional<int64_t> at_least;     // Int: the lower bound the CLI checks before a run (--batch >= 1)
    std::optional<OptionValue> none_is;  // what Python's None sets (else: 0 for Int, "" for text, an error)
    bool seconds = false;                // Float: a time; the CLI also takes [hh:]mm:ss[.ms]
    bool number_text = false;            // Text: Python also takes a number ("24000/1001" or 29.97)

    std::string cli_flag() const;      // flag, else "--color-fix" for color_fix
    std::string default_text() const;  // "4", "2", "adain", "false"
    static std::string text(const OptionValue& v);
};

/// The tables, in the order the UIs show them (the transcode job's: pipeline/transcode_options.h).
const std::vector<OptionSpec>& engine_option_specs();
const std::vector<OptionSpec>& upscale_option_specs();
/// The spec named `name` in either table (nullptr when none).
const OptionSpec* find_option_spec(const std::string& name);

/// Read or set an option of a struct by name. set_option throws InputError naming the option for an
/// unknown name or a value of the wrong type (it does not validate the value: validate() does).
OptionValue get_option(const EngineOptions& o, const std::string& name);
OptionValue get_option(const UpscaleOptions& o, const std::string& name);
void set_option(EngineOptions& o, const std::string& name, const OptionValue& value);
void set_option(UpscaleOptions& o, const std::string& name, const OptionValue& value);

}  // namespace flashvsr
