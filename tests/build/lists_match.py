#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""lists_match.py — CMake and Meson build the same files and register the same tests (issue 17).

A sibling of options_match.py.  For every folder with both a CMakeLists.txt and a meson.build:
the source files each names (words ending in .cpp, .c or .S, comments left out) are the same
set.  Over the whole tree: the test names are the same set — CMake's add_test(NAME x) and
weft_add_test(NAME x), Meson's test('x', and the names Meson builds in loops from a list
(['weft_test_grow', ...]) or by concatenation ('weft_test_overshoot_' + level), with CMake's
${var} and Meson's concatenations both read as a wildcard.  Prints each difference; exits 1
if there is one.

usage: lists_match.py SOURCE_DIR
"""
import re
import sys
from pathlib import Path

import checks

SOURCE = re.compile(r"[\w./-]+\.(?:cpp|c|S)\b")


def strip_comments(text):
    return '\n'.join(line.split('#', 1)[0] for line in text.splitlines())


def sources(path):
    return {Path(s).as_posix().lstrip('./') for s in SOURCE.findall(strip_comments(path.read_text()))}


def cmake_tests(text):
    names = set()
    for m in re.finditer(r'(?:add_test|weft_add_test)\(\s*NAME\s+([\w${}]+)', text):
        names.add(re.sub(r'\$\{\w+\}', '*', m.group(1)))
    return names


def meson_tests(text):
    names = set()
    for m in re.finditer(r"\btest\(\s*'(\w+)'", text):
        names.add(m.group(1))
    # test('prefix' + x ...) / test(t[0] ...) with the names in a list of lists
    for m in re.finditer(r"\btest\(\s*'(\w+)'\s*\+", text):
        names.discard(m.group(1))
        names.add(m.group(1) + '*')
    if re.search(r"\btest\(\s*(\w+)\[0\]", text):
        for m in re.finditer(r"\[\s*'(weft_\w+)'\s*,", text):
            names.add(m.group(1))
    # 'weft_test_idioms' + (level == 'O2' ? '' : '_' + level): a name with and without a suffix
    for m in re.finditer(r"\btest\(\s*'(\w+)'\s*\+\s*\(", text):
        names.add(m.group(1))
    return names


def matches(name, patterns):
    return name in patterns or any(re.fullmatch(re.escape(p).replace(r'\*', r'\w*'), name) or
               re.fullmatch(re.escape(name).replace(r'\*', r'\w*'), p) for p in patterns)


def main():
    root = checks.source_dir('lists_match.py')
    bad = []
    folders = sorted(p.parent for p in root.rglob('CMakeLists.txt')
                     if (p.parent / 'meson.build').exists() and not p.relative_to(root).parts[0].startswith('build')
                     and not any(x.startswith('.') for x in p.relative_to(root).parts))
    cm_tests, me_tests = set(), set()
    for d in folders:
        rel = d.relative_to(root).as_posix() or '.'
        cm_text, me_text = (d / 'CMakeLists.txt').read_text(), (d / 'meson.build').read_text()
        cm_tests |= cmake_tests(strip_comments(cm_text))
        me_tests |= meson_tests(strip_comments(me_text))
        if rel == '.':
            continue  # the top level names no sources of its own
        cm, me = sources(d / 'CMakeLists.txt'), sources(d / 'meson.build')
        for f in sorted(cm - me):
            bad.append(f'{rel}: CMake builds {f}, Meson does not')
        for f in sorted(me - cm):
            bad.append(f'{rel}: Meson builds {f}, CMake does not')
    for t in sorted(cm_tests):
        if not matches(t, me_tests):
            bad.append(f'test {t} is registered by CMake only')
    for t in sorted(me_tests):
        if not matches(t, cm_tests):
            bad.append(f'test {t} is registered by Meson only')
    if not folders or not cm_tests:
        bad.append('no build files or tests found: their form changed; update this check')
    return checks.report(bad, 'differs', f'{len(folders)} folders, {len(cm_tests)} CMake and {len(me_tests)} Meson test names: ',
                         'the same files and tests')


if __name__ == '__main__':
    sys.exit(main())
