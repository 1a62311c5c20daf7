/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* cvmm: the example VMM of c-vmm.  See cvmm.1. */
#include "cvmm.h"

int main(int argc, char **argv)
{
	uint64_t start = cvmm_now_ns();
	struct cvmm_opts o;
	int r = cvmm_parse_args(argc, argv, &o);

	if (r >= 0)
		return r;
	r = cvmm_run(&o, start);
	cvmm_opts_release(&o);
	return r;
}
