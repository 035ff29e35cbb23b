# Python, LibTorch from the PyPI torch wheel, and the CUDA toolchain with a version guard.
#
# Outputs: FLASHVSR_TORCH_VERSION, FLASHVSR_WITH_CUDA (bool), FLASHVSR_CUDA_ARCHS_STRING, TORCH_LIB_DIR,
#          TORCH_PYTHON_LIBRARY, FLASHVSR_BUILD_PYTHON, the imported target `torch`.

set(FLASHVSR_TORCH_MIN_VERSION 2.11)   # first PyPI release built with CUDA 13; rejects Debian's torch 1.13
set(FLASHVSR_TORCH_PIN 2.13.0)         # the exact version pyproject.toml and scripts/setup.sh install

set(Python_FIND_VIRTUALENV FIRST)
find_package(Python 3.10 REQUIRED COMPONENTS Interpreter OPTIONAL_COMPONENTS Development.Module)
set(_fvsr_python_dev_found "${Python_Development.Module_FOUND}")  # torch's config calls find_package(Python) again

execute_process(
  COMMAND "${Python_EXECUTABLE}" -c
    "import torch,os;print(torch.utils.cmake_prefix_path);print(torch.__version__.split('+')[0]);print(torch.version.cuda or '');print(os.path.join(os.path.dirname(torch.__file__),'lib'))"
  OUTPUT_VARIABLE _fvsr_torch_query OUTPUT_STRIP_TRAILING_WHITESPACE
  RESULT_VARIABLE _fvsr_torch_rc ERROR_VARIABLE _fvsr_torch_err)
if(NOT _fvsr_torch_rc EQUAL 0)
  message(FATAL_ERROR "flashvsr: `import torch` failed in ${Python_EXECUTABLE}.\n"
    "Install the pinned wheel first (python -m pip install torch==${FLASHVSR_TORCH_PIN}) or point "
    "-DPython_EXECUTABLE at the environment that has it.\n${_fvsr_torch_err}")
endif()
string(REPLACE "\n" ";" _fvsr_torch_query "${_fvsr_torch_query}")
list(GET _fvsr_torch_query 0 _fvsr_torch_prefix)
list(GET _fvsr_torch_query 1 FLASHVSR_TORCH_VERSION)
list(GET _fvsr_torch_query 2 FLASHVSR_TORCH_CUDA)
list(GET _fvsr_torch_query 3 TORCH_LIB_DIR)
if(FLASHVSR_TORCH_VERSION VERSION_LESS FLASHVSR_TORCH_MIN_VERSION)
  message(FATAL_ERROR "flashvsr: torch ${FLASHVSR_TORCH_VERSION} in ${Python_EXECUTABLE} is older than "
    "${FLASHVSR_TORCH_MIN_VERSION}; install torch==${FLASHVSR_TORCH_PIN}")
endif()
if(NOT FLASHVSR_TORCH_VERSION VERSION_EQUAL FLASHVSR_TORCH_PIN)
  message(WARNING "flashvsr: building against torch ${FLASHVSR_TORCH_VERSION}, the tested pin is "
    "${FLASHVSR_TORCH_PIN}; the Python module will only load with the torch it was built against")
endif()
# The wheel's config comes first so that no other TorchConfig (e.g. Debian's 1.13) can win.
list(PREPEND CMAKE_PREFIX_PATH "${_fvsr_torch_prefix}")

# ---- CUDA ----------------------------------------------------------------------------------------
string(TOUPPER "${FLASHVSR_CUDA}" _fvsr_cuda_mode)
if(_fvsr_cuda_mode STREQUAL "OFF")
  set(FLASHVSR_WITH_CUDA OFF)
else()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(FLASHVSR_WITH_CUDA ON)
  elseif(_fvsr_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "flashvsr: FLASHVSR_CUDA=ON but no nvcc was found (set CUDACXX or CMAKE_CUDA_COMPILER)")
  else()
    set(FLASHVSR_WITH_CUDA OFF)
  endif()
endif()

if(FLASHVSR_TORCH_CUDA OR FLASHVSR_WITH_CUDA)
  # One architecture by default (CI compiles, nothing runs); PTX makes it JIT-able on newer GPUs.
  # Release builds: -DTORCH_CUDA_ARCH_LIST="8.0;8.6;8.9;9.0;10.0;12.0+PTX".
  set(TORCH_CUDA_ARCH_LIST "8.0+PTX" CACHE STRING "CUDA architectures, read by torch's cuda.cmake")
  set(FLASHVSR_CUDA_ARCHS_STRING "${TORCH_CUDA_ARCH_LIST}")
  find_package(CUDAToolkit REQUIRED)
  if(FLASHVSR_TORCH_CUDA)
    string(REGEX MATCH "^[0-9]+" _fvsr_wheel_major "${FLASHVSR_TORCH_CUDA}")
    if(NOT CUDAToolkit_VERSION_MAJOR STREQUAL _fvsr_wheel_major)
      message(FATAL_ERROR "flashvsr: CUDA major mismatch: nvcc/toolkit is ${CUDAToolkit_VERSION} "
        "(${CUDAToolkit_NVCC_EXECUTABLE}) but torch ${FLASHVSR_TORCH_VERSION} was built with CUDA "
        "${FLASHVSR_TORCH_CUDA}. Two CUDA runtimes of different majors cannot share one process: install the "
        "toolkit of CUDA ${_fvsr_wheel_major}.x or a torch wheel built for CUDA ${CUDAToolkit_VERSION_MAJOR}.")
    endif()
  endif()
  # CUDA >= 12.9 ships no libnvToolsExt; some torch configs still name it.
  if(NOT TARGET CUDA::nvToolsExt AND TARGET CUDA::nvtx3)
    add_library(CUDA::nvToolsExt INTERFACE IMPORTED)
    target_link_libraries(CUDA::nvToolsExt INTERFACE CUDA::nvtx3)
  endif()
else()
  set(FLASHVSR_CUDA_ARCHS_STRING "")
endif()
if(FLASHVSR_WITH_CUDA)
  # Architectures come from TORCH_CUDA_ARCH_LIST: torch's config turns them into -gencode flags and sets
  # CMAKE_CUDA_ARCHITECTURES OFF (it warns "pytorch is not compatible with CMAKE_CUDA_ARCHITECTURES" for
  # every consumer, because its own enable_language(CUDA) defines that variable; the warning is harmless).
  enable_language(CUDA)
  # The .cu files include no torch headers, so C++17 suffices (CMake 3.25 knows no CUDA20 for nvcc 13).
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
endif()

find_package(Torch ${FLASHVSR_TORCH_MIN_VERSION} REQUIRED CONFIG)

# libtorch_cuda needs the NVIDIA libraries of the wheel (NCCL, cuBLAS, ...), found at run time through its
# own RUNPATH. At link time the toolkit's older copies in /usr/local/cuda/lib would win (they are on the
# -rpath CMake adds for CUDA::cudart), so point the linker at the wheel's copies first.
get_filename_component(_fvsr_site_packages "${TORCH_LIB_DIR}/../.." ABSOLUTE)
file(GLOB _fvsr_nvidia_lib_dirs LIST_DIRECTORIES true "${_fvsr_site_packages}/nvidia/*/lib")
foreach(_d ${_fvsr_nvidia_lib_dirs})
  add_link_options("LINKER:-rpath-link,${_d}")
endforeach()
# torch's config turns CMAKE_CUDA_ARCHITECTURES off and puts -gencode flags in CMAKE_CUDA_FLAGS instead.

set(FLASHVSR_BUILD_PYTHON OFF)
if(_fvsr_python_dev_found)
  find_library(TORCH_PYTHON_LIBRARY torch_python PATHS "${TORCH_LIB_DIR}" NO_DEFAULT_PATH)
  if(TORCH_PYTHON_LIBRARY)
    set(FLASHVSR_BUILD_PYTHON ON)
  endif()
endif()
if(SKBUILD AND NOT FLASHVSR_BUILD_PYTHON)
  message(FATAL_ERROR "flashvsr: building the wheel needs the Python headers and torch's libtorch_python")
endif()
