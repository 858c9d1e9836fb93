# The CUDA backend switch, included from the top-level CMakeLists.txt (enable_language must run
# in the directory that owns the `kiln` target). KILN_WITH_CUDA defaults to ON when a CUDA
# compiler is found; without one the backend and its tests are left out.
include(CheckLanguage)
if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX}
   AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
check_language(CUDA)
if(CMAKE_CUDA_COMPILER)
  option(KILN_WITH_CUDA "Build the CUDA backend" ON)
else()
  set(KILN_WITH_CUDA OFF)
endif()

if(KILN_WITH_CUDA)
  if(NOT DEFINED CMAKE_CUDA_HOST_COMPILER)
    set(CMAKE_CUDA_HOST_COMPILER ${CMAKE_CXX_COMPILER})
  endif()
  # Hopper only: the kernels are built for sm_90a (see KILN_CUDA_GENCODE), not through
  # CMAKE_CUDA_ARCHITECTURES, whose 3.25 spelling has no arch-specific "a" targets.
  set(CMAKE_CUDA_ARCHITECTURES OFF)
  if(CCACHE_PROGRAM)
    set(CMAKE_CUDA_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
  endif()
  enable_language(CUDA)
  # CMake 3.25 knows no C++20 dialect flag for nvcc (which has one since CUDA 12).
  if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  endif()
  set(CMAKE_CUDA_STANDARD 20)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  find_package(CUDAToolkit REQUIRED)
  set(KILN_CUDA_GENCODE "-gencode=arch=compute_90a,code=sm_90a" CACHE STRING
      "nvcc targets of the CUDA backend")
  message(STATUS "kiln: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, ${KILN_CUDA_GENCODE})")
else()
  message(STATUS "kiln: CUDA backend OFF")
endif()
