#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""options_readme.py — the README's "Runtime options" table says what the options table says.

runtime/sched/options.cpp holds the one options table (kOptions): per WEFT_* variable the
options field(s) it sets and its default.  This reads those rows and the README's table rows
(| `WEFT_X` | `field` | allowed | default |) and checks: the same variables, the same fields,
and every part of a row's default ("; " between parts) in the README's default column (with
its backticks dropped).  Prints each difference; exits 1 if there is one.

usage: options_readme.py SOURCE_DIR
"""
import re
import sys

import checks

ROW = re.compile(r'\{"(WEFT_\w+)",\s*"([^"]*)",\s*"([^"]*)",')


def code_rows(text):
    start = text.index('kOptions[] = {')
    return {m.group(1): (m.group(2), m.group(3)) for m in ROW.finditer(text[start:])}


def readme_rows(text):
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r'(?<!\\)\|', line)[1:-1]]
        if len(cells) == 4 and re.fullmatch(r'`WEFT_\w+`', cells[0]):
            var = cells[0].strip('`')
            fields = ', '.join(f.strip().strip('`') for f in cells[1].split(','))
            rows[var] = (fields, cells[3].replace('`', ''))
    return rows


def main():
    root = checks.source_dir('options_readme.py')
    code = code_rows((root / 'runtime/sched/options.cpp').read_text())
    # Only the runtime options' table: the build options (WEFT_BUILD_TESTS ...) have no field.
    readme = {k: v for k, v in readme_rows((root / 'README.md').read_text()).items() if k in code or not k.startswith(
        ('WEFT_BUILD_', 'WEFT_SPLIT_STACK', 'WEFT_SANITIZE', 'WEFT_ALLOCATOR', 'WEFT_INSTALL'))}
    bad = []
    for var in sorted(set(code) - set(readme)):
        bad.append(f'{var} is in the options table but not in the README\'s table')
    for var in sorted(set(readme) - set(code)):
        bad.append(f'{var} is in the README\'s table but not in the options table (runtime/sched/options.cpp)')
    for var in sorted(set(code) & set(readme)):
        (cf, cd), (rf, rd) = code[var], readme[var]
        if cf != rf:
            bad.append(f'{var}: field {cf!r} in options.cpp, {rf!r} in the README')
        for part in cd.split('; '):
            if part not in rd:
                bad.append(f'{var}: default {part!r} (options.cpp) is not in the README\'s {rd!r}')
    if not code:
        bad.append('no rows found in options.cpp: the table changed form; update this check')
    return checks.report(bad, 'differs', f'{len(code)} options: ', 'the README agrees')


if __name__ == '__main__':
    sys.exit(main())
