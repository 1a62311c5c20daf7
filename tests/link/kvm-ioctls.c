/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Link test: libkvm-ioctls alone, static and shared.  Needs no /dev/kvm. */
#include <errno.h>
#include <string.h>

#include <cvmm/kvm-ioctls.h>

int main(void)
{
	struct kvm_gsi_routing *r;
	struct kvm_exit_info x;
	struct kvm_run run;
	struct kvm_sys *sys;

	if (kvm_sys_create_path("/nonexistent", &sys) != -ENOENT)
		return 1;
	if (kvm_gsi_routing_create(2, &r) != 0)
		return 2;
	if (kvm_gsi_routing_add_msi(r, 1, 0xfee00000, 0x30, 0, 0) != 0)
		return 3;
	kvm_gsi_routing_destroy(r);
	memset(&run, 0, sizeof(run));
	run.exit_reason = KVM_EXIT_HLT;
	if (kvm_exit_decode(&run, sizeof(run), &x) != 0 ||
	    x.reason != KVM_EXIT_HLT)
		return 4;
	if (strcmp(kvm_exit_reason_name(KVM_EXIT_MMIO), "MMIO") != 0)
		return 5;
	if (kvm_vcpu_complete_io(NULL, &x) != -EINVAL)
		return 6;
	return 0;
}
