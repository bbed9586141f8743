/*
 * engine_util.c - printing names: fr_esc (text) and fr_json_str /
 * fr_json_fput (JSON) for names that hold any byte but NUL.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_internal.h"

Test(esc, control_bytes_backslash_and_utf8)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"plain name.txt", "plain name.txt"},
	    {"a\nb", "a\\nb"},
	    {"a\tb\r", "a\\tb\\r"},
	    {"back\\slash", "back\\\\slash"},
	    {"\x01\x1b[31m\x7f", "\\x01\\x1b[31m\\x7f"},
	    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", /* valid UTF-8 */
	     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
	    {"bad\xff", "bad\\xff"},
	    {"cut\xc3", "cut\\xc3"},                  /* truncated sequence */
	    {"\xc0\xaf", "\\xc0\\xaf"},               /* overlong '/' */
	    {"\xed\xa0\x80", "\\xed\\xa0\\x80"},      /* surrogate */
	    {"\xc2\x9b" "1m", "\\xc2\\x9b1m"},        /* C1 CSI */
	    {"-dash", "-dash"},
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_str_eq(fr_esc(cases[i].in, buf, sizeof(buf)),
				 cases[i].out, "case %zu", i);
}

Test(esc, cut_to_fit)
{
	char buf[8];

	cr_assert_str_eq(fr_esc("abcdefg", buf, sizeof(buf)), "abcdefg");
	cr_assert_str_eq(fr_esc("abcdefgh", buf, sizeof(buf)), "abcd...");
	cr_assert_str_eq(fr_esc("\n\n\n\n", buf, sizeof(buf)), "\\n\\n...");
	cr_assert_str_eq(fr_esc("\xff\xff", buf, sizeof(buf)), "\\xff...");
	cr_assert_eq(strlen(fr_esc("\xff\xff\xff", buf, 4)), 3);
}

Test(json, exact_strings_and_invalid_bytes)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"a\nb\tc", "\"a\\nb\\tc\""},
	    {"q\"b\\", "\"q\\\"b\\\\\""},
	    {"\x01\x7f", "\"\\u0001\\u007f\""},
	    {"caf\xc3\xa9", "\"caf\xc3\xa9\""},
	    {"\xc2\x9b", "\"\\u009b\""},
	    {"bad\xff", "\"bad\\\\xff\""},
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_str_eq(fr_json_str(cases[i].in, buf, sizeof(buf)),
				 cases[i].out, "case %zu", i);
}

Test(json, fput_whole)
{
	char *mem = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&mem, &len);
	char big[5000];

	memset(big, '\n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	fr_json_fput(big, f);
	fclose(f);
	cr_assert_eq(len, 2 + 2 * (sizeof(big) - 1));
	free(mem);
}
