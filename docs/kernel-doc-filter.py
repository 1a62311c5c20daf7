#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Doxygen INPUT_FILTER: read a c-vmm public header written with kernel-doc
style comments and print it with doxygen markup instead.

The headers are written for people first, in the kernel-doc habit:

    /**
     * virtq_create() - a new, unconfigured queue.
     * @max_size: the device's maximum queue size ...
     * ... fills @out ...
     */

Doxygen reads "@word" as a command, so this filter rewrites, inside "/**"
comments only and without changing the number of lines (warnings keep
pointing at the right line):

  - "name() - summary" (or "struct x - ", "enum x - ") at the start of a
    comment: the prefix goes, the summary becomes the brief description;
    a comment naming several functions ("a() / b() - ...") keeps the names;
  - "@name:" at the start of a comment line: "\\param name" before a
    function, a list item "- \\p name:" before a struct, union or enum
    (where kernel-doc describes members that way);
  - any other "@name": "\\p name" (a reference to an argument or member).

The file's leading plain comment (after the SPDX line) becomes its \\file
documentation, so a header's overview is the first thing its page shows.
"""
import re
import sys

SUMMARY = re.compile(
    r'^(?P<lead>\s*(?:/\*\*|\*)\s*)'
    r'(?P<names>(?:(?:struct|enum|union|typedef)\s+\w+'
    r'|[\w*]+\(\)(?:\s*/\s*[\w*]+\(\))*))'
    r'\s+-\s+(?P<text>.*)$')
AT_PARAM = re.compile(r'^(?P<lead>\s*(?:/\*\*|\*)?\s*)'
                      r'@(?P<name>\w+(?:\s*,\s*@\w+)*)\s*:(?:\s|$)')
AT_INLINE = re.compile(r'(?<![\w\\@])@(\w+)')
ABBREV = re.compile(r'\b(e\.g\.|i\.e\.|etc\.|vs\.) ')
AGGREGATE = re.compile(r'^\s*(?:typedef\s+)?(?:struct|union|enum)\b')


def next_code_line(lines, i):
    """The first line after index i that is not blank and not a comment."""
    in_comment = False
    for line in lines[i + 1:]:
        s = line.strip()
        if in_comment:
            if '*/' in s:
                in_comment = False
            continue
        if not s or s.startswith('//'):
            continue
        if s.startswith('/*'):
            if '*/' not in s:
                in_comment = True
            continue
        return line
    return ''


LIST_ITEM = re.compile(r'(?:- |\* |\d+[.)] |@\w+(?:\s*,\s*@\w+)*\s*:)')


def code_runs(block):
    """Indexes of the lines of a comment that form indented blocks (tables,
    code examples) outside any list item or parameter description: runs of
    lines indented by two or more spaces past the comment's margin."""
    runs, cur, in_list = [], [], False
    for n, line in enumerate(block):
        m = re.match(r'^\s*\*(?!/) ?(.*)$', line)
        if n == 0 or not m or '*/' in line:
            if cur:
                runs.append(cur)
                cur = []
            continue
        text = m.group(1)
        body = text.strip()
        indent = len(text) - len(text.lstrip())
        if not body:
            if cur:
                runs.append(cur)
                cur = []
            in_list = False
            continue
        if LIST_ITEM.match(body):
            in_list = True
        if indent >= 2 and not in_list:
            cur.append(n)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return runs


def filter_comment(block, before_aggregate):
    out = []
    param_col = None
    verbatim = set()
    start_before, end_at = set(), set()
    for run in code_runs(block):
        verbatim.update(run)
        start_before.add(run[0] - 1)
        end_at.add(run[-1])
    for n, line in enumerate(block):
        if n in verbatim:
            # Inside \verbatim doxygen keeps the "*" margin: blank it.
            line = re.sub(r'^(\s*)\*', r'\1 ', line, count=1)
            out.append(line + (' \\endverbatim' if n in end_at else ''))
            continue
        if n == 0 or (n == 1 and block[0].strip() == '/**'):
            m = SUMMARY.match(line)
            if m:
                names = m.group('names')
                text = m.group('text')
                if '/' in names:
                    text = names + ': ' + text
                elif re.match(r'[a-z]+\b(?![(_])', text):
                    text = text[0].upper() + text[1:]
                line = m.group('lead') + text
        m = AT_PARAM.match(line)
        body = re.match(r'^\s*\*?( *)(\S?)', line)
        if m:
            param_col = len(m.group('lead'))
        elif param_col is not None:
            if not body.group(2) or body.group(2) == '/':
                param_col = None
            elif (len(line) - len(line.lstrip(' *\t')) <= param_col
                  and out and out[-1].rstrip().endswith(('.', '.)'))):
                # Text back at the margin after "@x:" lines: a new paragraph,
                # not more of the last parameter's description.
                param_col = None
                if not before_aggregate and out:
                    out[-1] += ' \\par'
        if m:
            rest = line[m.end():]
            names = [n.strip().lstrip('@') for n in m.group('name').split(',')]
            if before_aggregate:
                line = (m.group('lead') + '- ' +
                        ', '.join('\\p ' + n for n in names) + ': ' + rest)
            else:
                line = (m.group('lead') + '\\param ' + ','.join(names) + ' ' +
                        rest)
        line = AT_INLINE.sub(r'\\p \1', line)
        # "e.g. x" would end the brief description at "e.g.".
        line = ABBREV.sub(r'\1\\ ', line)
        if n in start_before:
            line += ' \\verbatim'
        out.append(line)
    return out


def filter_header(text):
    lines = text.split('\n')
    out = []
    i = 0
    file_doc_done = False
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if s.startswith('/*') and not s.startswith('/**') and '*/' not in s:
            # A plain multi-line comment: the first one is the file overview.
            j = i
            while j < len(lines) and '*/' not in lines[j]:
                j += 1
            block = lines[i:j + 1]
            if not file_doc_done:
                file_doc_done = True
                block[0] = block[0].replace('/*', '/** \\file', 1)
                block = filter_comment(block, False)
            out.extend(block)
            i = j + 1
            continue
        if s.startswith('/**'):
            j = i
            while j < len(lines) and '*/' not in lines[j]:
                j += 1
            block = lines[i:j + 1]
            trailing = s.startswith('/**<')
            agg = bool(AGGREGATE.match(next_code_line(lines, j)))
            if trailing:
                out.extend(AT_INLINE.sub(r'\\p \1', b) for b in block)
            else:
                out.extend(filter_comment(block, agg))
            i = j + 1
            continue
        # Trailing member comments after code: "int x; /**< ... @y ... */"
        if '/**<' in line:
            head, tail = line.split('/**<', 1)
            line = head + '/**<' + AT_INLINE.sub(r'\\p \1', tail)
            out.append(line)
            if '*/' not in tail:
                i += 1
                while i < len(lines) and '*/' not in lines[i]:
                    out.append(AT_INLINE.sub(r'\\p \1', lines[i]))
                    i += 1
                if i < len(lines):
                    out.append(AT_INLINE.sub(r'\\p \1', lines[i]))
            i += 1
            continue
        out.append(line)
        i += 1
    return '\n'.join(out)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write('usage: kernel-doc-filter.py HEADER\n')
        return 2
    with open(sys.argv[1], encoding='utf-8') as f:
        text = f.read()
    sys.stdout.write(filter_header(text))
    return 0


if __name__ == '__main__':
    sys.exit(main())
