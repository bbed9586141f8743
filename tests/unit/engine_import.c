/*
 * engine_import.c - the result of an import as IMPORT_DONE carries it
 * from the running receiver to `parcel import` (recv/import.c): what is
 * packed reads back the same, and an answer that is cut, padded, or
 * whose counts or lengths do not fit is refused, not read past.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fr_internal.h"

static struct fr_import_parcel P[2] = {
	{.id = "0123456789abcdef0123456789abcdef",
	 .name = "pkg with\nnewline",
	 .imported = 12, .held = 3, .refused = 1, .damaged = 1,
	 .complete = false, .n_have = 15, .n_segments = 24,
	 .missing_volumes = "vol-002.fpv, vol-005.fpv",
	 .last_volume_seen = true, .missing_segments = "3,7-9",
	 .n_missing = 4, .not_in_parcel = 5},
	{.id = "fedcba9876543210fedcba9876543210", .name = "done",
	 .already_complete = true, .complete = true},
};
static struct fr_import_refused R[1] = {
	{.path = "/media/x/vol-001.fpv", .why = "addressed to site OTHER"},
};

static struct fr_import_result result(void)
{
	return (struct fr_import_result){.parcels = P, .n_parcels = 2,
					 .refused = R, .n_refused = 1,
					 .error = -22,
					 .message = "one volume was refused"};
}

Test(import_result, round_trip)
{
	struct fr_import_result in = result(), out;
	uint8_t *b;
	uint32_t len;

	cr_assert_eq(fr_import_result_pack(&in, &b, &len), 0);
	cr_assert_eq(fr_import_result_unpack(b, len, &out), 0);
	cr_assert_eq(out.n_parcels, 2);
	cr_assert_eq(out.n_refused, 1);
	cr_assert_eq(out.error, -22);
	cr_assert_str_eq(out.message, in.message);
	for (unsigned i = 0; i < 2; i++) {
		const struct fr_import_parcel *a = &P[i], *o = &out.parcels[i];
		cr_assert_str_eq(o->id, a->id);
		cr_assert_str_eq(o->name, a->name);
		cr_assert_eq(o->already_complete, a->already_complete);
		cr_assert_eq(o->complete, a->complete);
		cr_assert_eq(o->last_volume_seen, a->last_volume_seen);
		cr_assert_eq(o->imported, a->imported);
		cr_assert_eq(o->held, a->held);
		cr_assert_eq(o->refused, a->refused);
		cr_assert_eq(o->damaged, a->damaged);
		cr_assert_eq(o->n_have, a->n_have);
		cr_assert_eq(o->n_segments, a->n_segments);
		cr_assert_eq(o->n_missing, a->n_missing);
		cr_assert_eq(o->not_in_parcel, a->not_in_parcel);
		cr_assert_str_eq(o->missing_volumes, a->missing_volumes);
		cr_assert_str_eq(o->missing_segments, a->missing_segments);
	}
	cr_assert_str_eq(out.refused[0].path, R[0].path);
	cr_assert_str_eq(out.refused[0].why, R[0].why);
	fr_import_result_fini(&out);
	free(b);
}

Test(import_result, cut_anywhere_is_refused)
{
	struct fr_import_result in = result(), out;
	uint8_t *b;
	uint32_t len;

	cr_assert_eq(fr_import_result_pack(&in, &b, &len), 0);
	for (uint32_t cut = 0; cut < len; cut++) {
		cr_assert_eq(fr_import_result_unpack(b, cut, &out), FR_E_PROTOCOL,
			     "cut at %u of %u", cut, len);
		fr_import_result_fini(&out);
	}
	uint8_t *more = malloc(len + 1);
	memcpy(more, b, len);
	more[len] = 0;
	cr_assert_eq(fr_import_result_unpack(more, len + 1, &out), FR_E_PROTOCOL,
		     "a byte past its end");
	fr_import_result_fini(&out);
	free(more);
	free(b);
}

Test(import_result, counts_and_lengths_that_do_not_fit)
{
	struct fr_import_result in = result(), out;
	uint8_t *b;
	uint32_t len;

	cr_assert_eq(fr_import_result_pack(&in, &b, &len), 0);
	uint8_t *bad = malloc(len);
	/* a parcel count far past what the bytes hold */
	memcpy(bad, b, len);
	fr_put32(bad, 0x7fffffff);
	cr_assert_eq(fr_import_result_unpack(bad, len, &out), FR_E_PROTOCOL);
	fr_import_result_fini(&out);
	/* the message's length past the end */
	memcpy(bad, b, len);
	fr_put32(bad + 12, len);
	cr_assert_eq(fr_import_result_unpack(bad, len, &out), FR_E_PROTOCOL);
	fr_import_result_fini(&out);
	/* a NUL inside a string (the message's first byte) */
	memcpy(bad, b, len);
	bad[16] = 0;
	cr_assert_eq(fr_import_result_unpack(bad, len, &out), FR_E_PROTOCOL);
	fr_import_result_fini(&out);
	free(bad);
	free(b);
}
