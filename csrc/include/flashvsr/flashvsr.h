// flashvsr — FlashVSR (one-step diffusion streaming video super-resolution) as a C++ engine.
//
//   #include <flashvsr/flashvsr.h>
//
//   std::cout << flashvsr::version() << "\n";
//   flashvsr::BuildInfo info = flashvsr::build_info();
//   if (!info.cuda_available) std::cout << "running on the CPU\n";
//   try {
//       ...                                   // engine calls arrive with the streaming-engine issue
//   } catch (const flashvsr::InputError& e) {  // bad user input: message names file/parameter/value
//       std::cerr << e.what() << "\n";
//   } catch (const flashvsr::Error& e) {       // every library error derives from flashvsr::Error
//       std::cerr << e.what() << "\n";
//   }
//
// Thread safety: the free functions here are thread-safe. Library code never aborts or exits;
// it throws a flashvsr::Error (or c10::Error from LibTorch for tensor-contract violations).
#pragma once

#include <stdexcept>
#include <string>

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
/// An operation was stopped by a cancel token or a progress callback returning false.
class Cancelled : public Error {
  public:
    using Error::Error;
};

/// The library version, e.g. "0.1.0".
const char* version();

/// What this build was compiled with and what the running machine offers.
struct BuildInfo {
    std::string version;        // flashvsr version
    std::string torch;          // LibTorch version compiled against, e.g. "2.13.0"
    bool cuda_compiled = false; // the CUDA kernels of kernels/ are in this build
    std::string cuda_archs;     // architectures they were compiled for, e.g. "8.0+PTX"
    bool cuda_available = false;// a CUDA device is usable right now (false without GPU or driver)
    int cuda_device_count = 0;
    std::string libavcodec;     // runtime versions of the FFmpeg libraries, "59.37.100"
    std::string libavformat;
    std::string libavutil;
    std::string libswscale;
    std::string libswresample;
    std::string opencv;         // OpenCV runtime version, "4.6.0"
    std::string compiler;       // e.g. "GCC 12.2.0"
};

/// Collects the build information (queries the CUDA runtime lazily; never throws for a missing GPU).
BuildInfo build_info();

/// The same as a JSON object (keys as the struct fields; "ffmpeg" is a nested object).
std::string build_info_json(const BuildInfo& info, int indent = 2);

}  // namespace flashvsr
