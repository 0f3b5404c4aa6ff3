#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# split_stack_test.sh — programs with -fsplit-stack code link and run the ways users build
# them (issue 22, item 6): gold and LLD, a static and a shared weft, Debug and Release.  The
# program is split_consumer/main.cpp; it checks the linker's prologue adjustment, the
# exported -fstack-clash-protection, growth through prologues, preemption, alloca and a
# thread of its own.  Each way is one scenario: built, checked for the linker that made it,
# run.
#
#   cmake mode (ctest): the weft of BUILD_DIR installed (static, as CI builds it): pkg-config
#     one step and two steps, gold and LLD, weft.pc alone (the user's -fsplit-stack and
#     -fuse-ld) and weft-split-stack.pc; find_package Release/gold and Debug/LLD with
#     -fsplit-stack on the link line.  add_subdirectory with CMAKE_BUILD_TYPE=Debug, static,
#     gold.  add_subdirectory Release with BUILD_SHARED_LIBS=ON, LLD, then installed (the parent
#     asks for it: WEFT_INSTALL=ON; Meson: weft:install=enabled): pkg-config
#     and find_package against the shared weft.
#   meson mode (meson test): the weft of BUILD_DIR installed (static): pkg-config as above,
#     find_package (the CMake package Meson writes), a Meson program using the installed
#     weft-split-stack.pc.  weft as a Meson subproject, buildtype debug: static with gold,
#     and shared with LLD, then installed: pkg-config and find_package against it.
#
# Two weft libraries are built from SOURCE_DIR per mode (-j2; WEFT_TEST_JOBS=N for another
# count), without sanitizers:
# split-stack prologues and the sanitizers do not mix (label no-sanitizer).  The first
# failing scenario ends the test; with WEFT_TEST_KEEP_GOING=1 every scenario runs and the
# failing ones are listed at the end.
# Usage: split_stack_test.sh cmake|meson BUILD_DIR SOURCE_DIR
set -euo pipefail
kind=$1 build=$2 src=$3
here=$(cd "$(dirname "$0")" && pwd)
consumer=$here/split_consumer
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
jobs=${WEFT_TEST_JOBS:-2}
weft_off=(-DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_EXAMPLES=OFF -DWEFT_BUILD_BENCH=OFF -DWEFT_SANITIZE=)
adjust=16384          # --split-stack-adjust-size that weft's split-stack flags pass
gold_default=1048576  # gold's own, when the link is not told
failed=()

# scenario DESCRIPTION COMMAND...: runs COMMAND (a function below) in a subshell with errexit,
# showing its output only if it fails.
scenario() {
  local what=$1 rc=0
  shift
  echo "--- [$(( $(date +%s) - start ))s] $what"
  set +e
  ( set -e; "$@" ) >"$work/log" 2>&1
  rc=$?
  set -e
  if [ $rc -ne 0 ]; then
    cat "$work/log"
    echo "split_stack_test: FAILED: $what" >&2
    failed+=("$what")
    [ -n "${WEFT_TEST_KEEP_GOING:-}" ] || exit 1
  fi
}

# check EXE gold|lld ADJUST: EXE was made by that linker (gold leaves a note, LLD a comment)
# and runs within a minute (ADJUST: the prologue adjustment it must find in itself); it
# takes well under a second, but a broken __morestack can spin.
check() {
  local rc=0
  case $2 in
    gold) readelf -n "$1" | grep -q 'gold version' ;;
    lld) readelf -p .comment "$1" | grep -q 'LLD' ;;
  esac || { echo "$1 was not linked with $2"; return 1; }
  timeout -k 5 60 "$1" "$3" || rc=$?
  [ $rc -ne 124 ] || echo "$1 did not finish within 60 s"
  return $rc
}

# pc PREFIX ARGS...: pkg-config against a relocated install; --static, as the README says for
# the static weft (its dependencies are in Libs.private), harmless for the shared one.
pc() {
  local prefix=$1
  shift
  PKG_CONFIG_PATH=$(dirname "$(find -L "$prefix" -name weft.pc | head -n1)") \
    pkg-config --static --define-variable=prefix="$prefix" "$@"
}

# The user's natural command: weft.pc, with -fsplit-stack (so GCC adds --wrap=pthread_create)
# and -fuse-ld=LD on the command line; gold then keeps its own adjustment.
# pc_weft PREFIX gold|lld one|two
pc_weft() {
  local prefix=$1 ld=$2 exe=$work/pc-consumer want=$adjust
  [ "$ld" = gold ] && want=$gold_default
  export LD_LIBRARY_PATH
  LD_LIBRARY_PATH=$(pc "$prefix" --variable=libdir weft)   # a shared weft
  # shellcheck disable=SC2046
  if [ "$3" = one ]; then
    g++ -std=c++20 -O2 -Wall -Wextra -Werror -fsplit-stack "$consumer/main.cpp" $(pc "$prefix" --cflags --libs weft) \
      -fuse-ld="$ld" -o "$exe"
  else
    g++ -std=c++20 -O0 -g -Wall -Wextra -Werror -fsplit-stack -c "$consumer/main.cpp" $(pc "$prefix" --cflags weft) -o "$exe.o"
    g++ -fsplit-stack "$exe.o" $(pc "$prefix" --libs weft) -fuse-ld="$ld" -o "$exe"
  fi
  check "$exe" "$ld" $want
}

# weft-split-stack.pc; -fuse-ld=lld after its flags selects LLD.
# pc_split_stack PREFIX gold|lld one|two
pc_split_stack() {
  local prefix=$1 ld=$2 exe=$work/pc-consumer lld=()
  [ "$ld" = lld ] && lld=(-fuse-ld=lld)
  export LD_LIBRARY_PATH
  LD_LIBRARY_PATH=$(pc "$prefix" --variable=libdir weft)
  # shellcheck disable=SC2046
  if [ "$3" = one ]; then
    g++ -std=c++20 -O0 -Wall -Wextra -Werror "$consumer/main.cpp" $(pc "$prefix" --cflags --libs weft-split-stack) \
      "${lld[@]}" -o "$exe"
  else
    g++ -std=c++20 -O2 -Wall -Wextra -Werror -c "$consumer/main.cpp" $(pc "$prefix" --cflags weft-split-stack) -o "$exe.o"
    g++ "$exe.o" $(pc "$prefix" --libs weft-split-stack) "${lld[@]}" -o "$exe"
  fi
  check "$exe" "$ld" $adjust
}

# pkgconfig_scenarios PREFIX WHAT [short]
pkgconfig_scenarios() {
  local p=$1 w=$2
  scenario "$w: g++ -fsplit-stack app.cpp \$(pkg-config --cflags --libs weft) -fuse-ld=gold" pc_weft "$p" gold one
  scenario "$w: g++ -O0 -fsplit-stack -c app.cpp \$(pkg-config --cflags weft); g++ -fsplit-stack app.o \$(pkg-config --libs weft) -fuse-ld=lld" pc_weft "$p" lld two
  if [ "${3:-}" != short ]; then
    scenario "$w: g++ -fsplit-stack app.cpp \$(pkg-config --cflags --libs weft) -fuse-ld=lld" pc_weft "$p" lld one
    scenario "$w: g++ -O0 -fsplit-stack -c ...; g++ -fsplit-stack app.o \$(pkg-config --libs weft) -fuse-ld=gold" pc_weft "$p" gold two
  fi
  scenario "$w: g++ -c app.cpp \$(pkg-config --cflags weft-split-stack); g++ app.o \$(pkg-config --libs weft-split-stack)" pc_split_stack "$p" gold two
  scenario "$w: g++ -O0 app.cpp \$(pkg-config --cflags --libs weft-split-stack) -fuse-ld=lld" pc_split_stack "$p" lld one
}

# cmake_program NAME gold|lld CMAKE-ARGS...: split_consumer/ with CMake (weft::split_stack;
# lld: the target's WEFT_SPLIT_STACK_LINKER).
cmake_program() {
  local name=$1 ld=$2
  shift 2
  cmake -S "$consumer" -B "$work/$name" -G Ninja -DSPLIT_LINKER="$ld" "$@"
  cmake --build "$work/$name" -j"$jobs"
  check "$work/$name/split_consumer" "$ld" $adjust
}

# meson_program NAME gold|lld MESON-ARGS...: the same with Meson (lld: the project's linker is
# LLD); weft comes from pkg-config or, with --wrap-mode=forcefallback, from subprojects/weft
# (a link to SOURCE_DIR).
meson_program() {
  local name=$1 ld=$2
  shift 2
  mkdir -p "$work/$name-src/subprojects"
  cp "$consumer/meson.build" "$consumer/meson_options.txt" "$consumer/main.cpp" "$work/$name-src/"
  ln -s "$src" "$work/$name-src/subprojects/weft"
  if [ "$ld" = lld ]; then
    CXX_LD=lld meson setup "$work/$name" "$work/$name-src" "$@"
  else
    meson setup "$work/$name" "$work/$name-src" "$@"
  fi
  meson compile -C "$work/$name" -j "$jobs"
  check "$work/$name/split_consumer" "$ld" $adjust
}

# install_cmake BUILD PREFIX / install_meson BUILD PREFIX-LINK (a Meson install goes under
# PREFIX-LINK.dest, and PREFIX-LINK links to the prefix inside it).
install_cmake() {
  cmake --install "$1" --prefix "$2"
  [ -n "$(find "$2" -name 'libweft.*')" ] || { echo "no libweft installed"; return 1; }
}
install_meson() {
  local prefix
  meson install -C "$1" --destdir "$2.dest" --no-rebuild
  prefix=$(meson introspect "$1" --buildoptions |
           python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
  ln -s "$2.dest$prefix" "$2"
  [ -n "$(find -L "$2" -name 'libweft.*')" ] || { echo "no libweft installed"; return 1; }
}

# A Meson program against an installed weft: the .pc files name the configured prefix, so
# copies name the relocated one (what --define-variable does on the command line).  A shared
# weft is linked as such (weft_static=false), so the program gets a build rpath to it.
meson_installed() {
  local link=()
  mkdir "$work/pc"
  for f in $(find -L "$1" -name 'weft*.pc'); do
    sed "s|^prefix=.*|prefix=$1|" "$f" >"$work/pc/$(basename "$f")"
  done
  if [ -n "$(find -L "$1" -name 'libweft.so*')" ]; then link=(-Dweft_static=false); fi
  PKG_CONFIG_PATH="$work/pc" meson_program m-installed gold --buildtype=release --wrap-mode=nofallback "${link[@]}"
}

case $kind in
  cmake)
    scenario "install $build" install_cmake "$build" "$work/prefix"
    pkgconfig_scenarios "$work/prefix" "installed weft"
    scenario "installed weft: find_package, Release, gold" \
      cmake_program fp-release gold -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix"
    scenario "installed weft: find_package, Debug, LLD, -fsplit-stack on the link line too" \
      cmake_program fp-debug lld -DCMAKE_BUILD_TYPE=Debug -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_FLAGS=-fsplit-stack
    scenario "add_subdirectory, CMAKE_BUILD_TYPE=Debug, static, gold (builds weft)" \
      cmake_program sub-debug gold -DWEFT_SOURCE_DIR="$src" -DCMAKE_BUILD_TYPE=Debug -DBUILD_SHARED_LIBS=OFF "${weft_off[@]}"
    scenario "add_subdirectory, Release, BUILD_SHARED_LIBS=ON, LLD (builds weft)" \
      cmake_program sub-shared lld -DWEFT_SOURCE_DIR="$src" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DWEFT_INSTALL=ON "${weft_off[@]}"
    scenario "install the shared weft" install_cmake "$work/sub-shared" "$work/prefix-shared"
    pkgconfig_scenarios "$work/prefix-shared" "installed shared weft" short
    scenario "installed shared weft: find_package, Debug, gold" \
      cmake_program fp-shared gold -DCMAKE_BUILD_TYPE=Debug -DCMAKE_PREFIX_PATH="$work/prefix-shared"
    ;;
  meson)
    scenario "install $build" install_meson "$build" "$work/prefix"
    pkgconfig_scenarios "$work/prefix" "installed weft"
    scenario "installed weft: find_package (Meson's CMake package), Release, gold" \
      cmake_program fp-release gold -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix"
    scenario "installed weft: find_package (Meson's CMake package), Debug, LLD" \
      cmake_program fp-debug lld -DCMAKE_BUILD_TYPE=Debug -DCMAKE_PREFIX_PATH="$work/prefix"
    scenario "installed weft: Meson, dependency('weft-split-stack') from pkg-config" meson_installed "$work/prefix"
    scenario "subproject, buildtype debug, static, gold (builds weft)" \
      meson_program m-sub-debug gold --buildtype=debug --wrap-mode=forcefallback \
      -Ddefault_library=static -Dweft:default_library=static
    scenario "subproject, buildtype debug, shared, LLD (builds weft)" \
      meson_program m-sub-shared lld --buildtype=debug --wrap-mode=forcefallback \
      -Ddefault_library=shared -Dweft:default_library=shared -Dweft:install=enabled
    scenario "install the shared weft (meson install of that program)" install_meson "$work/m-sub-shared" "$work/prefix-shared"
    pkgconfig_scenarios "$work/prefix-shared" "installed shared weft" short
    scenario "installed shared weft: find_package (Meson's CMake package), Release, gold" \
      cmake_program fp-shared gold -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix-shared"
    ;;
  *) echo "usage: $0 cmake|meson BUILD_DIR SOURCE_DIR" >&2; exit 2 ;;
esac
if [ ${#failed[@]} -ne 0 ]; then
  echo "split_stack_test: ${#failed[@]} scenario(s) failed:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "--- [$(( $(date +%s) - start ))s] every split-stack program linked and ran"
