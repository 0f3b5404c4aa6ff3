#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""check_report.py — what issue 21 asks of weft-compare's report.md (check_compare.sh runs it).

usage: check_report.py REPORT_MD FIBER GO
  FIBER  'yes' when the build found Boost.Fiber (the boost-fiber column must be there), 'no'
         when it did not (the column must be absent and the report must say why)
  GO     'yes' when go is installed (the go column must measure the new workloads)

Checks, in the Results table:
  - the rows of the workloads issue 21 added (a burst at procs 1; unbuffered channel
    ping-pong, skynet and parked-created at procs 1 and 2) are there, and their cells in the
    weft, go and boost-fiber columns hold a positive figure (boost-fiber's channel ping-pong at
    procs 2 may instead have failed with its reason: Boost.Fiber 1.74's work_stealing can
    livelock there, see BENCHMARKS.md);
  - single-run figures with the warm median beside them ("*warm ...*") in the weft column;
  - the boost-fiber column is present iff FIBER, its growth cell reads "n/a [k]" and footnote
    k says Boost.Fiber's stacks do not grow; without it, a note names the missing package.
Exits 1 naming each failure.
"""
import re
import sys

NEW_ROWS = [
    r'^a burst of \S+ spawned before any runs',
    r'^unbuffered channel ping-pong round trip, procs 1$',
    r'^unbuffered channel ping-pong round trip, procs 2$',
    r'^skynet: a tree of \S+ leaves, procs 1$',
    r'^skynet: a tree of \S+ leaves, procs 2$',
    r'^\S+ parked on a channel, created \(per task\), procs 1$',
    r'^\S+ parked on a channel, created \(per task\), procs 2$',
]
FIGURE = re.compile(r'^≥?([0-9][0-9.,]*) (ns|µs|ms|s|B|KiB|MiB|GiB)\b')


def results_table(md):
    lines = md.split('\n')
    start = lines.index('## Results')
    header, rows = None, {}
    for line in lines[start + 1:]:
        if line.startswith('## '):
            break
        if not line.startswith('|') or line.startswith('|---'):
            continue
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if header is None:
            header = cells[1:]
        else:
            rows[cells[0]] = dict(zip(header, cells[1:]))
    return header or [], rows


def footnotes(md):
    return {int(n): why for n, why in re.findall(r'^\[(\d+)\] (.*)$', md, re.M)}


def main():
    path, fiber, go = sys.argv[1], sys.argv[2] == 'yes', sys.argv[3] == 'yes'
    md = open(path, encoding='utf-8').read()
    errors = []
    header, rows = results_table(md)
    notes = footnotes(md)
    if ('boost-fiber' in header) != fiber:
        errors.append(f'the boost-fiber column is {"missing" if fiber else "there"}, '
                      f'but the build {"found" if fiber else "did not find"} Boost.Fiber (columns: {header})')
    if not fiber and not re.search(r'^> \*\*Note:\*\* boost-fiber: no column in this build: .*libboost-fiber-dev', md, re.M):
        errors.append('no note saying why the boost-fiber column is absent')
    columns = ['weft'] + (['go'] if go else []) + (['boost-fiber'] if fiber else [])
    for pattern in NEW_ROWS:
        label = next((r for r in rows if re.search(pattern, r)), None)
        if label is None:
            errors.append(f'no row matching /{pattern}/')
            continue
        for col in columns:
            cell = rows[label].get(col, '')
            m = FIGURE.match(cell)
            if m and float(m.group(1).replace(',', '')) > 0:
                continue
            if col == 'boost-fiber' and 'channel ping-pong' in label and 'procs 2' in label and cell.startswith('failed ['):
                continue  # reported with its reason (see the docstring)
            errors.append(f'{col}, "{label}": no positive figure: {cell!r}')
    weft_spawn = next((c.get('weft', '') for r, c in rows.items() if r.startswith('spawn+join, one at a time')), '')
    if '<br>*warm ' not in weft_spawn:
        errors.append(f'weft, spawn+join one at a time: no warm figure beside the single-run one: {weft_spawn!r}')
    if fiber:
        grow = next((c.get('boost-fiber', '') for r, c in rows.items() if r.startswith('fresh task recursing')), None)
        m = re.fullmatch(r'n/a \[(\d+)\]', grow or '')
        if not m:
            errors.append(f'boost-fiber growth cell is not "n/a [k]": {grow!r}')
        elif 'Boost.Fiber stacks do not grow' not in notes.get(int(m.group(1)), ''):
            errors.append(f'boost-fiber growth cell\'s footnote gives no reason: {notes.get(int(m.group(1)))!r}')
    for e in errors:
        print(f'check_report.py: {path}: {e}', file=sys.stderr)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
