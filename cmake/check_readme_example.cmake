# Fails when the README's C block differs from examples/fit_and_score.c
# between its README BEGIN / README END markers.
file(READ ${README} readme)
file(READ ${EXAMPLE} example)
string(REGEX MATCH "```c\n(#include <gmle.h>[^`]*)```" _ "${readme}")
set(block "${CMAKE_MATCH_1}")
string(REGEX MATCH "/\\* README BEGIN \\*/\n(.*)/\\* README END \\*/" _ "${example}")
set(code "${CMAKE_MATCH_1}")
if(NOT block OR NOT block STREQUAL code)
  message(FATAL_ERROR "README.md's library example differs from examples/fit_and_score.c")
endif()
