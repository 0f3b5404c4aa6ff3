// SPDX-License-Identifier: Apache-2.0
// weft/weft.hpp — everything weft offers, in one include.
//
// Plain threads: each header's first lines say; what parks a goroutine blocks a thread instead.
#pragma once

#include "weft/errors.hpp"
#include "weft/export.hpp"
#include "weft/options.hpp"
#include "weft/io.hpp"
#include "weft/net.hpp"
#include "weft/runtime.hpp"
#include "weft/stack.hpp"
#include "weft/stats.hpp"
#include "weft/chan.hpp"
#include "weft/select.hpp"
#include "weft/sync.hpp"
#include "weft/version.hpp"
