# Native dependencies from Debian: FFmpeg 5.1 (libav*), OpenCV 4.6 (core/imgproc/imgcodecs), nlohmann-json.
# Outputs the targets flashvsr::ffmpeg, flashvsr::opencv and nlohmann_json::nlohmann_json.

find_package(PkgConfig REQUIRED)
pkg_check_modules(FLASHVSR_FFMPEG REQUIRED IMPORTED_TARGET
  libavformat>=59 libavcodec>=59 libavutil>=57 libswscale>=6 libswresample>=4)
add_library(flashvsr::ffmpeg ALIAS PkgConfig::FLASHVSR_FFMPEG)

# OpenCV: the lean -dev packages ship no CMake config (only libopencv-dev does), so find the pieces.
find_path(FLASHVSR_OPENCV_INCLUDE_DIR opencv2/core.hpp PATH_SUFFIXES opencv4 REQUIRED)
set(_fvsr_cv_libs)
foreach(_m core imgproc imgcodecs)
  find_library(FLASHVSR_OPENCV_${_m} opencv_${_m} REQUIRED)
  list(APPEND _fvsr_cv_libs "${FLASHVSR_OPENCV_${_m}}")
endforeach()
add_library(flashvsr_opencv INTERFACE)
target_include_directories(flashvsr_opencv SYSTEM INTERFACE "${FLASHVSR_OPENCV_INCLUDE_DIR}")
target_link_libraries(flashvsr_opencv INTERFACE ${_fvsr_cv_libs})
add_library(flashvsr::opencv ALIAS flashvsr_opencv)

find_package(nlohmann_json 3.10 REQUIRED CONFIG)
