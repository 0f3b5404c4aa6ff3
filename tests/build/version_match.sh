#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# version_match.sh — WEFT_VERSION_MAJOR/MINOR/PATCH (include/weft/version.hpp) equal the
# version in CMakeLists.txt's project() and meson.build's project().
# Usage: version_match.sh SOURCE_DIR
set -euo pipefail
src=$1
h=$src/include/weft/version.hpp
hv=$(for p in MAJOR MINOR PATCH; do sed -n "s/^#define WEFT_VERSION_$p \([0-9]*\)$/\1/p" "$h"; done | paste -sd.)
cv=$(sed -n 's/^project(weft VERSION \([0-9.]*\) .*/\1/p' "$src/CMakeLists.txt")
mv=$(sed -n "s/^  version: '\([0-9.]*\)',$/\1/p" "$src/meson.build")
echo "version.hpp: $hv, CMakeLists.txt: $cv, meson.build: $mv"
[[ $hv =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "FAIL: cannot read WEFT_VERSION_* from $h" >&2; exit 1; }
[ "$hv" = "$cv" ] && [ "$hv" = "$mv" ] || { echo "FAIL: the three versions differ" >&2; exit 1; }
