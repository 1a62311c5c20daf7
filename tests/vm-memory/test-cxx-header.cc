// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
// vm-memory.h used from C++ (before C++23 there is no global memory_order):
// the atomic accessors take std::memory_order and reach the C library with
// the same values.  Exits 0 on success, 1 with a message on failure.
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "cvmm/vm-memory.h"

#define CHECK(c)                                                      \
	do {                                                          \
		if (!(c)) {                                           \
			std::fprintf(stderr, "%s:%d: %s\n", __FILE__, \
				     __LINE__, #c);                   \
			return 1;                                     \
		}                                                     \
	} while (0)

int main()
{
	struct guest_region_params p;
	struct guest_region *r = nullptr;
	struct guest_memory *m = nullptr;
	uint32_t v32 = 0;
	uint64_t v64 = 0;
	uint16_t v16 = 0;

	std::memset(&p, 0, sizeof(p));
	p.gpa = 0x1000;
	p.size = GUEST_MEMORY_PAGE_SIZE;
	p.backing = GUEST_REGION_ANON_PRIVATE;
	CHECK(guest_region_create(&p, &r) == 0);
	CHECK(guest_memory_create(&r, 1, &m) == 0);
	guest_region_unref(r);

	CHECK(guest_memory_store_u32(m, 0x1004, 0xdeadbeef,
				     std::memory_order_release) == 0);
	CHECK(guest_memory_load_u32(m, 0x1004, &v32,
				    std::memory_order_acquire) == 0);
	CHECK(v32 == 0xdeadbeef);
	CHECK(guest_memory_store_u64(m, 0x1008, 0x0123456789abcdefull,
				     std::memory_order_seq_cst) == 0);
	CHECK(guest_memory_load_u64(m, 0x1008, &v64,
				    std::memory_order_relaxed) == 0);
	CHECK(v64 == 0x0123456789abcdefull);
	CHECK(guest_memory_store_u16(m, 0x1002, 0xabcd,
				     std::memory_order_relaxed) == 0);
	CHECK(guest_memory_load_u16(m, 0x1002, &v16,
				    std::memory_order_seq_cst) == 0);
	CHECK(v16 == 0xabcd);
	// The library sees the same order values as C callers: the orders
	// it refuses are refused here too.
	CHECK(guest_memory_load_u32(m, 0x1004, &v32,
				    std::memory_order_release) == -EINVAL);
	CHECK(guest_memory_store_u32(m, 0x1004, 1, std::memory_order_acquire) ==
	      -EINVAL);
	CHECK(guest_memory_store_u32(m, 0x1004, 1, std::memory_order_acq_rel) ==
	      -EINVAL);
	CHECK(guest_memory_load_u32(m, 0x1006, &v32,
				    std::memory_order_acquire) == -EINVAL);
	guest_memory_unref(m);
	return 0;
}
