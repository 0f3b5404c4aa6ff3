#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""options_match.py — the two builds expose the same options (STYLE.md 8, issue 2).

Reads the option declarations of CMakeLists.txt (option(WEFT_X ...) and
weft_choice_option(WEFT_X ...)) and meson_options.txt (option('x', ...)) and checks:
the same names (WEFT_<NAME> in CMake is <name> in Meson), the same allowed values and
default for every choice option, and the same default for every boolean whose CMake default
is a literal ON/OFF.  Prints both tables; exits 1 naming each difference.

usage: options_match.py SOURCE_DIR
"""
import re
import sys

import checks


def cmake_options(text):
    opts = {}
    decl = re.compile(r'^\s*(weft_choice_option|option)\((WEFT_\w+)\s+"(?:[^"\\]|\\.)*"([^)]*)\)', re.M)
    for m in decl.finditer(text):
        key = m.group(2)[len('WEFT_'):].lower()
        args = [a[1:-1] if a.startswith('"') else a for a in re.findall(r'"[^"]*"|\S+', m.group(3))]
        if m.group(1) == 'option':
            default = args[0] if args else 'OFF'
            value = {'ON': True, 'OFF': False}.get(default.upper())  # None: computed
            opts[key] = ('boolean', value, None)
        else:
            default, others = args[0], args[1].split(';') if len(args) > 1 else []
            opts[key] = ('combo', default, sorted([default] + others))
    return opts


def meson_options(text):
    opts = {}
    for m in re.finditer(r"^\s*option\('(\w+)',(.*)\)\s*$", text, re.M):
        key, rest = m.group(1), m.group(2)
        kind = re.search(r"type\s*:\s*'(\w+)'", rest).group(1)
        value = re.search(r"value\s*:\s*('[^']*'|true|false)", rest)
        value = value.group(1) if value else None
        if kind == 'boolean':
            opts[key] = ('boolean', {'true': True, 'false': False}.get(value), None)
        elif kind == 'feature':
            # A CMake boolean with a computed default (ON only at top level) is a Meson feature
            # whose 'auto' computes the same.
            opts[key] = ('boolean', {"'enabled'": True, "'disabled'": False}.get(value), None)
        else:
            choices = re.findall(r"'([^']*)'", re.search(r"choices\s*:\s*\[([^\]]*)\]", rest).group(1))
            opts[key] = ('combo', value.strip("'") if value else None, sorted(choices))
    return opts


def main():
    root = checks.source_dir('options_match.py')
    cm = cmake_options((root / 'CMakeLists.txt').read_text())
    me = meson_options((root / 'meson_options.txt').read_text())
    print('CMake:', ', '.join('WEFT_' + k.upper() for k in sorted(cm)))
    print('Meson:', ', '.join(sorted(me)))
    bad = []
    for k in sorted(set(cm) - set(me)):
        bad.append(f'WEFT_{k.upper()} is a CMake option with no Meson option {k!r}')
    for k in sorted(set(me) - set(cm)):
        bad.append(f'{k!r} is a Meson option with no CMake option WEFT_{k.upper()}')
    for k in sorted(set(cm) & set(me)):
        (ck, cv, cc), (mk, mv, mc) = cm[k], me[k]
        if ck != mk:
            bad.append(f'{k}: CMake declares a {ck}, Meson a {mk}')
        elif ck == 'combo' and (cv != mv or cc != mc):
            bad.append(f'{k}: CMake allows {cc} (default {cv!r}), Meson {mc} (default {mv!r})')
        elif ck == 'boolean' and cv is not None and cv != mv:
            bad.append(f'{k}: default {cv} in CMake, {mv} in Meson')
    if not cm or not me:
        bad.append('no options found: the declarations changed form; update this check')
    return checks.report(bad, 'differs', '', 'the same options in both builds')


if __name__ == '__main__':
    sys.exit(main())
