/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libvhost: vhost for c-vmm.  This umbrella header brings the whole
 * library, the vhost-user part:
 *   <cvmm/vhost/user.h>           wire protocol, message framing, sockets
 *   <cvmm/vhost/user-frontend.h>  the VMM side (struct vhost_user_frontend)
 *   <cvmm/vhost/user-backend.h>   the daemon side (struct vhost_user_backend)
 * and the kernel's vhost API:
 *   <cvmm/vhost/kernel.h>         /dev/vhost-net, /dev/vhost-vsock
 * Programs may include just the part they use.
 */
#ifndef CVMM_VHOST_H
#define CVMM_VHOST_H

#include <cvmm/vhost/kernel.h>
#include <cvmm/vhost/user-backend.h>
#include <cvmm/vhost/user-frontend.h>
#include <cvmm/vhost/user.h>

#include <cvmm/vhost-version.h> /* CVMM_EXPORT, version */

#endif /* CVMM_VHOST_H */
