/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Test helpers for libdevices: an interrupt line and an MSI sink that record
 * what a device did to them.  Header-only; include from any devices test.
 *
 *   struct irq_recorder rec;
 *   struct irq_line line = irq_recorder_line(&rec);
 *   ... device raises ...
 *   ck_assert(rec.level); ck_assert_int_eq(rec.asserts, 1);
 *
 *   struct msi_recorder m;
 *   struct msi_sink sink = msi_recorder_sink(&m);
 *   ... ck_assert_int_eq(m.count, 1); m.last_address, m.last_data ...
 */
#ifndef CVMM_TESTS_DEVICES_IRQ_RECORDER_H
#define CVMM_TESTS_DEVICES_IRQ_RECORDER_H

#include <cvmm/devices/irq.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define MSI_RECORDER_LOG 64

struct irq_recorder {
	pthread_mutex_t lock;
	bool level;	    /* current level */
	unsigned sets;	    /* calls of set(), whatever the level */
	unsigned asserts;   /* rising edges (level false -> true) */
	unsigned deasserts; /* falling edges (true -> false) */
	unsigned pulses;    /* pulse() calls */
	int ret;	    /* value the callbacks return */
};

static inline int irq_recorder_set_cb(void *opaque, bool level)
{
	struct irq_recorder *r = opaque;

	pthread_mutex_lock(&r->lock);
	r->sets++;
	if (level && !r->level)
		r->asserts++;
	if (!level && r->level)
		r->deasserts++;
	r->level = level;
	pthread_mutex_unlock(&r->lock);
	return r->ret;
}

static inline int irq_recorder_pulse_cb(void *opaque)
{
	struct irq_recorder *r = opaque;

	pthread_mutex_lock(&r->lock);
	r->pulses++;
	pthread_mutex_unlock(&r->lock);
	return r->ret;
}

/* Reset the recorder and return a line (set and pulse) bound to it. */
static inline struct irq_line irq_recorder_line(struct irq_recorder *r)
{
	struct irq_line l;

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	l.set = irq_recorder_set_cb;
	l.pulse = irq_recorder_pulse_cb;
	l.opaque = r;
	return l;
}

struct msi_recorder {
	pthread_mutex_t lock;
	unsigned count;
	uint64_t last_address;
	uint32_t last_data;
	uint64_t address[MSI_RECORDER_LOG]; /* first MSI_RECORDER_LOG messages */
	uint32_t data[MSI_RECORDER_LOG];
	int ret;
};

static inline int msi_recorder_send_cb(void *opaque, uint64_t address,
				       uint32_t data)
{
	struct msi_recorder *m = opaque;

	pthread_mutex_lock(&m->lock);
	if (m->count < MSI_RECORDER_LOG) {
		m->address[m->count] = address;
		m->data[m->count] = data;
	}
	m->count++;
	m->last_address = address;
	m->last_data = data;
	pthread_mutex_unlock(&m->lock);
	return m->ret;
}

/* Reset the recorder and return a sink bound to it. */
static inline struct msi_sink msi_recorder_sink(struct msi_recorder *m)
{
	struct msi_sink s;

	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	s.send = msi_recorder_send_cb;
	s.opaque = m;
	return s;
}

#endif /* CVMM_TESTS_DEVICES_IRQ_RECORDER_H */
