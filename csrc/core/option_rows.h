// How an option table is written (flashvsr/options.h): a row is a spec plus how to read and set its field,
// and the spec builders the tables use. Shared by the engine/upscale tables (core/options.cpp) and the
// transcode job's table (pipeline/transcode_options.cpp).
#pragma once

#include <flashvsr/options.h>

#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace flashvsr::options_detail {

template <class S>
struct Row {
    OptionSpec spec;
    std::function<OptionValue(const S&)> get;
    std::function<void(S&, const OptionValue&)> set;
};

/// "option NAME must be an int" (InputError).
[[noreturn]] void wrong_type(const OptionSpec& s);

/// A field's value as an option value (integers widen to int64_t).
template <class M>
OptionValue to_value(const M& v) {
    if constexpr (std::is_same_v<M, std::string> || std::is_same_v<M, bool> || std::is_same_v<M, double> ||
                  std::is_same_v<M, KeyValues>) {
        return v;
    } else {
        return static_cast<int64_t>(v);
    }
}

/// Sets a field from an option value of the spec's type (an int is a number; an unsigned field refuses a
/// negative value).
template <class M>
void from_value(M& field, const OptionSpec& spec, const OptionValue& v) {
    if constexpr (std::is_same_v<M, std::string> || std::is_same_v<M, bool> || std::is_same_v<M, KeyValues>) {
        if (!std::holds_alternative<M>(v)) {
            wrong_type(spec);
        }
        field = std::get<M>(v);
    } else if constexpr (std::is_same_v<M, double>) {
        if (const int64_t* i = std::get_if<int64_t>(&v)) {
            field = static_cast<double>(*i);
        } else if (const double* d = std::get_if<double>(&v)) {
            field = *d;
        } else {
            wrong_type(spec);
        }
    } else {
        const int64_t* i = std::get_if<int64_t>(&v);
        if (i == nullptr) {
            wrong_type(spec);
        }
        if (std::is_unsigned_v<M> && *i < 0) {
            throw InputError(spec.name + " must be >= 0, got " + std::to_string(*i));
        }
        field = static_cast<M>(*i);
    }
}

/// A pointer to a field M of S (an alias, so that every clang-format lays the declarations out alike).
template <class S, class M>
using FieldOf = M S::*;

/// The row of a field of S.
template <class S, class M>
Row<S> row(FieldOf<S, M> field, OptionSpec spec) {
    return {spec, [field](const S& o) { return to_value(o.*field); },
            [field, spec](S& o, const OptionValue& v) { from_value(o.*field, spec, v); }};
}

/// The row of a field of a member of S (job.encoder.codec).
template <class S, class P, class M>
Row<S> row(FieldOf<S, P> part, FieldOf<P, M> field, OptionSpec spec) {
    return {spec, [part, field](const S& o) { return to_value(o.*part.*field); },
            [part, field, spec](S& o, const OptionValue& v) { from_value(o.*part.*field, spec, v); }};
}

/// The specs of a table with the defaults of a default-constructed S.
template <class S>
std::vector<OptionSpec> specs_of(const std::vector<Row<S>>& rows, const char* group) {
    std::vector<OptionSpec> out;
    const S defaults;
    for (const Row<S>& r : rows) {
        OptionSpec s = r.spec;
        s.group = group;
        s.default_value = r.get(defaults);
        out.push_back(std::move(s));
    }
    return out;
}

/// The row named `name`; InputError "unknown option 'name'" when none.
template <class S>
const Row<S>& row_named(const std::vector<Row<S>>& rows, const std::string& name) {
    for (const Row<S>& r : rows) {
        if (r.spec.name == name) {
            return r;
        }
    }
    throw InputError("unknown option '" + name + "'");
}

// ---- spec builders ------------------------------------------------------------------------------------

/// A choice among `choices` (meta "a|b|c").
OptionSpec choice(const char* name, std::vector<std::string> choices, const char* help);
/// An Int or Float with the range a UI offers; meta "N"/"F" unless given.
OptionSpec number(const char* name, OptionType type, double min, double max, double step, const char* help,
                  const char* meta = nullptr);
/// Any other option: its type and the CLI's value placeholder ("" for a Bool).
OptionSpec plain(const char* name, OptionType type, const char* meta, const char* help);

}  // namespace flashvsr::options_detail
