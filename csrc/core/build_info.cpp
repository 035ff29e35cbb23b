#include <flashvsr/flashvsr.h>

#include <ATen/Context.h>
#include <nlohmann/json.hpp>
#include <opencv2/core/utility.hpp>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <string>

namespace flashvsr {
namespace {

std::string av_version_string(unsigned v) {
    return std::to_string(AV_VERSION_MAJOR(v)) + "." + std::to_string(AV_VERSION_MINOR(v)) + "." +
           std::to_string(AV_VERSION_MICRO(v));
}

std::string compiler_string() {
#if defined(__clang__)
    return std::string("Clang ") + __clang_version__;
#elif defined(__GNUC__)
    return "GCC " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
           std::to_string(__GNUC_PATCHLEVEL__);
#else
    return "unknown";
#endif
}

}  // namespace

const char* version() { return FLASHVSR_VERSION; }

BuildInfo build_info() {
    BuildInfo info;
    info.version = FLASHVSR_VERSION;
    info.torch = FLASHVSR_TORCH_VERSION;
#ifdef FLASHVSR_WITH_CUDA
    info.cuda_compiled = true;
    info.cuda_archs = FLASHVSR_CUDA_ARCHS;
#endif
    // hasCUDA() asks the CUDA hooks for a device; on a machine without GPU or driver it is false.
    info.cuda_available = at::globalContext().hasCUDA();
    info.cuda_device_count = info.cuda_available ? static_cast<int>(at::getNumGPUs()) : 0;
    info.libavcodec = av_version_string(avcodec_version());
    info.libavformat = av_version_string(avformat_version());
    info.libavutil = av_version_string(avutil_version());
    info.libswscale = av_version_string(swscale_version());
    info.libswresample = av_version_string(swresample_version());
    info.opencv = cv::getVersionString();
    info.compiler = compiler_string();
    return info;
}

std::string build_info_json(const BuildInfo& info, int indent) {
    nlohmann::ordered_json j;
    j["version"] = info.version;
    j["torch"] = info.torch;
    j["cuda_compiled"] = info.cuda_compiled;
    j["cuda_archs"] = info.cuda_archs;
    j["cuda_available"] = info.cuda_available;
    j["cuda_device_count"] = info.cuda_device_count;
    j["ffmpeg"] = {{"libavcodec", info.libavcodec},
                   {"libavformat", info.libavformat},
                   {"libavutil", info.libavutil},
                   {"libswscale", info.libswscale},
                   {"libswresample", info.libswresample}};
    j["opencv"] = info.opencv;
    j["compiler"] = info.compiler;
    return j.dump(indent);
}

}  // namespace flashvsr
