// The option tables (flashvsr/options.h): one row per option, its field in the struct, its help line.
#include <flashvsr/options.h>

#include <sstream>

#include "csrc/core/option_rows.h"

namespace flashvsr {
namespace options_detail {
namespace {

const char* type_word(OptionType t) {
    switch (t) {
        case OptionType::Int:
            return "an int";
        case OptionType::Float:
            return "a number";
        case OptionType::Bool:
            return "a bool";
        case OptionType::KeyValues:
            return "KEY=VALUE pairs";
        default:
            return "a string";
    }
}

}  // namespace

void wrong_type(const OptionSpec& s) {
    throw InputError("option " + s.name + " must be " + type_word(s.type));
}

OptionSpec choice(const char* name, std::vector<std::string> choices, const char* help) {
    OptionSpec s;
    s.name = name;
    s.type = OptionType::Choice;
    s.choices = std::move(choices);
    std::string meta;
    for (const std::string& c : s.choices) {
        meta += (meta.empty() ? "" : "|") + c;
    }
    s.meta = meta;
    s.help = help;
    return s;
}

OptionSpec number(const char* name, OptionType type, double min, double max, double step, const char* help,
                  const char* meta) {
    OptionSpec s;
    s.name = name;
    s.type = type;
    s.has_range = true;
    s.min = min;
    s.max = max;
    s.step = step;
    s.meta = meta != nullptr ? meta : type == OptionType::Int ? "N" : "F";
    s.help = help;
    return s;
}

OptionSpec plain(const char* name, OptionType type, const char* meta, const char* help) {
    OptionSpec s;
    s.name = name;
    s.type = type;
    s.meta = meta;
    s.help = help;
    return s;
}

}  // namespace options_detail

namespace {

using namespace options_detail;

// ---- the tables: one row per option -----------------------------------------------------------------------

const std::vector<Row<EngineOptions>>& engine_rows() {
    using E = EngineOptions;
    static const std::vector<Row<E>> rows = {
        row(&E::model_dir,
            plain("model_dir", OptionType::Text, "DIR", "model folder with the published files")),
        row(&E::version, choice("version", {"v1.0", "v1.1"},
                                "model version (default: the folder's manifest, else "
                                "its name)")),
        row(&E::mode,
            choice("mode", {"tiny", "tiny-long", "full"},
                   "decoder: tiny (TCDecoder), tiny-long, full (Wan VAE decoder: sharper, slower)")),
        row(&E::device,
            plain("device", OptionType::Text, "auto|cpu|cuda|cuda:N", "device (auto: CUDA if available)")),
        row(&E::dtype,
            choice("dtype", {"auto", "bf16", "fp16", "fp32", "int8"},
                   "compute type (auto: bf16 on CUDA, fp32 on CPU; int8: DiT linears in int8, opt-in, "
                   "quality unmeasured)")),
        row(&E::legacy_v10_cache_order,
            plain("legacy_v10_cache_order", OptionType::Bool, "",
                  "reproduce the official v1.0 scripts' LQ-projector cache order bit for bit")),
    };
    return rows;
}

const std::vector<Row<UpscaleOptions>>& upscale_rows() {
    using U = UpscaleOptions;
    using T = OptionType;
    static const std::vector<Row<U>> rows = {
        row(&U::scale, number("scale", T::Int, 2, 4, 1,
                              "upscaling factor: the output is exactly width*scale x height*scale", "2|3|4")),
        row(&U::color_fix,
            choice("color_fix", {"adain", "wavelet", "none"},
                   "colour correction toward the input: adain (per-channel mean/std), wavelet (low "
                   "frequencies from the input), none")),
        row(&U::sparse_ratio, number("sparse_ratio", T::Float, 0.5, 4.0, 0.1,
                                     "sparse attention budget (1.5 = faster, 2.0 = quality)")),
        row(&U::kv_ratio, number("kv_ratio", T::Float, 1.0, 4.0, 0.5,
                                 "K/V cache window length (in 2-latent-frame slices)")),
        row(&U::local_range, number("local_range", T::Int, 3, 31, 2, "attention locality window (odd)")),
        row(&U::seed, number("seed", T::Int, 0, 9223372036854775807.0, 1,
                             "noise seed (noise is keyed by pixel position, so tiling does not change it)")),
        row(&U::tile_size, number("tile_size", T::Int, 0, 4096, 16,
                                  "tile size in input pixels (0: no tiling, or chosen by max_memory)")),
        row(&U::tile_overlap,
            number("tile_overlap", T::Int, 0, 1024, 8, "tile overlap in input pixels (0: automatic)")),
        row(&U::max_memory,
            plain("max_memory", T::Int, "BYTES",
                  "memory budget in bytes for weights + working set (0: none); picks the tile size")),
        row(&U::park_tile_state, choice("park_tile_state", {"auto", "on", "off"},
                                        "keep tile states in host memory between their chunks (auto: on CUDA "
                                        "when the budget needs it)")),
    };
    return rows;
}

}  // namespace

std::string OptionSpec::cli_flag() const {
    if (!flag.empty()) {
        return flag;
    }
    std::string f = "--" + name;
    for (char& c : f) {
        if (c == '_') {
            c = '-';
        }
    }
    return f;
}

std::string OptionSpec::text(const OptionValue& v) {
    if (const int64_t* i = std::get_if<int64_t>(&v)) {
        return std::to_string(*i);
    }
    if (const double* d = std::get_if<double>(&v)) {
        std::ostringstream s;
        s << *d;
        return s.str();
    }
    if (const bool* b = std::get_if<bool>(&v)) {
        return *b ? "true" : "false";
    }
    if (const KeyValues* kv = std::get_if<KeyValues>(&v)) {
        std::string t;
        for (const auto& [key, value] : *kv) {
            t += (t.empty() ? "" : ",") + key + "=" + value;
        }
        return t;
    }
    return std::get<std::string>(v);
}

std::string OptionSpec::default_text() const { return text(default_value); }

const std::vector<OptionSpec>& engine_option_specs() {
    static const std::vector<OptionSpec> s = specs_of(engine_rows(), "engine");
    return s;
}

const std::vector<OptionSpec>& upscale_option_specs() {
    static const std::vector<OptionSpec> s = specs_of(upscale_rows(), "upscale");
    return s;
}

const OptionSpec* find_option_spec(const std::string& name) {
    for (const auto* table : {&engine_option_specs(), &upscale_option_specs()}) {
        for (const OptionSpec& s : *table) {
            if (s.name == name) {
                return &s;
            }
        }
    }
    return nullptr;
}

OptionValue get_option(const EngineOptions& o, const std::string& name) {
    return row_named(engine_rows(), name).get(o);
}
OptionValue get_option(const UpscaleOptions& o, const std::string& name) {
    return row_named(upscale_rows(), name).get(o);
}
void set_option(EngineOptions& o, const std::string& name, const OptionValue& value) {
    row_named(engine_rows(), name).set(o, value);
}
void set_option(UpscaleOptions& o, const std::string& name, const OptionValue& value) {
    row_named(upscale_rows(), name).set(o, value);
}

}  // namespace flashvsr
