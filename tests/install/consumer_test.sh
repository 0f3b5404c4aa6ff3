#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the weft build in BUILD_DIR into a scratch prefix, then builds and runs the program
# in consumer/ twice: with find_package(weft) and with `pkg-config --cflags --libs weft`.
# Usage: consumer_test.sh cmake|meson BUILD_DIR
set -euo pipefail
kind=$1 build=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

case $kind in
  cmake) cmake --install "$build" --prefix "$work/prefix" >/dev/null ;;
  meson) meson install -C "$build" --destdir "$work/dest" --no-rebuild >/dev/null
         prefix=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
         ln -s "$work/dest$prefix" "$work/prefix" ;;
  *) echo "usage: $0 cmake|meson BUILD_DIR" >&2; exit 2 ;;
esac

echo "--- the license is installed with the package"
cmp "$here/../../LICENSE" "$work/prefix/share/doc/weft/LICENSE" || { echo "share/doc/weft/LICENSE is not weft's LICENSE" >&2; exit 1; }

# A shared weft (BUILD_SHARED_LIBS=ON, default_library=shared): the programs below find it
# where it was installed (a pkg-config link line carries no rpath).
so=$(find -L "$work/prefix" -name 'libweft.so*' | head -n1)
[ -z "$so" ] || export LD_LIBRARY_PATH="$(dirname "$so")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

echo "--- find_package(weft)"
cmake -S "$here/consumer" -B "$work/cm" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cm" >/dev/null
"$work/cm/consumer"

echo "--- pkg-config weft"
pc=$(dirname "$(find -L "$work/prefix" -name weft.pc | head -n1)")
[ -n "$pc" ] || { echo "weft.pc was not installed" >&2; exit 1; }
# What only a static link needs (boost_context, mimalloc) is in Libs.private, not Libs.
if PKG_CONFIG_PATH="$pc" pkg-config --libs weft | grep -q boost_context; then
  echo "weft.pc: -lboost_context is in Libs; a static build's libraries belong in Libs.private" >&2; exit 1
fi
PKG_CONFIG_PATH="$pc" pkg-config --static --libs weft | grep -q boost_context ||
  { echo "weft.pc: pkg-config --static --libs weft lacks -lboost_context" >&2; exit 1; }
flags=$(PKG_CONFIG_PATH="$pc" pkg-config --static --define-variable=prefix="$work/prefix" --cflags --libs weft)
# shellcheck disable=SC2086
c++ -std=c++20 "$here/consumer/main.cpp" -o "$work/pc-consumer" $flags
"$work/pc-consumer"
