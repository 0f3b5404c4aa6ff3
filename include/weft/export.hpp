// weft/export.hpp — symbol visibility.  weft builds with hidden visibility; what users may
// call is marked WEFT_API.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif
