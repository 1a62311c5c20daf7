#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Build c-vmm's API reference with doxygen, warnings as errors.

usage: doxygen.py SOURCE_ROOT OUTPUT_DIR [PROJECT_VERSION]

Reads docs/Doxyfile, adds the inputs (docs/*.md as pages with
docs/README.md the main page, and every SOURCE_ROOT/lib*/include directory,
so a new library or header is picked up without editing this file), the
output directory and the kernel-doc filter for headers, and runs
`doxygen -`.  Prints each warning and exits 1 if there was any, 77 (meson's
"skipped") when doxygen is not installed, 0 otherwise.  The HTML lands in
OUTPUT_DIR/html.
"""
import glob
import os
import shutil
import subprocess
import sys


def quote(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def main():
    if len(sys.argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    src = os.path.abspath(sys.argv[1])
    out = os.path.abspath(sys.argv[2])
    version = sys.argv[3] if len(sys.argv) == 4 else ''
    doxygen = os.environ.get('DOXYGEN') or shutil.which('doxygen')
    if not doxygen:
        print('doxygen not found: install it (Debian: apt-get install doxygen)')
        return 77
    inputs = sorted(d for d in glob.glob(os.path.join(src, 'lib*', 'include'))
                    if os.path.isdir(d))
    if not inputs:
        print('no lib*/include directories under ' + src)
        return 1
    # The project's documents become pages of the reference; the index
    # (docs/README.md) is its main page.
    docs = os.path.join(src, 'docs')
    pages = [os.path.join(docs, 'README.md')]
    pages += sorted(p for p in glob.glob(os.path.join(docs, '*.md'))
                    if p not in pages)
    os.makedirs(out, exist_ok=True)
    warn_log = os.path.join(out, 'doxygen-warnings.txt')
    with open(os.path.join(src, 'docs', 'Doxyfile'), encoding='utf-8') as f:
        config = f.read()
    filt = os.path.join(src, 'docs', 'kernel-doc-filter.py')
    config += '\n'.join([
        '',
        'INPUT = ' + ' '.join(quote(d) for d in pages + inputs),
        'USE_MDFILE_AS_MAINPAGE = ' + quote(pages[0]),
        'STRIP_FROM_PATH = ' + quote(src),
        'STRIP_FROM_INC_PATH = ' + ' '.join(quote(d) for d in inputs),
        'OUTPUT_DIRECTORY = ' + quote(out),
        # doxygen runs the filter through the shell: quote both paths.
        'FILTER_PATTERNS = ' + quote("*.h='%s' '%s'" % (sys.executable, filt)),
        'PROJECT_NUMBER = ' + quote(version),
        'WARN_LOGFILE = ' + quote(warn_log),
        '',
    ])
    proc = subprocess.run([doxygen, '-'], input=config, text=True, cwd=out)
    warnings = ''
    if os.path.exists(warn_log):
        with open(warn_log, encoding='utf-8', errors='replace') as f:
            warnings = f.read().strip()
    if warnings:
        print(warnings)
    nwarn = len(warnings.splitlines()) if warnings else 0
    print('doxygen: %d header folder(s), %d warning line(s), exit %d; HTML in %s'
          % (len(inputs), nwarn, proc.returncode, os.path.join(out, 'html')))
    if proc.returncode != 0 or warnings:
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
