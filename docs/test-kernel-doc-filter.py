#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Unit tests of docs/kernel-doc-filter.py (meson test 'docs-filter')."""
import importlib.util
import os
import unittest

_spec = importlib.util.spec_from_file_location(
    'kernel_doc_filter',
    os.path.join(os.path.dirname(os.path.abspath(__file__)),
                 'kernel-doc-filter.py'))
kdf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kdf)

HEADER = '''/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libx: what it is.
 *
 * Life cycle:
 *   x_create()      once
 *   x_destroy(@x)   at the end
 *
 * More text about @x.
 */
/**
 * struct x_config - what a config holds.
 * @a: the a.
 * @b, @c: the b and c.
 */
struct x_config {
	int a; /**< see @b */
	int b, c;
};

/**
 * x_create() - make one, e.g. from @cfg.
 * @cfg: the config,
 * continued here.
 * @out: receives it.
 * Errors: -EINVAL (NULL @out).
 */
int x_create(const struct x_config *cfg, struct x **out);
/** x_a() / x_b() - two at once. */
void x_a(void);
'''


class FilterTest(unittest.TestCase):
    def setUp(self):
        self.out = kdf.filter_header(HEADER).split('\n')
        self.src = HEADER.split('\n')

    def line(self, text):
        return next(n for n, l in enumerate(self.src) if text in l)

    def test_same_number_of_lines(self):
        self.assertEqual(len(self.out), len(self.src))

    def test_file_comment_becomes_file_doc(self):
        self.assertEqual(self.out[1], '/** \\file')
        self.assertEqual(self.out[0], self.src[0])

    def test_indented_block_is_verbatim(self):
        n = self.line('x_create()      once')
        self.assertTrue(self.out[n - 1].endswith('\\verbatim'))
        self.assertTrue(self.out[n + 1].endswith('\\endverbatim'))
        # No conversion inside, and no "*" margin.
        self.assertIn('x_destroy(@x)', self.out[n + 1])
        self.assertNotIn('*', self.out[n].split('x_create')[0])

    def test_inline_reference(self):
        self.assertIn('More text about \\p x.', self.out[self.line('More')])

    def test_struct_members_are_list_items(self):
        self.assertIn('What a config holds.',
                      self.out[self.line('struct x_config -')])
        self.assertIn('- \\p a: the a.', self.out[self.line(' * @a:')])
        self.assertIn('- \\p b, \\p c: the b and c.',
                      self.out[self.line(' * @b, @c:')])
        self.assertIn('/**< see \\p b */', self.out[self.line('int a;')])

    def test_function_params(self):
        self.assertIn('Make one, e.g.\\ from \\p cfg.',
                      self.out[self.line('x_create() -')])
        self.assertIn('\\param cfg the config,', self.out[self.line('@cfg:')])
        # An unindented continuation after a comma stays in the parameter.
        self.assertFalse(self.out[self.line('@cfg:')].endswith('\\par'))
        # Text back at the margin after a sentence ends the parameter list.
        self.assertTrue(self.out[self.line('@out:')].endswith('\\par'))
        self.assertIn('(NULL \\p out)', self.out[self.line('Errors:')])

    def test_several_names_keep_them(self):
        self.assertIn('/** x_a() / x_b(): two at once. */',
                      self.out[self.line('x_a() / x_b()')])


if __name__ == '__main__':
    unittest.main()
