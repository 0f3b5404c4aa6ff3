// SPDX-License-Identifier: Apache-2.0
// big_frame.cpp built with -fstack-clash-protection (tests/grow/CMakeLists.txt).
#define WEFT_BIG_FRAME_NAME touch_big_frame_probed
#include "big_frame.cpp"
