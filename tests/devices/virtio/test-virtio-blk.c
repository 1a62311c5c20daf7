/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio-blk end to end: a temporary image file, the device driven through
 * a transport (virtio-pci or virtio-mmio) by libvirtio-queue's mock driver.
 *
 * Every test of the main cases runs four times (Check loop tests): _i bit
 * 0 selects the backend (0 sync, 1 io_uring) and bit 1 the transport (0
 * virtio-pci, 1 virtio-mmio).
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-virtio-blk-harness.h"

#define FILE_SIZE   (4u << 20)
#define CAP_SECTORS (FILE_SIZE / 512)
#define HDR_GPA	    0x200000ull /* request i header at + i * 32 */
#define DATA_GPA    BH_DATA_BASE

static char path[64];
static int file_fd = -1;
static struct bh h;

/* Valgrind 3.19 handles io_uring_setup/enter/register, and guest RAM is an
 * anonymous mapping (defined memory), so the io_uring iterations run under
 * valgrind as they are. */
static int backend_of(int i)
{
	return (i & 1) ? VIRTIO_BLK_BACKEND_IO_URING : VIRTIO_BLK_BACKEND_SYNC;
}

static bool is_uring(int i)
{
	return backend_of(i) == VIRTIO_BLK_BACKEND_IO_URING;
}

static const char *file_dir = "/tmp";

static void mk_file(void)
{
	static uint8_t buf[65536];

	snprintf(path, sizeof(path), "%s/test-virtio-blk-XXXXXX", file_dir);
	file_fd = mkstemp(path);
	ck_assert_int_ge(file_fd, 0);
	for (uint32_t off = 0; off < FILE_SIZE; off += sizeof(buf)) {
		for (uint32_t k = 0; k < sizeof(buf); k++)
			buf[k] = (uint8_t)((off + k) / 512 * 7 + 1);
		ck_assert_int_eq(pwrite(file_fd, buf, sizeof(buf), off),
				 (ssize_t)sizeof(buf));
	}
}

/* The byte the image holds at @off before any test write. */
static uint8_t orig_byte(uint64_t off)
{
	return (uint8_t)(off / 512 * 7 + 1);
}

static void start(int i, struct virtio_blk_options *o, uint64_t drop)
{
	struct virtio_blk_options def = {0};
	struct virtio_blk *blk;

	if (!o)
		o = &def;
	o->backend = (uint32_t)backend_of(i);
	if (!o->queue_size)
		o->queue_size = 128;
	mk_file();
	ck_assert_int_eq(virtio_blk_create(path, o, &blk), 0);
	ck_assert_int_eq(
		bh_init(&h, (i & 2) ? BH_MMIO : BH_PCI, blk, 128, drop), 0);
}

static void stop(void)
{
	bh_fini(&h);
	if (file_fd >= 0)
		close(file_fd);
	file_fd = -1;
	unlink(path);
}

/* One request on queue 0, notified and waited for; returns the status
 * byte, *used receives the used length. */
static int do_req(uint32_t type, uint64_t sector, guest_addr_t data,
		  uint32_t len, uint32_t *used)
{
	struct vring_used_elem e;
	uint16_t head;

	ck_assert_int_eq(bh_add(&h, 0, type, sector, HDR_GPA, data, len, &head),
			 0);
	bh_notify(&h, 0);
	ck_assert_int_eq(bh_wait_used(&h, 0, &e, 1, 5000), 1);
	ck_assert_uint_eq(e.id, head);
	if (used)
		*used = e.len;
	return h.host[HDR_GPA + 16];
}

/* ------------------------------------------------------------- basics */

START_TEST(test_config_and_features)
{
	struct virtio_blk_options o = {.serial = "cfg", .num_queues = 2};

	start(_i, &o, 0);
	ck_assert(h.features & (1ull << VIRTIO_BLK_F_FLUSH));
	ck_assert(h.features & (1ull << VIRTIO_BLK_F_DISCARD));
	ck_assert(h.features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	ck_assert(h.features & (1ull << VIRTIO_BLK_F_SEG_MAX));
	ck_assert(h.features & (1ull << VIRTIO_BLK_F_BLK_SIZE));
	ck_assert(h.features & (1ull << VIRTIO_BLK_F_TOPOLOGY));
	ck_assert(h.features & (1ull << VIRTIO_BLK_F_CONFIG_WCE));
	ck_assert(h.features & (1ull << VIRTIO_BLK_F_MQ));
	ck_assert(!(h.features & (1ull << VIRTIO_BLK_F_RO)));
	ck_assert_uint_eq(bh_config_rd(&h, 0, 8), CAP_SECTORS);
	ck_assert_uint_eq(
		bh_config_rd(&h, offsetof(struct virtio_blk_config, seg_max),
			     4),
		126);
	ck_assert_uint_eq(
		bh_config_rd(&h, offsetof(struct virtio_blk_config, blk_size),
			     4),
		512);
	ck_assert_uint_eq(
		bh_config_rd(&h, offsetof(struct virtio_blk_config, num_queues),
			     2),
		2);
	ck_assert_uint_eq(bh_config_rd(&h,
				       offsetof(struct virtio_blk_config,
						max_discard_seg),
				       4),
			  16);
	ck_assert_uint_eq(
		bh_config_rd(&h, offsetof(struct virtio_blk_config, wce), 1),
		1);
	ck_assert_uint_eq(virtio_blk_capacity(h.blk), CAP_SECTORS);
	/* io_uring: the completion eventfd follows the two queue notifiers. */
	struct virtio_poll_fd pfds[8];

	ck_assert_int_eq(virtio_device_poll_fds(h.dev, pfds, 8),
			 is_uring(_i) ? 3 : 2);
	stop();
}
END_TEST

START_TEST(test_read_write_verify)
{
	uint32_t used;

	start(_i, NULL, 0);
	/* Read sectors 10..17 and compare with the file. */
	memset(h.host + DATA_GPA, 0, 4096);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, 10, DATA_GPA, 4096, &used),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used, 4096 + 1);
	for (uint32_t k = 0; k < 4096; k++)
		ck_assert_uint_eq(h.host[DATA_GPA + k],
				  orig_byte(10 * 512 + k));
	/* Write 8 KiB at sector 100, then read it back through the device
	 * and from the file. */
	for (uint32_t k = 0; k < 8192; k++)
		h.host[DATA_GPA + k] = (uint8_t)(k * 13 + 5);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_OUT, 100, DATA_GPA, 8192, &used),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used, 1);
	memset(h.host + DATA_GPA + 0x10000, 0, 8192);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, 100, DATA_GPA + 0x10000, 8192,
				NULL),
			 VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(h.host + DATA_GPA, h.host + DATA_GPA + 0x10000, 8192);
	uint8_t back[8192];

	ck_assert_int_eq(pread(file_fd, back, sizeof(back), 100 * 512),
			 (ssize_t)sizeof(back));
	ck_assert_mem_eq(back, h.host + DATA_GPA, 8192);
	/* The last sector is reachable. */
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, CAP_SECTORS - 1, DATA_GPA, 512,
				NULL),
			 VIRTIO_BLK_S_OK);
	stop();
}
END_TEST

/* Data split over several descriptors, header split in two. */
START_TEST(test_scattered_chain)
{
	struct virtq_driver_buf b[6];
	struct vring_used_elem e;
	uint16_t head;

	start(_i, NULL, 0);
	bh_hdr(&h, HDR_GPA, VIRTIO_BLK_T_IN, 3);
	h.host[HDR_GPA + 0x100] = 0xff;
	b[0] = (struct virtq_driver_buf){HDR_GPA, 8, 0};
	b[1] = (struct virtq_driver_buf){HDR_GPA + 8, 8, 0};
	b[2] = (struct virtq_driver_buf){DATA_GPA, 100, VRING_DESC_F_WRITE};
	b[3] = (struct virtq_driver_buf){DATA_GPA + 0x1000, 412,
					 VRING_DESC_F_WRITE};
	b[4] = (struct virtq_driver_buf){DATA_GPA + 0x2000, 512,
					 VRING_DESC_F_WRITE};
	b[5] = (struct virtq_driver_buf){HDR_GPA + 0x100, 1,
					 VRING_DESC_F_WRITE};
	ck_assert_int_eq(virtq_driver_add(h.drv[0], b, 6, &head), 0);
	bh_notify(&h, 0);
	ck_assert_int_eq(bh_wait_used(&h, 0, &e, 1, 5000), 1);
	ck_assert_uint_eq(e.len, 1025);
	ck_assert_uint_eq(h.host[HDR_GPA + 0x100], VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(h.host[DATA_GPA], orig_byte(3 * 512));
	ck_assert_uint_eq(h.host[DATA_GPA + 0x1000 + 411],
			  orig_byte(4 * 512 - 1));
	ck_assert_uint_eq(h.host[DATA_GPA + 0x2000 + 511],
			  orig_byte(5 * 512 - 1));
	stop();
}
END_TEST

START_TEST(test_get_id)
{
	struct virtio_blk_options o = {.serial = "0123456789abcdefghijKLM"};
	uint32_t used;

	start(_i, &o, 0);
	memset(h.host + DATA_GPA, 0x55, 64);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_GET_ID, 0, DATA_GPA, 64, &used),
			 VIRTIO_BLK_S_OK);
	/* 20 bytes, no NUL when full. */
	ck_assert_uint_eq(used, 21);
	ck_assert_mem_eq(h.host + DATA_GPA, "0123456789abcdefghij", 20);
	ck_assert_uint_eq(h.host[DATA_GPA + 20], 0x55);
	stop();
}
END_TEST

START_TEST(test_hostile_get_id_small_buffer)
{
	struct virtio_blk_options o = {.serial = "serial-number-long-x"};
	uint32_t used;

	start(_i, &o, 0);
	memset(h.host + DATA_GPA, 0x55, 64);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_GET_ID, 0, DATA_GPA, 5, &used),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used, 6);
	ck_assert_mem_eq(h.host + DATA_GPA, "seria", 5);
	/* Nothing beyond the 5-byte buffer. */
	ck_assert_uint_eq(h.host[DATA_GPA + 5], 0x55);
	ck_assert_uint_eq(h.host[DATA_GPA + 19], 0x55);
	stop();
}
END_TEST

/* ------------------------------------------------------------ flush */

/* do_req() without Check (for a forked child): the status, or -1. */
static int child_req(uint32_t type, uint64_t sector, guest_addr_t data,
		     uint32_t len)
{
	struct vring_used_elem e;

	if (bh_add(&h, 0, type, sector, HDR_GPA, data, len, NULL))
		return -1;
	bh_notify(&h, 0);
	if (bh_wait_used(&h, 0, &e, 1, 5000) != 1 || e.len != 1)
		return -1;
	return h.host[HDR_GPA + 16];
}

/*
 * The child plays the VMM: it writes, flushes, tells the parent the flush
 * completed, and is SIGKILLed; the parent then reads the file.  (A kill
 * of the process keeps the page cache, so this checks that an
 * acknowledged flush comes after the data reached the file; power-loss
 * durability is fdatasync's, which the flush calls.)
 */
START_TEST(test_flush_survives_sigkill)
{
	int pfd[2];
	pid_t pid;
	char c;
	int st;
	uint8_t back[4096];

	mk_file();
	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* The VMM: write, flush, tell the parent, wait for the kill. */
		struct virtio_blk_options o = {
			.backend = (uint32_t)backend_of(_i), .queue_size = 128};
		struct virtio_blk *blk;

		close(pfd[0]);
		if (virtio_blk_create(path, &o, &blk) ||
		    bh_init(&h, (_i & 2) ? BH_MMIO : BH_PCI, blk, 128, 0))
			_exit(2);
		memset(h.host + DATA_GPA, 0xa5, 4096);
		if (child_req(VIRTIO_BLK_T_OUT, 64, DATA_GPA, 4096) !=
		    VIRTIO_BLK_S_OK)
			_exit(3);
		if (child_req(VIRTIO_BLK_T_FLUSH, 0, 0, 0) != VIRTIO_BLK_S_OK)
			_exit(4);
		(void)!write(pfd[1], "k", 1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	close(pfd[0]);
	ck_assert_int_eq(pread(file_fd, back, sizeof(back), 64 * 512),
			 (ssize_t)sizeof(back));
	for (unsigned k = 0; k < sizeof(back); k++)
		ck_assert_uint_eq(back[k], 0xa5);
	close(file_fd);
	file_fd = -1;
	unlink(path);
}
END_TEST

/* --------------------------------------------------------- read-only */

START_TEST(test_read_only_refuses_writes)
{
	struct virtio_blk_options o = {.flags = VIRTIO_BLK_OPT_READ_ONLY};
	uint8_t back[512];

	start(_i, &o, 0);
	ck_assert(h.features & (1ull << VIRTIO_BLK_F_RO));
	ck_assert(!(h.features & (1ull << VIRTIO_BLK_F_DISCARD)));
	memset(h.host + DATA_GPA, 0xee, 512);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_OUT, 0, DATA_GPA, 512, NULL),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(pread(file_fd, back, 512, 0), 512);
	ck_assert_uint_eq(back[0], orig_byte(0));
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, 0, DATA_GPA, 512, NULL),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(h.host[DATA_GPA], orig_byte(0));
	/* Discard was not offered: unsupported. */
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_DISCARD, 0, DATA_GPA, 0, NULL),
			 VIRTIO_BLK_S_UNSUPP);
	stop();
}
END_TEST

/* ------------------------------------------------ discard, write-zeroes */

static void put_seg(guest_addr_t gpa, uint64_t sector, uint32_t n,
		    uint32_t flags)
{
	struct virtio_blk_discard_write_zeroes s = {
		.sector = htole64(sector),
		.num_sectors = htole32(n),
		.flags = htole32(flags),
	};

	memcpy(h.host + gpa, &s, sizeof(s));
}

START_TEST(test_discard_punches_hole)
{
	struct stat st0, st1;
	uint32_t used;

	start(_i, NULL, 0);
	ck_assert_int_eq(fsync(file_fd), 0);
	ck_assert_int_eq(fstat(file_fd, &st0), 0);
	/* Two segments: 1 MiB at 1 MiB, 256 KiB at 3 MiB. */
	put_seg(DATA_GPA, 2048, 2048, 0);
	put_seg(DATA_GPA + 16, 6144, 512, 0);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_DISCARD, 0, DATA_GPA, 32, &used),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used, 1);
	ck_assert_int_eq(fstat(file_fd, &st1), 0);
	ck_assert_int_lt(st1.st_blocks, st0.st_blocks);
	ck_assert_int_le(st1.st_blocks, st0.st_blocks - (1280 << 10) / 512);
	ck_assert_int_eq(st1.st_size, FILE_SIZE);
	/* The discarded range reads back as zeroes; the rest is intact. */
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, 2047, DATA_GPA + 0x1000, 1024,
				NULL),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(h.host[DATA_GPA + 0x1000], orig_byte(2047 * 512));
	for (unsigned k = 512; k < 1024; k++)
		ck_assert_uint_eq(h.host[DATA_GPA + 0x1000 + k], 0);
	stop();
}
END_TEST

START_TEST(test_write_zeroes)
{
	struct virtio_blk_options o = {.flags = VIRTIO_BLK_OPT_WZ_MAY_UNMAP};
	uint8_t back[4096];

	start(_i, &o, 0);
	ck_assert_uint_eq(bh_config_rd(&h,
				       offsetof(struct virtio_blk_config,
						write_zeroes_may_unmap),
				       1),
			  1);
	put_seg(DATA_GPA, 40, 8, 0);
	put_seg(DATA_GPA + 16, 80, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA_GPA, 32,
				NULL),
			 VIRTIO_BLK_S_OK);
	ck_assert_int_eq(pread(file_fd, back, 4096, 40 * 512), 4096);
	for (unsigned k = 0; k < 4096; k++)
		ck_assert_uint_eq(back[k], 0);
	ck_assert_int_eq(pread(file_fd, back, 4096, 80 * 512), 4096);
	for (unsigned k = 0; k < 4096; k++)
		ck_assert_uint_eq(back[k], 0);
	/* Neighbours untouched, and zeroes read back through the device. */
	ck_assert_int_eq(pread(file_fd, back, 512, 48 * 512), 512);
	ck_assert_uint_eq(back[0], orig_byte(48 * 512));
	memset(h.host + DATA_GPA + 0x1000, 0x77, 4096);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, 40, DATA_GPA + 0x1000, 4096,
				NULL),
			 VIRTIO_BLK_S_OK);
	for (unsigned k = 0; k < 4096; k++)
		ck_assert_uint_eq(h.host[DATA_GPA + 0x1000 + k], 0);
	stop();
}
END_TEST

/* tmpfs refuses FALLOC_FL_ZERO_RANGE: write-zeroes falls back to a hole. */
START_TEST(test_write_zeroes_on_tmpfs)
{
	uint8_t back[4096];
	int zfd;

	file_dir = "/dev/shm";
	start(_i, NULL, 0);
	zfd = fallocate(file_fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0,
			512);
	ck_assert_msg(zfd < 0 && errno == EOPNOTSUPP, "tmpfs accepted "
						      "ZERO_RANGE: the "
						      "fallback goes untested");
	put_seg(DATA_GPA, 16, 8, 0);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA_GPA, 16,
				NULL),
			 VIRTIO_BLK_S_OK);
	ck_assert_int_eq(pread(file_fd, back, 4096, 16 * 512), 4096);
	for (unsigned k = 0; k < 4096; k++)
		ck_assert_uint_eq(back[k], 0);
	ck_assert_int_eq(pread(file_fd, back, 512, 24 * 512), 512);
	ck_assert_uint_eq(back[0], orig_byte(24 * 512));
	stop();
	file_dir = "/tmp";
}
END_TEST

/* ------------------------------------------------- hostile requests */

START_TEST(test_hostile_sector_overflow)
{
	start(_i, NULL, 0);
	/* sector * 512 wraps 64 bits. */
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, (UINT64_MAX >> 9) + 1,
				DATA_GPA, 512, NULL),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_OUT, UINT64_MAX, DATA_GPA, 512,
				NULL),
			 VIRTIO_BLK_S_IOERR);
	stop();
}
END_TEST

START_TEST(test_hostile_len_overflow)
{
	uint8_t back[512];

	start(_i, NULL, 0);
	/* sector * 512 fits, + len wraps. */
	memset(h.host + DATA_GPA, 0xcc, 4096);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_OUT, UINT64_MAX >> 9, DATA_GPA,
				4096, NULL),
			 VIRTIO_BLK_S_IOERR);
	/* len not a multiple of 512. */
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_OUT, 0, DATA_GPA, 700, NULL),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, 0, DATA_GPA, 100, NULL),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(pread(file_fd, back, 512, 0), 512);
	ck_assert_uint_eq(back[0], orig_byte(0));
	stop();
}
END_TEST

START_TEST(test_hostile_sector_beyond_capacity)
{
	start(_i, NULL, 0);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, CAP_SECTORS, DATA_GPA, 512,
				NULL),
			 VIRTIO_BLK_S_IOERR);
	/* Starts inside, ends one sector past the end. */
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, CAP_SECTORS - 1, DATA_GPA,
				1024, NULL),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_OUT, CAP_SECTORS + 1000, DATA_GPA,
				512, NULL),
			 VIRTIO_BLK_S_IOERR);
	struct stat st;

	ck_assert_int_eq(fstat(file_fd, &st), 0);
	ck_assert_int_eq(st.st_size, FILE_SIZE);
	stop();
}
END_TEST

START_TEST(test_hostile_discard_segment_past_end)
{
	uint8_t back[512];

	start(_i, NULL, 0);
	/* First segment valid, second past the end: nothing is done. */
	put_seg(DATA_GPA, 0, 8, 0);
	put_seg(DATA_GPA + 16, CAP_SECTORS - 4, 8, 0);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_DISCARD, 0, DATA_GPA, 32, NULL),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(pread(file_fd, back, 512, 0), 512);
	ck_assert_uint_eq(back[0], orig_byte(0));
	/* Unmap flag on a discard, unknown flags: unsupported. */
	put_seg(DATA_GPA, 0, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_DISCARD, 0, DATA_GPA, 16, NULL),
			 VIRTIO_BLK_S_UNSUPP);
	put_seg(DATA_GPA, 0, 8, 0x10);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_DISCARD, 0, DATA_GPA, 16, NULL),
			 VIRTIO_BLK_S_UNSUPP);
	/* More segments than max_discard_seg (16). */
	for (unsigned k = 0; k < 17; k++)
		put_seg(DATA_GPA + 16 * k, k * 8, 8, 0);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_DISCARD, 0, DATA_GPA, 17 * 16,
				NULL),
			 VIRTIO_BLK_S_UNSUPP);
	/* Payload not a whole segment, and no segment at all. */
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_DISCARD, 0, DATA_GPA, 24, NULL),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_DISCARD, 0, 0, 0, NULL),
			 VIRTIO_BLK_S_IOERR);
	/* More sectors than max_discard_sectors. */
	put_seg(DATA_GPA, 0, 0x400000, 0);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_DISCARD, 0, DATA_GPA, 16, NULL),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(pread(file_fd, back, 512, 0), 512);
	ck_assert_uint_eq(back[0], orig_byte(0));
	stop();
}
END_TEST

/* Cloud Hypervisor #8388: sector + num_sectors wrapping 64 bits. */
START_TEST(test_hostile_write_zeroes_sector_overflow)
{
	struct stat st;

	start(_i, NULL, 0);
	put_seg(DATA_GPA, UINT64_MAX - 3, 8, 0);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA_GPA, 16,
				NULL),
			 VIRTIO_BLK_S_IOERR);
	put_seg(DATA_GPA, (UINT64_MAX >> 9) - 2, 8, 0);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA_GPA, 16,
				NULL),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(fstat(file_fd, &st), 0);
	ck_assert_int_eq(st.st_size, FILE_SIZE);
	stop();
}
END_TEST

START_TEST(test_hostile_header_missing)
{
	struct virtq_driver_buf b[2];
	struct vring_used_elem e;

	start(_i, NULL, 0);
	/* 8 readable bytes, then the status byte. */
	bh_hdr(&h, HDR_GPA, VIRTIO_BLK_T_OUT, 0);
	h.host[HDR_GPA + 16] = 0xff;
	b[0] = (struct virtq_driver_buf){HDR_GPA, 8, 0};
	b[1] = (struct virtq_driver_buf){HDR_GPA + 16, 1, VRING_DESC_F_WRITE};
	ck_assert_int_eq(virtq_driver_add(h.drv[0], b, 2, NULL), 0);
	/* Only a status byte. */
	h.host[HDR_GPA + 48] = 0xff;
	b[0] = (struct virtq_driver_buf){HDR_GPA + 48, 1, VRING_DESC_F_WRITE};
	ck_assert_int_eq(virtq_driver_add(h.drv[0], b, 1, NULL), 0);
	bh_notify(&h, 0);
	ck_assert_int_eq(bh_wait_used(&h, 0, &e, 1, 5000), 1);
	ck_assert_uint_eq(e.len, 1);
	ck_assert_uint_eq(h.host[HDR_GPA + 16], VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(bh_wait_used(&h, 0, &e, 1, 5000), 1);
	ck_assert_uint_eq(h.host[HDR_GPA + 48], VIRTIO_BLK_S_IOERR);
	/* The device goes on. */
	ck_assert(!(bh_status(&h) & VIRTIO_CONFIG_S_NEEDS_RESET));
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, 0, DATA_GPA, 512, NULL),
			 VIRTIO_BLK_S_OK);
	stop();
}
END_TEST

START_TEST(test_hostile_no_status_byte)
{
	struct virtq_driver_buf b[2];
	struct vring_used_elem e;
	uint8_t back[512];

	start(_i, NULL, 0);
	/* A write with header and data, nothing writable. */
	bh_hdr(&h, HDR_GPA, VIRTIO_BLK_T_OUT, 0);
	memset(h.host + DATA_GPA, 0xdd, 512);
	b[0] = (struct virtq_driver_buf){HDR_GPA, 16, 0};
	b[1] = (struct virtq_driver_buf){DATA_GPA, 512, 0};
	ck_assert_int_eq(virtq_driver_add(h.drv[0], b, 2, NULL), 0);
	bh_notify(&h, 0);
	ck_assert_int_eq(bh_wait_used(&h, 0, &e, 1, 5000), 1);
	ck_assert_uint_eq(e.len, 0);
	/* Not executed. */
	ck_assert_int_eq(pread(file_fd, back, 512, 0), 512);
	ck_assert_uint_eq(back[0], orig_byte(0));
	ck_assert(!(bh_status(&h) & VIRTIO_CONFIG_S_NEEDS_RESET));
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, 0, DATA_GPA, 512, NULL),
			 VIRTIO_BLK_S_OK);
	stop();
}
END_TEST

START_TEST(test_hostile_unsupported_type)
{
	uint32_t used;

	start(_i, NULL, 0);
	ck_assert_int_eq(do_req(99, 0, DATA_GPA, 512, &used),
			 VIRTIO_BLK_S_UNSUPP);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_SCSI_CMD, 0, DATA_GPA, 512, NULL),
			 VIRTIO_BLK_S_UNSUPP);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_SECURE_ERASE, 0, DATA_GPA, 16,
				NULL),
			 VIRTIO_BLK_S_UNSUPP);
	stop();
}
END_TEST

/* More buffers than seg_max + 8: IOERR, and the device goes on. */
START_TEST(test_hostile_chain_beyond_seg_max)
{
	struct virtio_blk_options o = {.seg_max = 2};
	struct virtq_driver_buf b[12];
	struct vring_used_elem e;

	start(_i, &o, 0);
	ck_assert_uint_eq(
		bh_config_rd(&h, offsetof(struct virtio_blk_config, seg_max),
			     4),
		2);
	bh_hdr(&h, HDR_GPA, VIRTIO_BLK_T_IN, 0);
	h.host[HDR_GPA + 16] = 0xff;
	b[0] = (struct virtq_driver_buf){HDR_GPA, 16, 0};
	for (unsigned k = 0; k < 10; k++)
		b[1 + k] = (struct virtq_driver_buf){DATA_GPA + k * 512, 512,
						     VRING_DESC_F_WRITE};
	b[11] = (struct virtq_driver_buf){HDR_GPA + 16, 1, VRING_DESC_F_WRITE};
	ck_assert_int_eq(virtq_driver_add(h.drv[0], b, 12, NULL), 0);
	bh_notify(&h, 0);
	ck_assert_int_eq(bh_wait_used(&h, 0, &e, 1, 5000), 1);
	ck_assert_uint_eq(e.len, 1);
	ck_assert_uint_eq(h.host[HDR_GPA + 16], VIRTIO_BLK_S_IOERR);
	ck_assert(!(bh_status(&h) & VIRTIO_CONFIG_S_NEEDS_RESET));
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, 0, DATA_GPA, 1024, NULL),
			 VIRTIO_BLK_S_OK);
	stop();
}
END_TEST

/* A request in an indirect descriptor table. */
START_TEST(test_indirect_request)
{
	struct virtq_driver_buf b[3];
	struct vring_used_elem e;

	start(_i, NULL, 0);
	ck_assert(h.features & (1ull << VIRTIO_RING_F_INDIRECT_DESC));
	bh_hdr(&h, HDR_GPA, VIRTIO_BLK_T_IN, 5);
	h.host[HDR_GPA + 16] = 0xff;
	b[0] = (struct virtq_driver_buf){HDR_GPA, 16, 0};
	b[1] = (struct virtq_driver_buf){DATA_GPA, 1024, VRING_DESC_F_WRITE};
	b[2] = (struct virtq_driver_buf){HDR_GPA + 16, 1, VRING_DESC_F_WRITE};
	ck_assert_int_eq(virtq_driver_add_indirect(h.drv[0], b, 3,
						   HDR_GPA + 0x1000, NULL),
			 0);
	bh_notify(&h, 0);
	ck_assert_int_eq(bh_wait_used(&h, 0, &e, 1, 5000), 1);
	ck_assert_uint_eq(e.len, 1025);
	ck_assert_uint_eq(h.host[HDR_GPA + 16], VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(h.host[DATA_GPA + 1023], orig_byte(5 * 512 + 1023));
	stop();
}
END_TEST

/* Discard and write-zeroes when the driver did not accept the feature. */
START_TEST(test_hostile_discard_not_negotiated)
{
	start(_i, NULL,
	      (1ull << VIRTIO_BLK_F_DISCARD) |
		      (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	put_seg(DATA_GPA, 0, 8, 0);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_DISCARD, 0, DATA_GPA, 16, NULL),
			 VIRTIO_BLK_S_UNSUPP);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA_GPA, 16,
				NULL),
			 VIRTIO_BLK_S_UNSUPP);
	stop();
}
END_TEST

/* ------------------------------------------------ queues, in flight */

START_TEST(test_many_in_flight)
{
	enum {
		N = 40
	}; /* 3 descriptors each in a 128-entry queue */
	struct vring_used_elem e[N];
	uint16_t heads[N];

	/* O_DIRECT: the reads go to the disk, so io_uring really has them
	 * in flight together. */
	struct virtio_blk_options o = {.flags = VIRTIO_BLK_OPT_DIRECT};

	start(_i, &o, 0);
	ck_assert_int_eq(fdatasync(file_fd), 0);
	for (unsigned r = 0; r < N; r++) {
		ck_assert_int_eq(bh_add(&h, 0, VIRTIO_BLK_T_IN, r * 16,
					HDR_GPA + r * 32, DATA_GPA + r * 0x2000,
					8192, &heads[r]),
				 0);
	}
	bh_notify(&h, 0);
	if (!is_uring(_i))
		ck_assert_uint_eq(virtio_blk_in_flight(h.blk), 0);
	ck_assert_int_eq(bh_wait_used(&h, 0, e, N, 10000), N);
	ck_assert_uint_eq(virtio_blk_in_flight(h.blk), 0);
	for (unsigned k = 0; k < N; k++) {
		unsigned r;

		for (r = 0; r < N && heads[r] != e[k].id; r++)
			;
		ck_assert_uint_lt(r, N);
		ck_assert_uint_eq(e[k].len, 8193);
		ck_assert_uint_eq(h.host[HDR_GPA + r * 32 + 16],
				  VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(h.host[DATA_GPA + r * 0x2000 + 8191],
				  orig_byte(r * 16 * 512 + 8191));
	}
	stop();
}
END_TEST

START_TEST(test_multiqueue)
{
	struct virtio_blk_options o = {.num_queues = 2};
	struct vring_used_elem e;

	start(_i, &o, 0);
	ck_assert_uint_eq(h.nq, 2);
	memset(h.host + DATA_GPA, 0x3c, 512);
	ck_assert_int_eq(bh_add(&h, 1, VIRTIO_BLK_T_OUT, 7, HDR_GPA, DATA_GPA,
				512, NULL),
			 0);
	bh_notify(&h, 1);
	ck_assert_int_eq(bh_wait_used(&h, 1, &e, 1, 5000), 1);
	ck_assert_uint_eq(h.host[HDR_GPA + 16], VIRTIO_BLK_S_OK);
	ck_assert_int_eq(bh_wait_used(&h, 0, &e, 1, 100), 0);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, 7, DATA_GPA + 0x1000, 512,
				NULL),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(h.host[DATA_GPA + 0x1000 + 100], 0x3c);
	stop();
}
END_TEST

/* An I/O thread polls the device's fds (io_uring completions) while the
 * test thread, as a vCPU, adds requests and notifies. */
static atomic_bool io_stop;

static void *io_thread(void *arg)
{
	(void)arg;
	while (!atomic_load(&io_stop))
		bh_poll(&h, 5);
	return NULL;
}

START_TEST(test_io_thread_completions)
{
	enum {
		ROUNDS = 50,
		BATCH = 16
	};
	/* O_DIRECT: io_uring completions arrive later, on the I/O thread. */
	struct virtio_blk_options o = {.flags = VIRTIO_BLK_OPT_DIRECT};
	pthread_t t;
	unsigned done = 0;

	start(_i, &o, 0);
	ck_assert_int_eq(fdatasync(file_fd), 0);
	atomic_store(&io_stop, false);
	ck_assert_int_eq(pthread_create(&t, NULL, io_thread, NULL), 0);
	for (unsigned round = 0; round < ROUNDS; round++) {
		struct vring_used_elem e;
		unsigned got = 0;

		for (unsigned r = 0; r < BATCH; r++) {
			uint64_t sector = (round * BATCH + r) % 1000 * 8;

			ck_assert_int_eq(bh_add(&h, 0, VIRTIO_BLK_T_IN, sector,
						HDR_GPA + r * 32,
						DATA_GPA + r * 0x1000, 4096,
						NULL),
					 0);
		}
		bh_notify(&h, 0);
		/* The I/O thread reaps; this thread only reads the ring. */
		for (unsigned spin = 0; got < BATCH && spin < 20000; spin++) {
			if (virtq_driver_get_used(h.drv[0], &e) == 1)
				got++;
			else
				usleep(100);
		}
		ck_assert_uint_eq(got, BATCH);
		for (unsigned r = 0; r < BATCH; r++) {
			uint64_t sector = (round * BATCH + r) % 1000 * 8;

			ck_assert_uint_eq(h.host[HDR_GPA + r * 32 + 16],
					  VIRTIO_BLK_S_OK);
			ck_assert_uint_eq(h.host[DATA_GPA + r * 0x1000 + 100],
					  orig_byte(sector * 512 + 100));
		}
		done += got;
	}
	atomic_store(&io_stop, true);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_uint_eq(done, ROUNDS * BATCH);
	stop();
}
END_TEST

static uint16_t used_idx_raw(uint32_t q)
{
	uint16_t v;
	guest_addr_t used = virtq_driver_addr(h.drv[q], VIRTQ_AREA_USED);

	memcpy(&v, h.host + used + 2, 2);
	return v;
}

/*
 * Reset while requests are in flight: with io_uring, 40 O_DIRECT reads
 * of 64 KiB (from the disk, not the page cache) are still in flight when
 * the driver writes status 0; the reset cancels and waits for them and
 * completes none: used.idx does not move and the data buffers, refilled
 * after the reset, stay untouched.
 */
START_TEST(test_reset_with_requests_in_flight)
{
	/* 3 descriptors each in a 128-entry queue */
	enum {
		N = 40
	};
	struct virtio_blk_options o = {.flags = VIRTIO_BLK_OPT_DIRECT};
	uint16_t before;

	start(_i, &o, 0);
	ck_assert_int_eq(fdatasync(file_fd), 0);
	ck_assert_int_eq(posix_fadvise(file_fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	for (unsigned r = 0; r < N; r++)
		ck_assert_int_eq(bh_add(&h, 0, VIRTIO_BLK_T_IN, r * 128,
					HDR_GPA + r * 32,
					DATA_GPA + r * 0x10000, 0x10000, NULL),
				 0);
	bh_notify(&h, 0);
	if (is_uring(_i)) {
		ck_assert_uint_gt(virtio_blk_in_flight(h.blk), 0);
	} else {
		/* Synchronous: all were done at the notify. */
		ck_assert_uint_eq(used_idx_raw(0), N);
	}
	before = used_idx_raw(0);
	bh_set_status(&h, 0);
	ck_assert_uint_eq(bh_status(&h), 0);
	ck_assert_uint_eq(virtio_blk_in_flight(h.blk), 0);
	ck_assert_uint_eq(used_idx_raw(0), before);
	memset(h.host + DATA_GPA, 0x5a, N * 0x10000);
	for (unsigned r = 0; r < N; r++)
		h.host[HDR_GPA + r * 32 + 16] = 0x5a;
	/* Spurious polls after the reset change nothing. */
	bh_poll(&h, 50);
	bh_poll(&h, 0);
	ck_assert_uint_eq(used_idx_raw(0), before);
	for (unsigned k = 0; k < N * 0x10000; k++)
		if (h.host[DATA_GPA + k] != 0x5a)
			ck_abort_msg("guest byte %u written after reset", k);
	for (unsigned r = 0; r < N; r++)
		ck_assert_uint_eq(h.host[HDR_GPA + r * 32 + 16], 0x5a);
	stop();
}
END_TEST

/* ----------------------------------------- write cache (CONFIG_WCE) */

/* A backend wrapping the sync backend that counts operations. */
struct count_be {
	const struct virtio_blk_backend_ops *ops;
	void *inner;
	unsigned n[5];
};

static int count_submit(void *b, struct virtio_blk_io *io)
{
	struct count_be *c = b;

	if (io->op < 5)
		c->n[io->op]++;
	return c->ops->submit(c->inner, io);
}

static void count_destroy(void *b)
{
	struct count_be *c = b;

	c->ops->destroy(c->inner);
}

static const struct virtio_blk_backend_ops count_ops = {
	.submit = count_submit,
	.destroy = count_destroy,
};

static struct count_be cbe;

static void start_counting(int i, struct virtio_blk_options *o, uint64_t drop)
{
	struct virtio_blk *blk;

	mk_file();
	memset(&cbe, 0, sizeof(cbe));
	ck_assert_int_eq(virtio_blk_backend_sync_create(file_fd, &cbe.ops,
							&cbe.inner),
			 0);
	ck_assert_int_eq(virtio_blk_create_with_backend(&count_ops, &cbe,
							FILE_SIZE, o, &blk),
			 0);
	ck_assert_int_eq(
		bh_init(&h, (i & 2) ? BH_MMIO : BH_PCI, blk, 128, drop), 0);
}

START_TEST(test_writethrough_via_wce)
{
	start_counting(_i, NULL, 0);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_OUT, 0, DATA_GPA, 512, NULL),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(cbe.n[VIRTIO_BLK_IO_WRITE], 1);
	ck_assert_uint_eq(cbe.n[VIRTIO_BLK_IO_FLUSH], 0);
	/* Writethrough: every write is followed by a flush. */
	bh_config_wr(&h, offsetof(struct virtio_blk_config, wce), 0, 1);
	ck_assert_uint_eq(
		bh_config_rd(&h, offsetof(struct virtio_blk_config, wce), 1),
		0);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_OUT, 0, DATA_GPA, 512, NULL),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(cbe.n[VIRTIO_BLK_IO_WRITE], 2);
	ck_assert_uint_eq(cbe.n[VIRTIO_BLK_IO_FLUSH], 1);
	put_seg(DATA_GPA, 0, 8, 0);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_DISCARD, 0, DATA_GPA, 16, NULL),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(cbe.n[VIRTIO_BLK_IO_FLUSH], 2);
	/* Back to writeback. */
	bh_config_wr(&h, offsetof(struct virtio_blk_config, wce), 1, 1);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_OUT, 0, DATA_GPA, 512, NULL),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(cbe.n[VIRTIO_BLK_IO_FLUSH], 2);
	stop();
}
END_TEST

/* A driver that did not negotiate FLUSH gets writethrough. */
START_TEST(test_writethrough_without_flush_feature)
{
	start_counting(_i, NULL,
		       (1ull << VIRTIO_BLK_F_FLUSH) |
			       (1ull << VIRTIO_BLK_F_CONFIG_WCE));
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_OUT, 0, DATA_GPA, 512, NULL),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(cbe.n[VIRTIO_BLK_IO_FLUSH], 1);
	stop();
}
END_TEST

/* ----------------------------------- out-of-order completions */

/* A backend that holds every operation until the test releases them, in
 * reverse order. */
struct defer_be {
	int fd;
	struct virtio_blk_io *held[256];
	unsigned n;
};

static int defer_submit(void *b, struct virtio_blk_io *io)
{
	struct defer_be *d = b;

	if (d->n >= 256)
		return -EBUSY;
	d->held[d->n++] = io;
	return 0;
}

static void defer_release(struct defer_be *d)
{
	while (d->n > 0) {
		struct virtio_blk_io *io = d->held[--d->n];
		ssize_t r = -EINVAL;

		if (io->op == VIRTIO_BLK_IO_READ)
			r = preadv(d->fd, io->iov, io->iovcnt,
				   (off_t)io->offset);
		else if (io->op == VIRTIO_BLK_IO_WRITE)
			r = pwritev(d->fd, io->iov, io->iovcnt,
				    (off_t)io->offset);
		else if (io->op == VIRTIO_BLK_IO_FLUSH)
			r = 0;
		virtio_blk_io_complete(io, r < 0 ? -errno : r);
	}
}

static void defer_cancel(void *b)
{
	struct defer_be *d = b;

	while (d->n > 0)
		virtio_blk_io_complete(d->held[--d->n], -ECANCELED);
}

static const struct virtio_blk_backend_ops defer_ops = {
	.submit = defer_submit,
	.cancel_all = defer_cancel,
};

START_TEST(test_out_of_order_completion)
{
	enum {
		N = 32
	};
	static struct defer_be d;
	struct vring_used_elem e[N];
	uint16_t heads[N];
	struct virtio_blk *blk;

	mk_file();
	memset(&d, 0, sizeof(d));
	d.fd = file_fd;
	ck_assert_int_eq(virtio_blk_create_with_backend(&defer_ops, &d,
							FILE_SIZE, NULL, &blk),
			 0);
	ck_assert_int_eq(bh_init(&h, (_i & 2) ? BH_MMIO : BH_PCI, blk, 128, 0),
			 0);
	for (unsigned r = 0; r < N; r++)
		ck_assert_int_eq(bh_add(&h, 0, VIRTIO_BLK_T_IN, r,
					HDR_GPA + r * 32, DATA_GPA + r * 512,
					512, &heads[r]),
				 0);
	bh_notify(&h, 0);
	ck_assert_uint_eq(d.n, N);
	ck_assert_uint_eq(virtio_blk_in_flight(blk), N);
	ck_assert_uint_eq(used_idx_raw(0), 0);
	/* Complete in reverse order, under the device lock. */
	virtio_device_lock(h.dev);
	defer_release(&d);
	virtio_device_unlock(h.dev);
	ck_assert_int_eq(bh_wait_used(&h, 0, e, N, 1000), N);
	for (unsigned k = 0; k < N; k++) {
		ck_assert_uint_eq(e[k].id, heads[N - 1 - k]);
		ck_assert_uint_eq(e[k].len, 513);
	}
	for (unsigned r = 0; r < N; r++) {
		ck_assert_uint_eq(h.host[HDR_GPA + r * 32 + 16],
				  VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(h.host[DATA_GPA + r * 512 + 3],
				  orig_byte(r * 512 + 3));
	}
	/* A second batch left in flight is dropped by a reset. */
	for (unsigned r = 0; r < 4; r++)
		ck_assert_int_eq(bh_add(&h, 0, VIRTIO_BLK_T_IN, r,
					HDR_GPA + r * 32, DATA_GPA + r * 512,
					512, NULL),
				 0);
	bh_notify(&h, 0);
	ck_assert_uint_eq(d.n, 4);
	uint16_t before = used_idx_raw(0);

	virtio_device_reset(h.dev);
	ck_assert_uint_eq(d.n, 0);
	ck_assert_uint_eq(virtio_blk_in_flight(blk), 0);
	ck_assert_uint_eq(used_idx_raw(0), before);
	stop();
}
END_TEST

/* ------------------------------------------------------------ API */

START_TEST(test_api_errors)
{
	struct virtio_blk *blk = NULL;
	struct virtio_blk_options o = {0};

	ck_assert_int_eq(virtio_blk_create(NULL, NULL, &blk), -EINVAL);
	ck_assert_int_eq(virtio_blk_create("/nonexistent/x", NULL, &blk),
			 -ENOENT);
	ck_assert_int_eq(virtio_blk_create("/dev/null", NULL, &blk), -EINVAL);
	o.queue_size = 100;
	ck_assert_int_eq(virtio_blk_create("/dev/null", &o, &blk), -EINVAL);
	o.queue_size = 0;
	o.flags = 1u << 30;
	ck_assert_int_eq(virtio_blk_create("/dev/null", &o, &blk), -EINVAL);
	o.flags = 0;
	o.num_queues = 1000;
	ck_assert_int_eq(virtio_blk_create("/dev/null", &o, &blk), -EINVAL);
	ck_assert_int_eq(virtio_blk_create_with_backend(NULL, NULL, 0, NULL,
							&blk),
			 -EINVAL);
	ck_assert_ptr_null(blk);
	virtio_blk_destroy(NULL);
#ifndef CVMM_HAVE_LIBURING
	const struct virtio_blk_backend_ops *ops;
	void *be;

	ck_assert_int_eq(virtio_blk_backend_uring_create(0, 1, &ops, &be),
			 -EOPNOTSUPP);
#endif
}
END_TEST

/* O_DIRECT: on a file system without it, creation fails like open(2). */
START_TEST(test_direct_io)
{
	struct virtio_blk_options o = {.flags = VIRTIO_BLK_OPT_DIRECT,
				       .backend = (uint32_t)backend_of(_i),
				       .queue_size = 128};
	struct virtio_blk *blk;
	int rc, dfd;

	mk_file();
	dfd = open(path, O_RDWR | O_DIRECT);
	rc = virtio_blk_create(path, &o, &blk);
	if (dfd < 0) {
		ck_assert_int_eq(rc, -errno);
		stop();
		return;
	}
	close(dfd);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(bh_init(&h, (_i & 2) ? BH_MMIO : BH_PCI, blk, 128, 0),
			 0);
	/* Page-aligned guest buffers: reads and writes work. */
	memset(h.host + DATA_GPA, 0x42, 4096);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_OUT, 8, DATA_GPA, 4096, NULL),
			 VIRTIO_BLK_S_OK);
	memset(h.host + DATA_GPA + 0x2000, 0, 4096);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, 8, DATA_GPA + 0x2000, 4096,
				NULL),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(h.host[DATA_GPA + 0x2000 + 4095], 0x42);
	stop();
}
END_TEST

/*
 * The ring layout cvmm's --virtio-ring packed[,in_order=on] chooses:
 * RING_PACKED offered through virtio_device_set_ring_features(),
 * negotiated through the transport (virtio-pci's queue_desc/driver/device
 * and virtio-mmio's QueueDesc/Driver/Device carry the descriptor ring and
 * the two event suppression areas), the mock driver in packed mode.  Eight
 * rounds of eight requests in flight (192 descriptors in a 128-entry ring:
 * the wrap counters turn), writes then reads, the file and guest memory
 * compared; IN_ORDER too on the synchronous backend (which completes in
 * pop order).  Then a driver reset and a probe that declines RING_PACKED
 * gets a split ring from the same device.
 */
START_TEST(test_packed_ring)
{
	const uint64_t f_packed = 1ull << VIRTIO_DEVICE_F_RING_PACKED;
	const uint64_t f_in_order = 1ull << VIRTIO_DEVICE_F_IN_ORDER;
	uint64_t ring = f_packed | (is_uring(_i) ? 0 : f_in_order);
	struct virtio_blk_options o = {.backend = (uint32_t)backend_of(_i),
				       .queue_size = 128};
	struct virtio_blk *blk;
	struct virtio_device *dev;
	uint8_t back[4096];

	mk_file();
	ck_assert_int_eq(virtio_blk_create(path, &o, &blk), 0);
	dev = virtio_blk_device(blk);
	ck_assert_int_eq(virtio_device_set_ring_features(dev, ring), 0);
	ck_assert_uint_eq(virtio_device_offered_features(dev) &
				  (f_packed | f_in_order),
			  ring);
	ck_assert_int_eq(bh_init(&h, (_i & 2) ? BH_MMIO : BH_PCI, blk, 128, 0),
			 0);
	ck_assert_uint_eq(h.features & (f_packed | f_in_order), ring);
	virtio_device_lock(dev);
	ck_assert_uint_eq(virtq_features(virtio_device_queue(dev, 0)) &
				  (f_packed | f_in_order),
			  ring);
	virtio_device_unlock(dev);
	/* The driver has started: the offer is fixed. */
	ck_assert_int_eq(virtio_device_set_ring_features(dev, 0), -EBUSY);

	for (unsigned round = 0; round < 8; round++) {
		for (unsigned pass = 0; pass < 2; pass++) {
			uint32_t type = pass ? VIRTIO_BLK_T_IN
					     : VIRTIO_BLK_T_OUT;

			for (unsigned k = 0; k < 8; k++) {
				guest_addr_t data = DATA_GPA + k * 4096ull;
				uint64_t sector = (round * 8 + k) * 8ull;

				memset(h.host + data,
				       pass ? 0 : (int)(round * 8 + k + 0x40),
				       4096);
				ck_assert_int_eq(bh_add(&h, 0, type, sector,
							HDR_GPA + k * 32, data,
							4096, NULL),
						 0);
			}
			bh_notify(&h, 0);
			ck_assert_int_eq(bh_wait_used(&h, 0, NULL, 8, 5000), 8);
			for (unsigned k = 0; k < 8; k++) {
				ck_assert_uint_eq(h.host[HDR_GPA + k * 32 + 16],
						  VIRTIO_BLK_S_OK);
				for (unsigned b = 0; pass && b < 4096; b++)
					ck_assert_uint_eq(
						h.host[DATA_GPA + k * 4096 + b],
						round * 8 + k + 0x40);
			}
		}
	}
	for (unsigned k = 0; k < 64; k++) {
		ck_assert_int_eq(pread(file_fd, back, sizeof(back), k * 4096ll),
				 (ssize_t)sizeof(back));
		for (unsigned b = 0; b < sizeof(back); b++)
			ck_assert_uint_eq(back[b], k + 0x40);
	}
	ck_assert(!virtio_device_needs_reset(dev));

	/* Reset; the layout is the driver's choice: decline RING_PACKED. */
	bh_set_status(&h, 0);
	ck_assert_uint_eq(bh_status(&h), 0);
	ck_assert_uint_eq(bh_device_features(&h) & f_packed, f_packed);
	bh_set_status(&h, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	h.features &= ~(f_packed | f_in_order);
	bh_driver_features(&h, h.features);
	bh_set_status(&h, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				  VIRTIO_CONFIG_S_FEATURES_OK);
	ck_assert(bh_status(&h) & VIRTIO_CONFIG_S_FEATURES_OK);
	virtq_driver_destroy(h.drv[0]);
	h.drv[0] = NULL;
	ck_assert_int_eq(bh_queue_setup(&h, 0, 128), 0);
	bh_set_status(&h, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				  VIRTIO_CONFIG_S_FEATURES_OK |
				  VIRTIO_CONFIG_S_DRIVER_OK);
	virtio_device_lock(dev);
	ck_assert_uint_eq(
		virtq_features(virtio_device_queue(dev, 0)) & f_packed, 0);
	virtio_device_unlock(dev);
	memset(h.host + DATA_GPA, 0, 4096);
	ck_assert_int_eq(do_req(VIRTIO_BLK_T_IN, 8, DATA_GPA, 4096, NULL),
			 VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(h.host[DATA_GPA + 4095], 1 + 0x40);
	stop();
}
END_TEST

/* A backend used without a device (a vhost-user daemon does this): the
 * completion goes to the struct virtio_blk_io_done in device_data. */
static void done_record(struct virtio_blk_io *io, int64_t result, void *opaque)
{
	int64_t *res = opaque;

	ck_assert_ptr_nonnull(io);
	*res = result;
}

START_TEST(test_backend_without_device)
{
	char tmpl[] = "/tmp/cvmm-blk-done-XXXXXX";
	const struct virtio_blk_backend_ops *ops = NULL;
	struct virtio_blk_io_done done;
	struct virtio_blk_io io = {0};
	char buf[512], back[512];
	struct iovec iov = {buf, sizeof(buf)};
	void *be = NULL;
	int64_t res = -1;
	int fd = mkstemp(tmpl);

	ck_assert_int_ge(fd, 0);
	unlink(tmpl);
	ck_assert_int_eq(ftruncate(fd, 4096), 0);
	ck_assert_int_eq(virtio_blk_backend_sync_create(fd, &ops, &be), 0);
	memset(buf, 0x5c, sizeof(buf));
	virtio_blk_io_done_init(&done, done_record, &res);
	io.op = VIRTIO_BLK_IO_WRITE;
	io.offset = 1024;
	io.len = sizeof(buf);
	io.iov = &iov;
	io.iovcnt = 1;
	io.device_data = &done;
	ck_assert_int_eq(ops->submit(be, &io), 0);
	ck_assert_int_eq(res, (int64_t)sizeof(buf));
	ck_assert_int_eq(pread(fd, back, sizeof(back), 1024),
			 (ssize_t)sizeof(back));
	ck_assert_mem_eq(back, buf, sizeof(buf));
	res = -1;
	io.op = VIRTIO_BLK_IO_FLUSH;
	ck_assert_int_eq(ops->submit(be, &io), 0);
	ck_assert_int_eq(res, 0);
	virtio_blk_io_done_init(NULL, done_record, &res); /* ignored */
	ops->destroy(be);
	close(fd);
}
END_TEST

static Suite *blk_suite(void)
{
	Suite *s = suite_create("virtio-blk");
	TCase *tc = tcase_create("backend x transport");
	TCase *hc = tcase_create("hostile");
	TCase *ac = tcase_create("api");

	/* _i: bit 0 backend (sync, io_uring), bit 1 transport (pci, mmio). */
	tcase_add_loop_test(tc, test_config_and_features, 0, 4);
	tcase_add_loop_test(tc, test_read_write_verify, 0, 4);
	tcase_add_loop_test(tc, test_scattered_chain, 0, 4);
	tcase_add_loop_test(tc, test_get_id, 0, 4);
	tcase_add_loop_test(tc, test_flush_survives_sigkill, 0, 4);
	tcase_add_loop_test(tc, test_read_only_refuses_writes, 0, 4);
	tcase_add_loop_test(tc, test_discard_punches_hole, 0, 4);
	tcase_add_loop_test(tc, test_write_zeroes, 0, 4);
	tcase_add_loop_test(tc, test_write_zeroes_on_tmpfs, 0, 4);
	tcase_add_loop_test(tc, test_many_in_flight, 0, 4);
	tcase_add_loop_test(tc, test_multiqueue, 0, 4);
	tcase_add_loop_test(tc, test_io_thread_completions, 0, 4);
	tcase_add_loop_test(tc, test_reset_with_requests_in_flight, 0, 4);
	tcase_add_loop_test(tc, test_direct_io, 0, 4);
	tcase_add_loop_test(tc, test_indirect_request, 0, 4);
	tcase_add_loop_test(tc, test_packed_ring, 0, 4);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tcase_add_loop_test(hc, test_hostile_sector_overflow, 0, 4);
	tcase_add_loop_test(hc, test_hostile_len_overflow, 0, 4);
	tcase_add_loop_test(hc, test_hostile_sector_beyond_capacity, 0, 4);
	tcase_add_loop_test(hc, test_hostile_discard_segment_past_end, 0, 4);
	tcase_add_loop_test(hc, test_hostile_write_zeroes_sector_overflow, 0,
			    4);
	tcase_add_loop_test(hc, test_hostile_header_missing, 0, 4);
	tcase_add_loop_test(hc, test_hostile_no_status_byte, 0, 4);
	tcase_add_loop_test(hc, test_hostile_get_id_small_buffer, 0, 4);
	tcase_add_loop_test(hc, test_hostile_unsupported_type, 0, 4);
	tcase_add_loop_test(hc, test_hostile_discard_not_negotiated, 0, 4);
	tcase_add_loop_test(hc, test_hostile_chain_beyond_seg_max, 0, 4);
	tcase_set_timeout(hc, 60);
	suite_add_tcase(s, hc);

	/* Custom backends (sync-based): _i is the transport only. */
	tcase_add_loop_test(ac, test_writethrough_via_wce, 0, 4);
	tcase_add_loop_test(ac, test_writethrough_without_flush_feature, 0, 4);
	tcase_add_loop_test(ac, test_out_of_order_completion, 0, 4);
	tcase_add_test(ac, test_api_errors);
	tcase_add_test(ac, test_backend_without_device);
	tcase_set_timeout(ac, 60);
	suite_add_tcase(s, ac);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(blk_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
