# ctest install_consumer: proves that an installed trine works from an outside project.
#   cmake -DBUILD_DIR=<trine build> -DWORK_DIR=<scratch> -DCONSUMER_DIR=<this folder>
#         [-DCXX=<compiler>] [-DBUILD_TYPE=Release] -P run.cmake
# 1. cmake --install BUILD_DIR into WORK_DIR/prefix;
# 2. configure and build tests/install_consumer against it with find_package(trine), which also
#    compiles every installed header on its own;
# 3. run the program, which checks a matmul's gradients and prints the BLAS kernel.
cmake_minimum_required(VERSION 3.25)
foreach(var BUILD_DIR WORK_DIR CONSUMER_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED BUILD_TYPE OR BUILD_TYPE STREQUAL "")
  set(BUILD_TYPE Release)
endif()

# Runs one step; stops with its output when it fails.
function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_consumer: ${what} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "install_consumer: ${what}: ok")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
step("cmake --install" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}"
     --config "${BUILD_TYPE}")
if(NOT EXISTS "${prefix}/lib/cmake/trine/trineConfig.cmake")
  message(FATAL_ERROR "install_consumer: no trineConfig.cmake under ${prefix}/lib/cmake/trine")
endif()

set(configure "${CMAKE_COMMAND}" -S "${CONSUMER_DIR}" -B "${WORK_DIR}/build"
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
if(DEFINED CXX AND NOT CXX STREQUAL "")
  list(APPEND configure "-DCMAKE_CXX_COMPILER=${CXX}")
endif()
step("configure the outside project" ${configure})
include(ProcessorCount)
ProcessorCount(jobs)
if(jobs EQUAL 0)
  set(jobs 2)
endif()
step("build the outside project" "${CMAKE_COMMAND}" --build "${WORK_DIR}/build" --parallel ${jobs})
step("run the outside program" "${WORK_DIR}/build/consumer")
message("${step_output}")
if(NOT step_output MATCHES "install_consumer: OK" OR NOT step_output MATCHES "blas_kernel ")
  message(FATAL_ERROR "install_consumer: unexpected output from the outside program")
endif()
