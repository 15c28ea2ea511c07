# check_exports.cmake -- fails when the built libgmle exports an internal
# (gmle__) symbol: tests and benchmarks reach internals through the static
# gmle_internal library, never through the shared one.
# Usage: cmake -DLIB=path/libgmle.so -DNM=path/to/nm -P check_exports.cmake
if(NOT LIB OR NOT NM)
  message(FATAL_ERROR "check_exports: pass -DLIB=<libgmle.so> -DNM=<nm>")
endif()
execute_process(COMMAND ${NM} -D --defined-only ${LIB}
  OUTPUT_VARIABLE syms RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "check_exports: ${NM} -D ${LIB} failed (${rc})")
endif()
string(REGEX MATCHALL "[^\n]*gmle__[^\n]*" internal "${syms}")
if(internal)
  string(REPLACE ";" "\n" internal "${internal}")
  message(FATAL_ERROR "libgmle exports internal symbols:\n${internal}")
endif()
string(REGEX MATCHALL " [TDBR] gmle_[a-z]" public "${syms}")
list(LENGTH public n)
if(n EQUAL 0)
  message(FATAL_ERROR "check_exports: ${LIB} exports no gmle_ symbol at all")
endif()
message(STATUS "libgmle exports ${n} gmle_ symbols and no gmle__ one")
