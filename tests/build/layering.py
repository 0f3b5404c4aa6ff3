#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""layering.py — the runtime's folders are layers, and includes only go down (issue 17).

    arch      ISA and ABI: assembly, the TCB slot, cpu relax          (includes nothing of ours)
    diag      fatal errors, SIGPIPE, symbols, version                  (arch)
    stack     the stack allocator: VM calls, arenas, pools, caches     (diag, arch)
    sched     G/M/P, parking, sysmon, timers, growth, copy, shrink,    (stack, diag, arch)
              morestack, the fault handler, quarantine
    sync, io  channels, select, mutex ...; the netpoller, blocking     (sched and below; not each other)
    testing   the test kit (weft_testing)                              (everything of the runtime)
    kmodel    the kernel model, a library of its own (weft_kmodel)     (diag, arch)

A file may include its own folder, the public headers (include/weft, which themselves include
nothing under runtime/ or arch/), and the folders its layer lists above.  Reads every
#include "..." of runtime/, arch/ and include/weft; prints each include that runs against the
chain and exits 1 if there is one.

usage: layering.py SOURCE_DIR
"""
import re
import sys
from pathlib import Path

import checks

# folder -> the folders it may include besides itself and the public headers
ALLOWED = {
    'arch': set(),
    'diag': {'arch'},
    'stack': {'diag', 'arch'},
    'sched': {'stack', 'diag', 'arch'},
    'sync': {'sched', 'stack', 'diag', 'arch'},
    'io': {'sched', 'stack', 'diag', 'arch'},
    'net': {'io', 'sync', 'sched', 'stack', 'diag', 'arch'},
    'testing': {'net', 'sync', 'io', 'sched', 'stack', 'diag', 'arch'},
    'kmodel': {'diag', 'arch'},
    'public': set(),  # include/weft
}
SOURCE = {'.cpp', '.hpp', '.h', '.S', '.c'}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def folder_of(rel):
    """The layer a file (a path relative to the source root) belongs to, or None."""
    parts = Path(rel).parts
    if parts[0] == 'runtime' and len(parts) > 2:
        return parts[1]
    if parts[0] == 'arch':
        return 'arch'
    if parts[:2] == ('include', 'weft'):
        return 'public'
    return None


def target_of(inc, including):
    """The layer an include names: runtime/<x>/..., arch/..., weft/..., or a sibling file."""
    parts = Path(inc).parts
    if parts[0] == 'runtime' and len(parts) > 2:
        return parts[1]
    if parts[0] == 'arch':
        return 'arch'
    if parts[0] == 'weft':
        return 'public'
    return folder_of(including)  # "morestack_x86_64.hpp": beside the including file


def main():
    root = checks.source_dir('layering.py').resolve()
    bad, seen, unknown = [], 0, set()
    files = [p for d in ('runtime', 'arch', 'include/weft') for p in sorted((root / d).rglob('*'))
             if p.is_file() and p.suffix in SOURCE]
    for path in files:
        rel = path.relative_to(root)
        here = folder_of(rel)
        if here not in ALLOWED:
            unknown.add(str(Path(*rel.parts[:2])))
            continue
        for inc in INCLUDE.findall(path.read_text(errors='replace')):
            seen += 1
            there = target_of(inc, rel)
            if there == here or there == 'public' or there in ALLOWED[here]:
                continue
            bad.append(f'{rel}: #include "{inc}": {here} may include only '
                       f'{", ".join(sorted(ALLOWED[here] | {here, "public"}))}')
    for u in sorted(unknown):
        bad.append(f'{u}: a folder this check does not know: give it a place in ALLOWED')
    if not seen:
        bad.append('no includes found: the layout changed; update this check')
    return checks.report(bad, 'against the layering', f'{len(files)} files, {seen} includes: ', 'the layers hold')


if __name__ == '__main__':
    sys.exit(main())
