#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# release_contents.sh — the release library holds neither the kernel model (libweft_kmodel)
# nor the test hooks (weft_testing): nm finds no weft::kmodel name, no testing:: name and no
# set_map_budget_for_testing in it, and the kernel-model library does hold weft::kmodel.
# Usage: release_contents.sh LIBWEFT LIBWEFT_KMODEL
set -euo pipefail
lib=$1 kmodel=$2
names() { if [[ $1 == *.a ]]; then nm -C "$1" 2>/dev/null; else nm -C -D --defined-only "$1"; fi; }
bad=$(names "$lib" | grep -E 'weft::kmodel::|weft::detail::testing::|set_map_budget_for_testing|heap_alloc_countdown' || true)
if [ -n "$bad" ]; then
  echo "FAIL: $lib holds what belongs to libweft_kmodel or weft_testing:" >&2
  echo "$bad" | head -20 >&2
  exit 1
fi
n=$(names "$kmodel" | grep -c 'weft::kmodel::' || true)
[ "$n" -gt 0 ] || { echo "FAIL: $kmodel holds no weft::kmodel names" >&2; exit 1; }
echo "$lib: no kernel model, no test hooks; $kmodel: $n weft::kmodel names"
