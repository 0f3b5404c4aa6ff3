#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# embed_test.sh — add_subdirectory(weft) leaves the parent project alone (issue 19.4): the
# parent's empty CMAKE_BUILD_TYPE stays empty, and the parent's install installs none of weft
# unless it asks for it with WEFT_INSTALL=ON.  Configure only (cmake_install.cmake says what
# an install would copy), so it costs seconds.  CMAKE=/path/to/cmake tries another CMake (the
# oldest supported: README, "Embedding weft").
# Usage: embed_test.sh SOURCE_DIR
set -euo pipefail
src=$1
cmake=${CMAKE:-cmake}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
off=(-DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_EXAMPLES=OFF -DWEFT_BUILD_BENCH=OFF)

configure() {  # configure DIR ARGS...
  local dir=$1; shift
  "$cmake" -S "$here/subdir_consumer" -B "$work/$dir" -G Ninja -DWEFT_SOURCE_DIR="$src" "${off[@]}" "$@" \
    >"$work/$dir.log" 2>&1 || { cat "$work/$dir.log" >&2; fail "$cmake could not configure the parent ($*)"; }
}
# What the parent's `cmake --install` would copy from weft: the file(INSTALL ...) lines of
# weft's cmake_install.cmake.
weft_installs() { grep -c 'file(INSTALL' "$work/$1/weft/cmake_install.cmake" || true; }

echo "--- $("$cmake" --version | head -n1)"
echo "--- an empty build type stays empty"
configure plain
bt=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$work/plain/CMakeCache.txt")
[ -z "$bt" ] || fail "add_subdirectory(weft) set the parent's CMAKE_BUILD_TYPE to '$bt'"

echo "--- the parent's install installs none of weft by default"
n=$(weft_installs plain)
[ "$n" -eq 0 ] || fail "the parent's cmake --install would install $n sets of weft's files (WEFT_INSTALL should default to OFF when embedded)"

echo "--- WEFT_INSTALL=ON installs it"
configure on -DWEFT_INSTALL=ON
n=$(weft_installs on)
[ "$n" -gt 0 ] || fail "WEFT_INSTALL=ON: weft installs nothing"
grep -q 'share/doc/weft' "$work/on/weft/cmake_install.cmake" || fail "WEFT_INSTALL=ON: the license is not installed"

echo "--- a build type the parent chose is kept"
configure debug -DCMAKE_BUILD_TYPE=Debug
grep -q '^CMAKE_BUILD_TYPE:[A-Z]*=Debug$' "$work/debug/CMakeCache.txt" || fail "the parent's CMAKE_BUILD_TYPE=Debug was changed"
echo "ok"
