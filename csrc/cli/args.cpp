#include "csrc/cli/args.h"

namespace flashvsr::cli {

Args::Args(const std::vector<std::string>& argv, const std::set<std::string>& valued,
           const std::set<std::string>& flags, const std::set<std::string>& repeated) {
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a.size() < 2 || a[0] != '-' || a == "-") {
            positionals_.push_back(a);
            continue;
        }
        std::string name = a, value;
        bool inline_value = false;
        if (const auto eq = a.find('='); eq != std::string::npos) {
            name = a.substr(0, eq);
            value = a.substr(eq + 1);
            inline_value = true;
        }
        if (flags.count(name)) {
            if (inline_value) {
                throw UsageError("option " + name + " takes no value");
            }
            flags_.insert(name);
        } else if (valued.count(name) || repeated.count(name)) {
            if (!inline_value) {
                if (i + 1 >= argv.size()) {
                    throw UsageError("option " + name + " needs a value");
                }
                value = argv[++i];
            }
            values_[name] = value;
            if (repeated.count(name)) {
                repeated_[name].push_back(value);
            }
        } else {
            throw UsageError("unknown option '" + name + "'");
        }
    }
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
    const auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
}

int64_t Args::get_int(const std::string& name, int64_t fallback) const {
    const auto it = values_.find(name);
    if (it == values_.end()) {
        return fallback;
    }
    try {
        size_t used = 0;
        const long long v = std::stoll(it->second, &used);
        if (used != it->second.size()) {
            throw std::invalid_argument("trailing");
        }
        return v;
    } catch (const std::exception&) {
        throw UsageError("option " + name + " needs an integer, got '" + it->second + "'");
    }
}

std::vector<std::string> Args::get_all(const std::string& name) const {
    const auto it = repeated_.find(name);
    return it == repeated_.end() ? std::vector<std::string>{} : it->second;
}

double Args::get_double(const std::string& name, double fallback) const {
    const auto it = values_.find(name);
    if (it == values_.end()) {
        return fallback;
    }
    try {
        size_t used = 0;
        const double v = std::stod(it->second, &used);
        if (used != it->second.size()) {
            throw std::invalid_argument("trailing");
        }
        return v;
    } catch (const std::exception&) {
        throw UsageError("option " + name + " needs a number, got '" + it->second + "'");
    }
}

}  // namespace flashvsr::cli
