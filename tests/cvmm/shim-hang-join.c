/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * LD_PRELOAD shim for test_watchdog.py: joining a thread never succeeds,
 * so cvmm's stop waits for good on a vCPU thread that is gone.
 */
#include <errno.h>
#include <pthread.h>

int pthread_tryjoin_np(pthread_t thread, void **ret)
{
	(void)thread;
	(void)ret;
	return EBUSY;
}
