// The one error-capture helper of the C++ tests: the message of the flashvsr error a call throws.
#pragma once

#include <flashvsr/errors.h>

#include <exception>
#include <string>

namespace flashvsr::testing {

/// The message of the `E` that `fn` throws; "<no error>" when it throws nothing and "<other: what>" when it
/// throws another exception, so that a missing or wrong error fails the comparison that follows.
template <class E = flashvsr::Error, class Fn>
std::string error_of(Fn&& fn) {
    try {
        fn();
    } catch (const E& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("<other: ") + e.what() + ">";
    }
    return "<no error>";
}

template <class Fn>
std::string input_error_of(Fn&& fn) {
    return error_of<flashvsr::InputError>(fn);
}

template <class Fn>
std::string model_error_of(Fn&& fn) {
    return error_of<flashvsr::ModelError>(fn);
}

}  // namespace flashvsr::testing
