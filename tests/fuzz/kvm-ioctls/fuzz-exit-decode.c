/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target for kvm_exit_decode(): the kvm_run page is written by
 * the kernel, but its offsets and counts (io.data_offset, io.size * count,
 * mmio.len, ndata...) must still never send a caller outside the mapping.
 * The input is the mapping; its first two bytes choose the mapping size.
 * After a successful decode every byte the decoded exit points at is read
 * (and the writable replies written), so ASan reports any pointer that
 * leaves the buffer.
 */
#include <cvmm/kvm-ioctls.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

static void touch(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		sink ^= p[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvm_exit_info x;
	size_t map_size;
	struct kvm_run *run;
	uint8_t *page;
	int r;

	if (size < 2)
		return 0;
	/* sizeof(struct kvm_run) .. 3 pages, the usual vCPU mmap size. */
	map_size = sizeof(struct kvm_run) +
		   (((size_t)data[0] << 8 | data[1]) % (3 * 4096));
	data += 2;
	size -= 2;
	run = aligned_alloc(64, (map_size + 63) & ~(size_t)63);
	if (!run)
		return 0;
	page = (uint8_t *)run;
	memset(page, 0, map_size);
	memcpy(page, data, size < map_size ? size : map_size);

	r = kvm_exit_decode(run, map_size, &x);
	/* A refused page yields reason and run only: nothing to follow. */
	if (r < 0 && (r != -EPROTO || x.known || x.run != run))
		abort();
	if (r == 0 && x.known) {
		switch (x.reason) {
		case KVM_EXIT_IO:
			touch(x.io.data, x.io.len);
			break;
		case KVM_EXIT_MMIO:
			if (x.mmio.len > 8)
				abort();
			touch(x.mmio.data, x.mmio.len);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			touch((const uint8_t *)x.internal.data,
			      x.internal.ndata * sizeof(__u64));
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			touch((const uint8_t *)x.system_event.data,
			      x.system_event.ndata * sizeof(__u64));
			break;
		case KVM_EXIT_X86_RDMSR:
		case KVM_EXIT_X86_WRMSR:
			*x.msr.data = 1;
			*x.msr.error = 0;
			break;
		case KVM_EXIT_HYPERCALL:
			touch((const uint8_t *)x.hypercall.args,
			      6 * sizeof(__u64));
			*x.hypercall.ret = 0;
			break;
		default:
			break;
		}
	}
	free(run);
	return 0;
}
