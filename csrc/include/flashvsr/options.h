// The engine's and the upscale's options described once, as a table: name, type, default, choices, range,
// help. The CLI builds its flags and --help from it, the Python module its option classes and keyword
// checks, the ComfyUI nodes their inputs (defaults, ranges, choices, tooltips). The values' defaults are
// the structs' own (flashvsr.h); validate() stays the structs'. Adding an option: the field in flashvsr.h,
// its validate() rule, and one row in options.cpp.
#pragma once

#include <flashvsr/flashvsr.h>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace flashvsr {

enum class OptionType { Int, Float, Bool, Choice, Text };

/// A value of an option (Int: int64_t, Float: double, Bool: bool, Choice and Text: std::string).
using OptionValue = std::variant<int64_t, double, bool, std::string>;

struct OptionSpec {
    std::string name;   // snake_case: the Python keyword and ComfyUI input; the CLI flag is cli_flag()
    std::string group;  // "engine" (EngineOptions) | "upscale" (UpscaleOptions)
    OptionType type = OptionType::Text;
    OptionValue default_value;         // the struct's default
    std::vector<std::string> choices;  // Choice: every accepted value
    bool has_range = false;            // Int/Float: the range a UI offers (validate() has the exact rule)
    double min = 0, max = 0, step = 0;
    std::string meta;  // the CLI's value placeholder: "N", "F", "a|b|c", "DIR"
    std::string help;  // one line: --help, docstrings, tooltips

    std::string cli_flag() const;      // "--color-fix" for color_fix
    std::string default_text() const;  // "4", "2", "adain", "false"
    static std::string text(const OptionValue& v);
};

/// The tables, in the order the UIs show them.
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
