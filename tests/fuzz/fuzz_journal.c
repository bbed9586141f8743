/*
 * fuzz_journal.c - journal replay: the input is a journal file for the
 * fixed package of fuzz_common.h, replayed by fr_journal_open (through a
 * memfd, so nothing touches a disk), as given and with every record's
 * checksum made right (so that the index and hash checks are reached).
 * Replay keeps a prefix of whole good records and cuts the rest; an
 * append after it and a second replay keep everything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_internal.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fr_manifest M;
static int M_ok;

static void replay(const uint8_t *buf, size_t size)
{
	struct fr_journal j;
	struct stat st;
	char path[64];
	int fd = memfd_create("fuzz-journal", MFD_CLOEXEC);

	if (fd < 0)
		abort();
	if (size && fr_pwrite_all(fd, buf, size, 0) < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (fr_journal_open(&j, path, &M) < 0)
		abort(); /* a memfd's journal always opens */
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != j.end ||
	    j.end < FR_JOURNAL_HDR || (j.end - FR_JOURNAL_HDR) % FR_JREC_LEN)
		abort();
	uint32_t n = 0;
	for (uint32_t i = 0; i < M.n_segments; i++)
		n += j.have[i];
	if (n != j.n_have || n > M.n_segments)
		abort();
	/* the records kept are the input's own */
	if (j.end > FR_JOURNAL_HDR) {
		uint8_t *got = malloc(j.end);
		if (j.end > size || !got ||
		    pread(fd, got, j.end, 0) != (ssize_t)j.end ||
		    memcmp(got, buf, j.end))
			abort();
		free(got);
	}
	uint32_t all[64];
	for (uint32_t i = 0; i < M.n_segments; i++)
		all[i] = i;
	if (fr_journal_append(&j, &M, all, M.n_segments) < 0 ||
	    j.n_have != M.n_segments)
		abort();
	fr_journal_close(&j);
	if (fr_journal_open(&j, path, &M) < 0 || j.n_have != M.n_segments ||
	    j.cut)
		abort();
	fr_journal_close(&j);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!M_ok) {
		if (fz_manifest(&M) < 0 || M.n_segments > 64)
			abort();
		M_ok = 1;
	}
	if (size > (64u << 10))
		return 0;
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		abort();
	memcpy(buf, data, size);
	replay(buf, size);
	for (size_t off = FR_JOURNAL_HDR; off + FR_JREC_LEN <= size;
	     off += FR_JREC_LEN)
		fr_put64(buf + off + 24, fr_hash64(buf + off, 24));
	replay(buf, size);
	free(buf);
	return 0;
}
