// flashvsr error types (std only). Every error the library throws on purpose derives from flashvsr::Error;
// pybind11 maps them to flashvsr.Error and its subclasses. Included by flashvsr.h; the layers below the
// public API (models/, csrc/io/) include this header alone.
#pragma once

#include <stdexcept>

namespace flashvsr {

/// Base of every error the library throws on purpose.
class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};
/// Bad input from the user: a file that is not a video, a wrong parameter value, ...
class InputError : public Error {
  public:
    using Error::Error;
};
/// Model folder or checkpoint problem: a missing file, an unexpected key, a wrong shape.
class ModelError : public Error {
  public:
    using Error::Error;
};
/// Out of memory (CUDA or host) where tiling could not recover: the message says what to change.
class OutOfMemory : public Error {
  public:
    using Error::Error;
};
/// An operation was stopped by a cancel token or a progress callback returning false.
class Cancelled : public Error {
  public:
    using Error::Error;
};

}  // namespace flashvsr
