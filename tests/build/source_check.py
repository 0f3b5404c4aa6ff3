#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""source_check.py — what every file of a kind must say (issue 19).

  - every source file (C++, assembly, Go, Python, shell, CMake, Meson, the .ci scripts, the
    .in templates) starts with its license, `SPDX-License-Identifier: Apache-2.0`, in the
    file's comment syntax, on the first line (the second after a #! line);
  - every public header (include/weft/**.hpp) has one line, before `#pragma once`, that starts
    with `// Plain threads:` and says what is safe to call from a thread that runs no goroutine.

The files are git's (git ls-files) in a checkout, else every file outside build*/ and hidden
folders.  Prints each file that fails; exits 1 if any does.  --fix adds missing SPDX lines.
usage: source_check.py [--fix] SOURCE_DIR
"""
import subprocess
import sys
from pathlib import Path

SPDX = 'SPDX-License-Identifier: Apache-2.0'
SLASH = {'.cpp', '.hpp', '.h', '.c', '.cc', '.S', '.go'}
HASH_SUFFIX = {'.sh', '.py', '.cmake', '.build'}
HASH_NAMES = {'CMakeLists.txt', 'meson_options.txt'}


def comment_of(rel):
    """The SPDX line for a file, or None if the file is not source (docs, data, LICENSE)."""
    p = Path(rel)
    if p.suffix in SLASH:
        return '// ' + SPDX
    if p.suffix in HASH_SUFFIX or p.name in HASH_NAMES or p.name.endswith(('.cmake.in', '.pc.in')):
        return '# ' + SPDX
    if p.parts[0] == '.ci':  # the CI scripts: bash, no suffix
        return '# ' + SPDX
    return None


def files(root):
    try:
        out = subprocess.run(['git', '-C', str(root), 'ls-files'], capture_output=True, text=True, check=True).stdout
        return [l for l in out.splitlines() if l and (root / l).is_file()]
    except (OSError, subprocess.CalledProcessError):
        found = []
        for f in root.rglob('*'):
            rel = f.relative_to(root)
            if f.is_file() and not any(x.startswith(('build', '.')) and x != '.ci' for x in rel.parts[:-1]):
                found.append(str(rel))
        return found


def spdx_ok(text, line):
    lines = text.splitlines()
    if lines and lines[0].startswith('#!'):
        lines = lines[1:]
    return bool(lines) and lines[0] == line


def add_spdx(path, line):
    text = path.read_text()
    if text.startswith('#!'):
        first, _, rest = text.partition('\n')
        path.write_text(first + '\n' + line + '\n' + rest)
    else:
        path.write_text(line + '\n' + text)


def plain_threads_line(path):
    head = path.read_text().split('#pragma once', 1)[0]
    return sum(1 for l in head.splitlines() if l.startswith('// Plain threads: ')) == 1


def main():
    args = sys.argv[1:]
    fix = bool(args) and args[0] == '--fix'
    args = args[1:] if fix else args
    if len(args) != 1:
        print('usage: source_check.py [--fix] SOURCE_DIR', file=sys.stderr)
        return 2
    root = Path(args[0]).resolve()
    bad = []

    sources = [(rel, comment_of(rel)) for rel in files(root)]
    sources = [(rel, c) for rel, c in sources if c]
    for rel, line in sources:
        if spdx_ok((root / rel).read_text(errors='replace'), line):
            continue
        if fix:
            add_spdx(root / rel, line)
            print(f'{rel}: added "{line}"')
        else:
            bad.append(f'{rel}: the first line (after any #!) is not "{line}"')

    headers = sorted((root / 'include' / 'weft').rglob('*.hpp'))
    for h in headers:
        if not plain_threads_line(h):
            bad.append(f'{h.relative_to(root)}: no single "// Plain threads: ..." line before #pragma once')

    for b in bad:
        print(b)
    if not sources or not headers:
        print('no source files or headers found: the layout changed; update this check')
        return 1
    print(f'{len(sources)} source files, {len(headers)} public headers checked: '
          + ('all as they should be' if not bad else f'{len(bad)} problem(s)'))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
