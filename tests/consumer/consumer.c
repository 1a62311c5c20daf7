/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A program outside c-vmm that uses its installed or subproject libraries:
 * one real call into each implemented library.
 */
#include <cvmm/devices/bus.h>
#include <cvmm/kvm-ioctls.h>
#include <cvmm/linux-loader.h>
#include <cvmm/vfio.h>
#include <cvmm/vhost.h>
#include <cvmm/virtio-queue-driver.h>
#include <cvmm/virtio-queue.h>
#include <cvmm/vm-allocator.h>
#include <cvmm/vm-memory.h>
#include <stdio.h>
#include <string.h>

static int memory_round_trip(void)
{
	struct guest_region_params p = {
		.gpa = 0x1000,
		.size = 0x10000,
		.backing = GUEST_REGION_ANON_PRIVATE,
	};
	struct guest_region *r = NULL;
	struct guest_memory *m = NULL;
	char buf[6] = {0};
	int err;

	err = guest_region_create(&p, &r);
	if (!err)
		err = guest_memory_create(&r, 1, &m);
	if (!err)
		err = guest_memory_write(m, 0x2000, "c-vmm", 6);
	if (!err)
		err = guest_memory_read(m, 0x2000, buf, 6);
	guest_memory_unref(m);
	guest_region_unref(r);
	return err ? err : strcmp(buf, "c-vmm") != 0;
}

static int allocate_once(void)
{
	struct address_allocator *a = NULL;
	uint64_t addr = 0;
	int err;

	err = address_allocator_create(0x1000, 0xffff, &a);
	if (!err)
		err = address_allocator_allocate(a, 0x100, 0x100,
						 ADDRESS_ALLOC_LAST_FIT, &addr);
	address_allocator_destroy(a);
	return err ? err : addr != 0xff00;
}

/* The device API pops and completes a chain the mock driver (the
 * test-support library cvmm-virtio-queue-driver) made available. */
static int virtq_round_trip(void)
{
	struct guest_region_params p = {
		.size = 0x10000,
		.backing = GUEST_REGION_ANON_PRIVATE,
	};
	struct virtq_driver_buf b = {0x8000, 16, VRING_DESC_F_WRITE};
	struct guest_region *r = NULL;
	struct guest_memory *m = NULL;
	struct virtq_driver *d = NULL;
	struct virtq *q = NULL;
	struct virtq_chain *c = virtq_chain_alloc(4);
	struct vring_used_elem e = {0, 0};
	guest_addr_t da, aa, ua;
	int err;

	virtq_driver_layout(64, 0x1000, &da, &aa, &ua);
	err = c ? guest_region_create(&p, &r) : -1;
	if (!err)
		err = guest_memory_create(&r, 1, &m);
	if (!err)
		err = virtq_create(64, &q);
	if (!err)
		err = virtq_set_memory(q, m);
	if (!err)
		err = virtq_driver_create(m, 64, 0, da, aa, ua, &d);
	if (!err)
		err = virtq_driver_configure(d, q);
	if (!err)
		err = virtq_driver_add(d, &b, 1, NULL);
	if (!err)
		err = virtq_pop(q, c) == 1 ? 0 : 1;
	if (!err)
		err = virtq_chain_write(c, "c-vmm", 5) == 5 ? 0 : 1;
	if (!err)
		err = virtq_complete(q, c);
	if (!err)
		err = virtq_driver_get_used(d, &e) == 1 && e.len == 5 ? 0 : 1;
	virtq_driver_destroy(d);
	virtq_destroy(q);
	virtq_chain_free(c);
	guest_memory_unref(m);
	guest_region_unref(r);
	return err;
}

static int other_libraries(void)
{
	struct io_bus *bus = NULL;
	int err;

	if (strcmp(kvm_exit_reason_name(KVM_EXIT_HLT), "HLT") != 0)
		return 1;
	err = virtq_round_trip();
	if (!err)
		err = io_bus_create(&bus);
	if (!err) {
		struct vhost_user_backend *vb = NULL;

		err = vhost_user_backend_create(NULL, &vb);
		vhost_user_backend_destroy(vb);
		if (!err &&
		    strcmp(vhost_user_request_name(VHOST_USER_SET_OWNER),
			   "SET_OWNER") != 0)
			err = 1;
	}
	io_bus_destroy(bus);
	return err;
}

/* Every library's runtime version is the one its headers announce. */
static int versions(void)
{
	const struct {
		const char *name;
		unsigned int linked, header;
	} v[] = {
		{"vm-memory", cvmm_vm_memory_version(),
		 CVMM_VM_MEMORY_VERSION_NUMBER},
		{"vm-allocator", cvmm_vm_allocator_version(),
		 CVMM_VM_ALLOCATOR_VERSION_NUMBER},
		{"kvm-ioctls", cvmm_kvm_ioctls_version(),
		 CVMM_KVM_IOCTLS_VERSION_NUMBER},
		{"virtio-queue", cvmm_virtio_queue_version(),
		 CVMM_VIRTIO_QUEUE_VERSION_NUMBER},
		{"vfio", cvmm_vfio_version(), CVMM_VFIO_VERSION_NUMBER},
		{"devices", cvmm_devices_version(),
		 CVMM_DEVICES_VERSION_NUMBER},
		{"linux-loader", cvmm_linux_loader_version(),
		 CVMM_LINUX_LOADER_VERSION_NUMBER},
		{"vhost", cvmm_vhost_version(), CVMM_VHOST_VERSION_NUMBER},
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (v[i].linked != v[i].header) {
			fprintf(stderr, "consumer: lib%s is %u, headers %u\n",
				v[i].name, v[i].linked, v[i].header);
			return 1;
		}
	}
	return strcmp(cvmm_vm_memory_version_string(),
		      CVMM_VM_MEMORY_VERSION) != 0;
}

int main(void)
{
	int err = versions();

	if (!err)
		err = memory_round_trip();

	if (!err)
		err = allocate_once();
	if (!err)
		err = other_libraries();
	if (err) {
		fprintf(stderr, "consumer: failed (%d)\n", err);
		return 1;
	}
	printf("consumer: ok\n");
	return 0;
}
