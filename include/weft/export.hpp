// SPDX-License-Identifier: Apache-2.0
// weft/export.hpp — symbol visibility.  weft builds with hidden visibility; what users may
// call is marked WEFT_API.
//
// Plain threads: nothing here to call (macros only).
#pragma once

// Every weft header includes this one before any C++20: without C++20 the compile stops here,
// on one line that says why, instead of a page of errors from the code below.  A missing
// #include is fatal in GCC and Clang (a bare #error is not: the errors after it would follow),
// so the message is the name of the file that cannot be found.
#if !defined(__cplusplus) || __cplusplus < 202002L
#include "weft needs C++20 - compile with -std=c++20 or newer"
#endif

#if defined(__GNUC__) || defined(__clang__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif
