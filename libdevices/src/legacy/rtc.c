/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* MC146818 CMOS RTC model.  See rtc.h. */
#include <cvmm/devices/rtc.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
	REG_SEC = 0x00,
	REG_SEC_ALARM = 0x01,
	REG_MIN = 0x02,
	REG_MIN_ALARM = 0x03,
	REG_HOUR = 0x04,
	REG_HOUR_ALARM = 0x05,
	REG_WDAY = 0x06,
	REG_MDAY = 0x07,
	REG_MON = 0x08,
	REG_YEAR = 0x09,
	REG_A = 0x0a,
	REG_B = 0x0b,
	REG_C = 0x0c,
	REG_D = 0x0d,
	REG_CENTURY = 0x32,
};

#define A_UIP	 0x80
#define B_SET	 0x80
#define B_UIE	 0x10
#define B_BINARY 0x04
#define B_24H	 0x02
#define B_PIE	 0x40
#define B_AIE	 0x20
#define C_IRQF	 0x80
#define C_PF	 0x40
#define C_AF	 0x20
#define C_UF	 0x10
#define D_VRT	 0x80

#define NSEC	   1000000000ll
#define UIP_WINDOW 244000ll /* ns before the second ticks */

struct cmos_rtc {
	pthread_mutex_t lock;
	int64_t (*now_ns)(void *opaque);
	void *clock_opaque;
	uint8_t cmos[CMOS_RTC_SIZE];
	uint8_t index;
	bool nmi_disabled;
	int64_t offset;	    /* guest seconds - host seconds */
	int64_t last_c_sec; /* guest second when UF was last evaluated */
	int64_t last_poll_ns;
	struct irq_line irq;
	bool irq_level;
};

static int64_t default_now(void *opaque)
{
	struct timespec ts;

	(void)opaque;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NSEC + ts.tv_nsec;
}

static int64_t host_ns(const struct cmos_rtc *rtc)
{
	return rtc->now_ns(rtc->clock_opaque);
}

/* Floor division for possibly negative clocks. */
static int64_t ns_to_sec(int64_t ns)
{
	return ns / NSEC - (ns % NSEC < 0 ? 1 : 0);
}

/* Nanoseconds into the current second, 0..NSEC-1. */
static int64_t ns_in_second(int64_t ns)
{
	int64_t r = ns % NSEC;

	return r < 0 ? r + NSEC : r;
}

static int64_t guest_sec(const struct cmos_rtc *rtc, int64_t ns)
{
	int64_t s;

	if (__builtin_add_overflow(ns_to_sec(ns), rtc->offset, &s))
		s = rtc->offset > 0 ? INT64_MAX : INT64_MIN;
	return s;
}

static uint8_t to_bcd(unsigned v)
{
	return (uint8_t)(((v / 10) % 10) << 4 | (v % 10));
}

static unsigned from_bcd(uint8_t v)
{
	return (v >> 4) * 10u + (v & 0x0f);
}

static uint8_t enc(const struct cmos_rtc *rtc, unsigned v)
{
	return (rtc->cmos[REG_B] & B_BINARY) ? (uint8_t)v : to_bcd(v);
}

static unsigned dec(const struct cmos_rtc *rtc, uint8_t v)
{
	return (rtc->cmos[REG_B] & B_BINARY) ? v : from_bcd(v);
}

static uint8_t enc_hour(const struct cmos_rtc *rtc, int hour)
{
	unsigned h;

	if (rtc->cmos[REG_B] & B_24H)
		return enc(rtc, (unsigned)hour);
	h = (unsigned)hour % 12;
	if (h == 0)
		h = 12;
	return enc(rtc, h) | (hour >= 12 ? 0x80 : 0);
}

static int dec_hour(const struct cmos_rtc *rtc, uint8_t v)
{
	unsigned h;

	if (rtc->cmos[REG_B] & B_24H)
		return (int)dec(rtc, v);
	h = dec(rtc, v & 0x7f) % 12;
	return (int)h + ((v & 0x80) ? 12 : 0);
}

/* Store the broken-down guest time @t into the time registers. */
static void store_time(struct cmos_rtc *rtc, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	int64_t year;

	memset(&tm, 0, sizeof(tm));
	if (!gmtime_r(&tt, &tm))
		memset(&tm, 0, sizeof(tm));
	year = (int64_t)tm.tm_year + 1900;
	if (year < 0)
		year = 0;
	rtc->cmos[REG_SEC] = enc(rtc, (unsigned)tm.tm_sec % 60);
	rtc->cmos[REG_MIN] = enc(rtc, (unsigned)tm.tm_min);
	rtc->cmos[REG_HOUR] = enc_hour(rtc, tm.tm_hour);
	rtc->cmos[REG_WDAY] = enc(rtc, (unsigned)tm.tm_wday + 1);
	rtc->cmos[REG_MDAY] = enc(rtc, (unsigned)tm.tm_mday);
	rtc->cmos[REG_MON] = enc(rtc, (unsigned)tm.tm_mon + 1);
	rtc->cmos[REG_YEAR] = enc(rtc, (unsigned)(year % 100));
	rtc->cmos[REG_CENTURY] = enc(rtc, (unsigned)((year / 100) % 100));
}

/* Guest time described by the time registers, in seconds.  Garbage
 * (out-of-range fields, bad BCD) is normalised by timegm, never trusted as
 * an index.  Returns false when it cannot be represented. */
static bool load_time(const struct cmos_rtc *rtc, int64_t *out)
{
	struct tm tm;
	unsigned century = dec(rtc, rtc->cmos[REG_CENTURY]);
	unsigned yy = dec(rtc, rtc->cmos[REG_YEAR]) % 100;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	tm.tm_sec = (int)dec(rtc, rtc->cmos[REG_SEC]);
	tm.tm_min = (int)dec(rtc, rtc->cmos[REG_MIN]);
	tm.tm_hour = dec_hour(rtc, rtc->cmos[REG_HOUR]);
	tm.tm_mday = (int)dec(rtc, rtc->cmos[REG_MDAY]);
	tm.tm_mon = (int)dec(rtc, rtc->cmos[REG_MON]) - 1;
	if (century < 19 || century > 99)
		century = yy < 70 ? 20 : 19;
	tm.tm_year = (int)(century * 100 + yy) - 1900;
	tm.tm_isdst = 0;
	t = timegm(&tm);
	if (t == (time_t)-1 && tm.tm_year != 69)
		return false;
	*out = (int64_t)t;
	return true;
}

/* Make the time registers the guest's current time. */
static void commit_time(struct cmos_rtc *rtc)
{
	int64_t want, off;

	if (!load_time(rtc, &want))
		return;
	if (__builtin_sub_overflow(want, ns_to_sec(host_ns(rtc)), &off))
		return;
	rtc->offset = off;
}

int cmos_rtc_create(const struct cmos_rtc_config *cfg, struct cmos_rtc **out)
{
	struct cmos_rtc *rtc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	rtc = calloc(1, sizeof(*rtc));
	if (!rtc)
		return -ENOMEM;
	if (pthread_mutex_init(&rtc->lock, NULL) != 0) {
		free(rtc);
		return -ENOMEM;
	}
	rtc->now_ns = cfg && cfg->now_ns ? cfg->now_ns : default_now;
	rtc->clock_opaque = cfg ? cfg->clock_opaque : NULL;
	if (cfg)
		rtc->irq = cfg->irq;
	rtc->cmos[REG_A] = 0x26;
	rtc->cmos[REG_B] = B_24H;
	rtc->cmos[REG_D] = D_VRT;
	rtc->last_poll_ns = host_ns(rtc);
	rtc->last_c_sec = guest_sec(rtc, rtc->last_poll_ns);
	store_time(rtc, rtc->last_c_sec);
	*out = rtc;
	return 0;
}

void cmos_rtc_destroy(struct cmos_rtc *rtc)
{
	if (!rtc)
		return;
	pthread_mutex_destroy(&rtc->lock);
	free(rtc);
}

static bool is_time_reg(unsigned r)
{
	return r == REG_SEC || r == REG_MIN || r == REG_HOUR || r == REG_WDAY ||
	       r == REG_MDAY || r == REG_MON || r == REG_YEAR ||
	       r == REG_CENTURY;
}

/* IRQF: an enabled flag is set. */
static uint8_t irqf(const struct cmos_rtc *rtc)
{
	uint8_t c = rtc->cmos[REG_C], b = rtc->cmos[REG_B];

	if (((c & C_PF) && (b & B_PIE)) || ((c & C_AF) && (b & B_AIE)) ||
	    ((c & C_UF) && (b & B_UIE)))
		return C_IRQF;
	return 0;
}

static void update_irq(struct cmos_rtc *rtc)
{
	bool level = irqf(rtc) != 0;

	if (level != rtc->irq_level) {
		rtc->irq_level = level;
		irq_line_set(&rtc->irq, level);
	}
}

/* Periodic interrupt period in ns from register A's rate bits; 0 = off. */
static int64_t periodic_ns(const struct cmos_rtc *rtc)
{
	unsigned rs = rtc->cmos[REG_A] & 0x0f;

	if (rs == 0)
		return 0;
	if (rs < 3)
		rs += 7; /* 1, 2 behave as 8, 9 (256 Hz, 128 Hz) */
	/* frequency 65536 >> rs Hz */
	return (NSEC << rs) / 65536;
}

/* Does an alarm byte match a time field (0xc0-0xff: any)? */
static bool alarm_match(const struct cmos_rtc *rtc, unsigned reg, uint8_t now)
{
	uint8_t a = rtc->cmos[reg];

	return a >= 0xc0 || a == now;
}

static int64_t poll_locked(struct cmos_rtc *rtc)
{
	int64_t ns = host_ns(rtc), per = periodic_ns(rtc), s, next = -1;
	uint8_t b = rtc->cmos[REG_B];

	if (per > 0 && ns / per != rtc->last_poll_ns / per)
		rtc->cmos[REG_C] |= C_PF;
	rtc->last_poll_ns = ns;
	if (!(b & B_SET)) {
		s = guest_sec(rtc, ns);
		if (s != rtc->last_c_sec) {
			rtc->cmos[REG_C] |= C_UF;
			rtc->last_c_sec = s;
			store_time(rtc, s);
			if (alarm_match(rtc, REG_SEC_ALARM,
					rtc->cmos[REG_SEC]) &&
			    alarm_match(rtc, REG_MIN_ALARM,
					rtc->cmos[REG_MIN]) &&
			    alarm_match(rtc, REG_HOUR_ALARM,
					rtc->cmos[REG_HOUR]))
				rtc->cmos[REG_C] |= C_AF;
		}
	}
	update_irq(rtc);
	if ((b & B_PIE) && per > 0) {
		int64_t r = ns % per;

		next = per - (r < 0 ? r + per : r);
	}
	if ((b & (B_UIE | B_AIE)) && !(b & B_SET)) {
		int64_t to_sec = NSEC - ns_in_second(ns);

		if (next < 0 || to_sec < next)
			next = to_sec;
	}
	return next;
}

int64_t cmos_rtc_poll(struct cmos_rtc *rtc)
{
	int64_t r;

	if (!rtc)
		return -EINVAL;
	pthread_mutex_lock(&rtc->lock);
	r = poll_locked(rtc);
	pthread_mutex_unlock(&rtc->lock);
	return r;
}

bool cmos_rtc_irq_level(struct cmos_rtc *rtc)
{
	bool l;

	if (!rtc)
		return false;
	pthread_mutex_lock(&rtc->lock);
	l = rtc->irq_level;
	pthread_mutex_unlock(&rtc->lock);
	return l;
}

static uint8_t read_locked(struct cmos_rtc *rtc)
{
	unsigned r = rtc->index;
	int64_t ns, s;
	uint8_t v;

	switch (r) {
	case REG_A:
		v = rtc->cmos[REG_A] & 0x7f;
		if (!(rtc->cmos[REG_B] & B_SET)) {
			ns = host_ns(rtc);
			if (ns_in_second(ns) >= NSEC - UIP_WINDOW)
				v |= A_UIP;
		}
		return v;
	case REG_C:
		s = guest_sec(rtc, host_ns(rtc));
		if (s != rtc->last_c_sec && !(rtc->cmos[REG_B] & B_SET))
			rtc->cmos[REG_C] |= C_UF;
		rtc->last_c_sec = s;
		v = rtc->cmos[REG_C] | irqf(rtc);
		rtc->cmos[REG_C] = 0;
		update_irq(rtc);
		return v;
	case REG_D:
		return D_VRT;
	default:
		break;
	}
	if (is_time_reg(r) && !(rtc->cmos[REG_B] & B_SET))
		store_time(rtc, guest_sec(rtc, host_ns(rtc)));
	return rtc->cmos[r];
}

static void write_locked(struct cmos_rtc *rtc, uint8_t val)
{
	unsigned r = rtc->index;
	uint8_t old;

	switch (r) {
	case REG_A:
		rtc->cmos[REG_A] = val & 0x7f; /* UIP is read-only */
		return;
	case REG_B:
		old = rtc->cmos[REG_B];
		if ((val & B_SET) && !(old & B_SET)) {
			/* freeze: the registers hold the time, in the format
			 * in force before this write */
			store_time(rtc, guest_sec(rtc, host_ns(rtc)));
		}
		rtc->cmos[REG_B] = val;
		if (!(val & B_SET) && (old & B_SET))
			commit_time(rtc);
		update_irq(rtc);
		return;
	case REG_C:
	case REG_D:
		return; /* read-only */
	default:
		break;
	}
	if (is_time_reg(r) && !(rtc->cmos[REG_B] & B_SET)) {
		/* change one field of the running clock */
		store_time(rtc, guest_sec(rtc, host_ns(rtc)));
		rtc->cmos[r] = val;
		commit_time(rtc);
		return;
	}
	rtc->cmos[r] = val;
}

void cmos_rtc_write_index(struct cmos_rtc *rtc, uint8_t val)
{
	if (!rtc)
		return;
	pthread_mutex_lock(&rtc->lock);
	rtc->index = val & 0x7f;
	rtc->nmi_disabled = (val & 0x80) != 0;
	pthread_mutex_unlock(&rtc->lock);
}

uint8_t cmos_rtc_read_data(struct cmos_rtc *rtc)
{
	uint8_t v;

	if (!rtc)
		return 0xff;
	pthread_mutex_lock(&rtc->lock);
	v = read_locked(rtc);
	pthread_mutex_unlock(&rtc->lock);
	return v;
}

void cmos_rtc_write_data(struct cmos_rtc *rtc, uint8_t val)
{
	if (!rtc)
		return;
	pthread_mutex_lock(&rtc->lock);
	write_locked(rtc, val);
	pthread_mutex_unlock(&rtc->lock);
}

bool cmos_rtc_nmi_disabled(struct cmos_rtc *rtc)
{
	bool v;

	if (!rtc)
		return false;
	pthread_mutex_lock(&rtc->lock);
	v = rtc->nmi_disabled;
	pthread_mutex_unlock(&rtc->lock);
	return v;
}

uint8_t cmos_rtc_get_byte(struct cmos_rtc *rtc, unsigned index)
{
	uint8_t v;

	if (!rtc)
		return 0xff;
	pthread_mutex_lock(&rtc->lock);
	v = rtc->cmos[index % CMOS_RTC_SIZE];
	pthread_mutex_unlock(&rtc->lock);
	return v;
}

void cmos_rtc_set_byte(struct cmos_rtc *rtc, unsigned index, uint8_t val)
{
	if (!rtc)
		return;
	pthread_mutex_lock(&rtc->lock);
	rtc->cmos[index % CMOS_RTC_SIZE] = val;
	pthread_mutex_unlock(&rtc->lock);
}

int64_t cmos_rtc_offset_seconds(struct cmos_rtc *rtc)
{
	int64_t v;

	if (!rtc)
		return 0;
	pthread_mutex_lock(&rtc->lock);
	v = rtc->offset;
	pthread_mutex_unlock(&rtc->lock);
	return v;
}

static void bus_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	memset(data, 0xff, size);
	if (offset == 1)
		*(uint8_t *)data = cmos_rtc_read_data(opaque);
	/* the index port is write-only: reads 0xff */
}

static void bus_write(void *opaque, uint64_t offset, const void *data,
		      unsigned size)
{
	uint8_t v = *(const uint8_t *)data;

	if (offset == 0) {
		cmos_rtc_write_index(opaque, v);
		/* a 16-bit outw to 0x70 also writes 0x71 */
		if (size >= 2)
			cmos_rtc_write_data(opaque, ((const uint8_t *)data)[1]);
	} else if (offset == 1) {
		cmos_rtc_write_data(opaque, v);
	}
}

static const struct io_bus_ops rtc_ops = {bus_read, bus_write};

const struct io_bus_ops *cmos_rtc_bus_ops(void)
{
	return &rtc_ops;
}
