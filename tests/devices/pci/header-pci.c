/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Build check: cvmm/devices/pci.h compiles on its own (first and only
 * include) with the project's strict warnings, and its API links.
 */
#include <cvmm/devices/pci.h>

int main(void)
{
	struct pci_root *root = NULL;
	int ret = pci_root_create(NULL, &root);

	if (ret == 0 && !pci_root_get_device(root, 0, 0))
		ret = -1;
	pci_root_destroy(root);
	return ret == 0 ? 0 : 1;
}
