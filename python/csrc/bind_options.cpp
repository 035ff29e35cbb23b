// flashvsr._C.option_specs / normalize_options: the option tables (flashvsr/options.h,
// pipeline/transcode_options.h) for Python: the option classes (flashvsr.options), load()/Engine() and
// upscale_file's keywords and the ComfyUI schema read them.
#include <flashvsr/flashvsr.h>
#include <flashvsr/options.h>
#include <torch/python.h>

#include "csrc/pipeline/transcode_options.h"
#include "python/csrc/py_options.h"

namespace py = pybind11;

namespace flashvsr::python {
namespace {

const char* type_name(OptionType t) {
    switch (t) {
        case OptionType::Int:
            return "int";
        case OptionType::Float:
            return "float";
        case OptionType::Bool:
            return "bool";
        case OptionType::Choice:
            return "choice";
        case OptionType::KeyValues:
            return "dict";
        default:
            return "str";
    }
}

}  // namespace

py::object option_to_py(const OptionValue& v) {
    if (const KeyValues* kv = std::get_if<KeyValues>(&v)) {
        py::dict d;
        for (const auto& [key, value] : *kv) {
            d[py::str(key)] = value;
        }
        return d;
    }
    return std::visit([](const auto& x) -> py::object { return py::cast(x); }, v);
}

namespace {

py::dict spec_dict(const OptionSpec& s) {
    py::dict d;
    d["name"] = s.name;
    d["group"] = s.group;
    d["type"] = type_name(s.type);
    d["default"] = option_to_py(s.default_value);
    d["choices"] = s.choices;
    d["range"] = s.has_range ? py::object(py::make_tuple(s.min, s.max, s.step)) : py::object(py::none());
    d["cli_flag"] = s.cli_flag();
    d["meta"] = s.meta;
    d["help"] = s.help;
    d["cli"] = (s.faces & kCliFace) != 0;        // taken by `flashvsr upscale` (as cli_flag)
    d["python"] = (s.faces & kPythonFace) != 0;  // taken as a Python keyword
    return d;
}

template <class S>
py::dict values(const S& o, const std::vector<OptionSpec>& specs) {
    py::dict d;
    for (const OptionSpec& s : specs) {
        d[py::str(s.name)] = option_to_py(get_option(o, s.name));
    }
    return d;
}

}  // namespace

[[noreturn]] void option_type_error(const std::string& where, const OptionSpec& s, const py::handle& h) {
    throw py::type_error(where + ": option '" + s.name + "' must be " +
                         (s.type == OptionType::Int         ? std::string("an int")
                          : s.type == OptionType::Float     ? std::string("a number")
                          : s.type == OptionType::Bool      ? std::string("a bool")
                          : s.type == OptionType::KeyValues ? std::string("a dict of str to str")
                          : s.number_text                   ? std::string("a str or a number")
                                                            : std::string("a str")) +
                         ", got " + std::string(py::str(py::type::handle_of(h).attr("__name__"))));
}

OptionValue option_value(const std::string& where, const OptionSpec& s, const py::handle& h) {
    PyObject* p = h.ptr();
    if (h.is_none()) {  // None: "not set" (version: from the folder, max_memory: no budget, end: to the end)
        if (s.none_is) {
            return *s.none_is;
        }
        if (s.group == "transcode") {
            option_type_error(where, s, h);
        }
        if (s.type == OptionType::Int) {
            return int64_t{0};
        }
        if (s.type == OptionType::Choice || s.type == OptionType::Text) {
            return std::string();
        }
        option_type_error(where, s, h);
    }
    switch (s.type) {
        case OptionType::Int:
            if (PyBool_Check(p) || !PyLong_Check(p)) {
                option_type_error(where, s, h);
            }
            return h.cast<int64_t>();
        case OptionType::Float:
            if (PyBool_Check(p) || !(PyLong_Check(p) || PyFloat_Check(p))) {
                option_type_error(where, s, h);
            }
            return h.cast<double>();
        case OptionType::Bool:
            if (!PyBool_Check(p)) {
                option_type_error(where, s, h);
            }
            return h.cast<bool>();
        case OptionType::KeyValues: {
            if (!PyDict_Check(p)) {
                option_type_error(where, s, h);
            }
            KeyValues kv;
            for (const auto& [key, value] : h.cast<py::dict>()) {
                if (!PyUnicode_Check(key.ptr()) || !PyUnicode_Check(value.ptr())) {
                    option_type_error(where, s, PyUnicode_Check(key.ptr()) ? value : key);
                }
                kv.emplace_back(key.cast<std::string>(), value.cast<std::string>());
            }
            return kv;
        }
        default:
            if (s.number_text && !PyBool_Check(p) && (PyLong_Check(p) || PyFloat_Check(p))) {
                return std::string(py::str(h));  // 25 -> "25", 29.97 -> "29.97"
            }
            if (PyUnicode_Check(p)) {
                return h.cast<std::string>();
            }
            if (s.type == OptionType::Text && py::hasattr(h, "__fspath__")) {  // paths
                return std::string(py::str(py::module_::import("os").attr("fspath")(h)));
            }
            option_type_error(where, s, h);
    }
}

bool set_py_option(const std::string& where, EngineOptions* engine, UpscaleOptions* upscale,
                   const std::string& name, const py::handle& value) {
    const OptionSpec* s = find_option_spec(name);
    if (s == nullptr) {
        return false;
    }
    if (s->group == "engine") {
        if (engine == nullptr) {
            return false;
        }
        set_option(*engine, name, option_value(where, *s, value));
    } else {
        if (upscale == nullptr) {
            return false;
        }
        set_option(*upscale, name, option_value(where, *s, value));
    }
    return true;
}

void bind_options(py::module_& m) {
    m.def(
        "option_specs",
        [] {
            py::list l;
            for (const auto* table :
                 {&engine_option_specs(), &upscale_option_specs(), &pipeline::transcode_option_specs()}) {
                for (const OptionSpec& s : *table) {
                    l.append(spec_dict(s));
                }
            }
            return l;
        },
        "The engine, upscale and transcode job options, described once: name, group, type, default, "
        "choices, range (min, max, step), cli_flag, meta, help, cli and python (the faces that take it).");
    m.def(
        "normalize_options",
        [](const std::string& group, const py::dict& kwargs) {
            // the options as the library sees them after setting `kwargs` (unknown name: TypeError),
            // validated
            const std::string where = group + " options";
            EngineOptions e;
            UpscaleOptions u;
            for (const auto& [key, value] : kwargs) {
                const std::string name = py::str(key);
                if (!set_py_option(where, group == "engine" ? &e : nullptr, group == "upscale" ? &u : nullptr,
                                   name, value)) {
                    throw py::type_error(where + ": unexpected keyword argument '" + name + "'");
                }
            }
            if (group == "engine") {
                if (!e.model_dir.empty()) {
                    e.validate();
                }
                return values(e, engine_option_specs());
            }
            if (group != "upscale") {
                throw py::value_error("group must be 'engine' or 'upscale', got '" + group + "'");
            }
            u.validate();
            return values(u, upscale_option_specs());
        },
        py::arg("group"), py::arg("kwargs"));
}

}  // namespace flashvsr::python
