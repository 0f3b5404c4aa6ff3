#!/usr/bin/env python3
"""source_check.py — what every file of a kind must say (issue 19).

  - every public header (include/weft/**.hpp) has one line, before `#pragma once`, that starts
    with `// Plain threads:` and says what is safe to call from a thread that runs no goroutine.

Prints each file that lacks it; exits 1 if any does.
usage: source_check.py SOURCE_DIR
"""
import sys
from pathlib import Path


def plain_threads_line(path):
    head = path.read_text().split('#pragma once', 1)[0]
    return sum(1 for l in head.splitlines() if l.startswith('// Plain threads: ')) == 1


def main():
    if len(sys.argv) != 2:
        print('usage: source_check.py SOURCE_DIR', file=sys.stderr)
        return 2
    root = Path(sys.argv[1])
    headers = sorted((root / 'include' / 'weft').rglob('*.hpp'))
    bad = [h for h in headers if not plain_threads_line(h)]
    for h in bad:
        print(f'{h.relative_to(root)}: no single "// Plain threads: ..." line before #pragma once')
    if not headers:
        print('no headers found under include/weft')
        return 1
    print(f'{len(headers) - len(bad)} of {len(headers)} public headers say what a plain thread may call')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
