// Python values -> the option tables (flashvsr/options.h), shared by bind_options and bind_pipeline.
#pragma once

#include <flashvsr/flashvsr.h>
#include <flashvsr/options.h>
#include <pybind11/pybind11.h>

#include <string>

namespace flashvsr::python {

/// `value` as option `s` takes it (int, float, bool, str, dict of str; a str or os.PathLike for text, also a
/// number for number_text; None = s.none_is, else not set for the engine and upscale options);
/// TypeError "<where>: option 'name' must be ..., got T" otherwise.
OptionValue option_value(const std::string& where, const OptionSpec& s, const pybind11::handle& value);

/// An option value as Python sees it (KeyValues: a dict).
pybind11::object option_to_py(const OptionValue& value);

/// Sets option `name` on `engine` or `upscale` (whichever holds it; null = not accepted here). Returns false
/// for a name of neither table.
bool set_py_option(const std::string& where, EngineOptions* engine, UpscaleOptions* upscale,
                   const std::string& name, const pybind11::handle& value);

}  // namespace flashvsr::python
