#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Check that docs/security.md only names tests that exist.

usage: check-security-refs.py SOURCE_ROOT

docs/security.md points each invariant at its tests with references of the
form `tests/<path>: name, name ...` (a file and the test functions in it) or
`tests/<path>` (a whole file, e.g. a fuzz target).  This script fails when
  - a named file does not exist;
  - a named function is not a test in that file: it must be defined there
    (START_TEST(name), or a function definition "name(" at the start of a
    line after its return type) and named a second time (registered with
    tcase_add_test or called), so a test that was renamed, deleted or left
    unregistered cannot keep a line of the checklist green;
  - a checklist item (a top-level "- " bullet after the line starting with
    "<!-- checklist") has neither a reference nor a plain "not yet" saying
    what is missing.
Exit status 0 when all is well, 1 otherwise; every problem is printed with
its line in docs/security.md.
"""
import os
import re
import sys

REF = re.compile(r'`(tests/[^`:\s]+)(?::\s*([^`]*))?`')
NAME = re.compile(r'^[A-Za-z_]\w*$')
MARKER = '<!-- checklist'


def is_test_in(name, text):
    n = re.escape(name)
    defined = (re.search(r'START_TEST\s*\(\s*' + n + r'\s*\)', text)
               or re.search(r'^(?:[A-Za-z_][\w \t\*]*[\s\*])' + n + r'\s*\(',
                            text, re.M))
    if not defined:
        return 'not defined'
    if len(re.findall(r'\b' + n + r'\b', text)) < 2:
        return 'defined but never registered or called'
    return None


def bullets(lines):
    """Yield (first line number, text) for each top-level bullet."""
    start, buf = None, []
    for no, line in enumerate(lines, 1):
        if line.startswith('- '):
            if buf:
                yield start, ' '.join(buf)
            start, buf = no, [line]
        elif buf and line.startswith('  ') and line.strip():
            buf.append(line.strip())
        else:
            if buf:
                yield start, ' '.join(buf)
            start, buf = None, []
    if buf:
        yield start, ' '.join(buf)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    root = os.path.abspath(sys.argv[1])
    doc = os.path.join(root, 'docs', 'security.md')
    with open(doc, encoding='utf-8') as f:
        lines = f.read().split('\n')
    errors = []
    cache = {}
    nrefs = nfuncs = 0
    # References may wrap onto the next line inside one bullet, so scan
    # bullets (joined) and everything else line by line.
    try:
        first = next(i for i, l in enumerate(lines) if l.startswith(MARKER))
    except StopIteration:
        errors.append('1: the marker line "%s" is missing' % MARKER)
        first = len(lines)
    for no, text in bullets(lines[first:]):
        no += first
        if not REF.search(text) and 'not yet' not in text:
            errors.append('%d: checklist item with no test reference and no '
                          '"not yet": %s' % (no, text[:70]))
    for no, line in enumerate(lines, 1):
        for m in REF.finditer(line):
            path, names = m.group(1), m.group(2)
            nrefs += 1
            full = os.path.join(root, path)
            if os.path.isdir(full) and not names:
                continue
            if not os.path.isfile(full):
                errors.append('%d: %s: no such file' % (no, path))
                continue
            if full not in cache:
                with open(full, encoding='utf-8', errors='replace') as f:
                    cache[full] = f.read()
            for name in (names or '').split(','):
                name = name.strip()
                if not name:
                    continue
                nfuncs += 1
                if not NAME.match(name):
                    errors.append('%d: %s: "%s" is not a function name'
                                  % (no, path, name))
                    continue
                why = is_test_in(name, cache[full])
                if why:
                    errors.append('%d: %s: %s: %s' % (no, path, name, why))
    # A reference split across two lines would escape the check above.
    for no, line in enumerate(lines, 1):
        if line.count('`') % 2 and 'tests/' in line:
            errors.append('%d: a `tests/...` reference wraps across lines; '
                          'keep each on one line' % no)
    for e in errors:
        print('docs/security.md:' + e)
    print('%d reference(s), %d test function(s) checked, %d problem(s)'
          % (nrefs, nfuncs, len(errors)))
    if nrefs == 0:
        print('no references found: the format has changed?')
        return 1
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
