#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""checks.py — what the tests/build/*.py checks share: reading SOURCE_DIR, and the report.

    root = checks.source_dir('layering.py')     # the one argument, or exit 2 with the usage
    return checks.report(bad, 'differs', f'{n} files: ', 'the layers hold')
"""
import sys
from pathlib import Path


def source_dir(script):
    """The source directory given as the only argument; exits 2 with the usage otherwise."""
    if len(sys.argv) != 2:
        print(f'usage: {script} SOURCE_DIR', file=sys.stderr)
        sys.exit(2)
    return Path(sys.argv[1])


def report(bad, label, head, good):
    """Prints each problem after `label`, then `head` and `good` or the count; 1 if any."""
    for b in bad:
        print(f'{label}:', b)
    print(head + (good if not bad else f'{len(bad)} problem(s)'))
    return 1 if bad else 0
