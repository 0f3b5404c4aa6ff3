# SPDX-License-Identifier: Apache-2.0
# Helpers shared by weft's CMake files.

# weft_choice_option(NAME doc default other-values...): a string cache option whose value must be
# one of the listed ones; anything else stops the configure step with a message naming both.
function(weft_choice_option name doc default others)
  set(${name} "${default}" CACHE STRING "${doc}")
  set(allowed "${default}" ${others})
  set_property(CACHE ${name} PROPERTY STRINGS ${allowed})
  if(NOT "${${name}}" IN_LIST allowed)
    list(JOIN allowed " | " shown)
    message(FATAL_ERROR "${name}='${${name}}' is not allowed; use one of: ${shown} (empty means none)")
  endif()
endfunction()

# WEFT_SANITIZE → flags for everything built in this project (library, tests, programs).
macro(weft_apply_sanitizers)
  if(WEFT_SANITIZE STREQUAL "address,undefined")
    add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    add_link_options(-fsanitize=address,undefined)
    add_compile_definitions(WEFT_SANITIZE_ADDRESS=1)
  elseif(WEFT_SANITIZE STREQUAL "thread")
    add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
    add_link_options(-fsanitize=thread)
    add_compile_definitions(WEFT_SANITIZE_THREAD=1)
  endif()
endmacro()

# weft_add_test(NAME name SOURCES files... [INTERNAL] [SPLIT_STACK] [LIBS libs...] [TIMEOUT seconds])
# One GoogleTest executable per subsystem; the Meson build registers the same executables.
# INTERNAL: the test reaches into runtime/ (internal headers, the test hooks of
# runtime/testing): it links weft_testing, and through it weft_internal (the runtime's objects
# in a static archive when weft is shared, which exports only the public API).  Without it the
# test links weft::weft as a user's program does.  SPLIT_STACK: -fsplit-stack and its link, as
# weft::split_stack gives them (which would bring weft::weft along, a second runtime beside
# weft_internal's when weft is shared).
function(weft_add_test)
  cmake_parse_arguments(T "INTERNAL;SPLIT_STACK" "NAME;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  if(T_INTERNAL)
    target_link_libraries(${T_NAME} PRIVATE weft_testing GTest::gtest_main ${T_LIBS})
  else()
    target_link_libraries(${T_NAME} PRIVATE weft::weft GTest::gtest_main ${T_LIBS})
  endif()
  if(T_SPLIT_STACK)
    target_compile_options(${T_NAME} PRIVATE ${weft_split_stack_compile})
    target_link_options(${T_NAME} PRIVATE ${weft_split_stack_link})
  endif()
  target_compile_options(${T_NAME} PRIVATE -Wall -Wextra)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT})
endfunction()
