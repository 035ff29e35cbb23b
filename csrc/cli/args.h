// A small command-line parser: positionals, `--name value`, `--name=value`, boolean `--flag`.
// Unknown options and missing values throw UsageError naming the option.
#pragma once

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace flashvsr::cli {

class UsageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class Args {
  public:
    /// `valued`: options that take a value; `flags`: boolean options. Names include the dashes.
    /// `repeated`: valued options that may be given several times (read with get_all).
    Args(const std::vector<std::string>& argv, const std::set<std::string>& valued,
         const std::set<std::string>& flags, const std::set<std::string>& repeated = {});

    const std::vector<std::string>& positionals() const { return positionals_; }
    bool has(const std::string& name) const { return values_.count(name) != 0 || flags_.count(name) != 0; }
    std::string get(const std::string& name, const std::string& fallback) const;
    int64_t get_int(const std::string& name, int64_t fallback) const;
    double get_double(const std::string& name, double fallback) const;
    /// Every value of a repeated option, in command-line order.
    std::vector<std::string> get_all(const std::string& name) const;

  private:
    std::vector<std::string> positionals_;
    std::map<std::string, std::string> values_;
    std::set<std::string> flags_;
    std::map<std::string, std::vector<std::string>> repeated_;
};

}  // namespace flashvsr::cli
