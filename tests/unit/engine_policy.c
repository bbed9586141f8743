/*
 * engine_policy.c - schedules and rate limits: the parser (every wrong
 * word named) and the decisions, against a clock the test sets (TZ=UTC,
 * so a time_t is a known weekday and hour).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fr_internal.h"

static void utc(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
}

TestSuite(policy, .init = utc);

/* 2026-11-23 was a Monday: day 0 .. 6 = Mon .. Sun, at h:m UTC. */
static time_t at(int day, int h, int m)
{
	return (time_t)1795392000 + day * 86400 + h * 3600 + m * 60;
}

enum { MON, TUE, WED, THU, FRI, SAT, SUN };

static struct fr_schedule S;
static struct fr_ratelimit R;
static char err[300];

static void sched_ok(const char *text)
{
	memset(&S, 0, sizeof(S));
	cr_assert_eq(fr_schedule_parse(&S, text, err, sizeof(err)), 0,
		     "'%s' refused: %s", text, err);
}

static void sched_bad(const char *text, const char *named)
{
	struct fr_schedule s;

	err[0] = '\0';
	cr_assert_neq(fr_schedule_parse(&s, text, err, sizeof(err)), 0,
		      "'%s' accepted", text);
	cr_assert(strstr(err, named), "'%s': error '%s' does not name '%s'",
		  text, err, named);
}

Test(policy, clock_of_the_tests)
{
	struct tm tm;
	time_t t = at(MON, 8, 30);

	gmtime_r(&t, &tm);
	cr_assert_eq(tm.tm_wday, 1);
	cr_assert_eq(tm.tm_hour, 8);
	cr_assert_eq(tm.tm_min, 30);
}

Test(policy, the_issue_s_schedule)
{
	sched_ok("mon-fri 08-18 high; mon-fri 18-08 all; sat-sun all");

	/* Tuesday 10:00: high only */
	cr_assert(fr_schedule_allows(&S, FR_PRIO_HIGH, at(TUE, 10, 0)));
	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_MEDIUM, at(TUE, 10, 0)));
	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_LOW, at(TUE, 10, 0)));
	/* the edges: 07:59 open to all (Monday's night rule), 08:00 not;
	 * 17:59 high only, 18:00 all */
	cr_assert(fr_schedule_allows(&S, FR_PRIO_LOW, at(TUE, 7, 59)));
	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_LOW, at(TUE, 8, 0)));
	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_LOW, at(TUE, 17, 59)));
	cr_assert(fr_schedule_allows(&S, FR_PRIO_LOW, at(TUE, 18, 0)));
	/* "18-08" covers both ends of each weekday: Monday 03:00 too */
	cr_assert(fr_schedule_allows(&S, FR_PRIO_LOW, at(MON, 3, 0)));
	cr_assert(fr_schedule_allows(&S, FR_PRIO_LOW, at(FRI, 23, 0)));
	/* every minute of the week is covered by one of the rules */
	for (int m = 0; m < FR_WEEK_MIN; m++)
		cr_assert(fr_schedule_allows(&S, FR_PRIO_HIGH,
					     at(MON, 0, 0) + m * 60));
	cr_assert(fr_schedule_allows(&S, FR_PRIO_LOW, at(SAT, 12, 0)));
	cr_assert_eq(fr_schedule_open_at(&S, at(WED, 12, 0)), FR_OPEN_HIGH);
	cr_assert_eq(fr_schedule_open_at(&S, at(WED, 22, 0)), FR_OPEN_ALL);
}

Test(policy, uncovered_minutes_are_closed_and_first_rule_wins)
{
	sched_ok("mon 09:30-10:15 medium; mon 09-12 high");

	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_HIGH, at(MON, 8, 59)));
	cr_assert(fr_schedule_allows(&S, FR_PRIO_HIGH, at(MON, 9, 0)));
	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_MEDIUM, at(MON, 9, 29)));
	cr_assert(fr_schedule_allows(&S, FR_PRIO_MEDIUM, at(MON, 9, 30)));
	cr_assert(fr_schedule_allows(&S, FR_PRIO_MEDIUM, at(MON, 10, 14)));
	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_MEDIUM, at(MON, 10, 15)));
	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_HIGH, at(MON, 12, 0)));
	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_HIGH, at(TUE, 10, 0)));
	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_LOW, at(MON, 10, 0)));
}

Test(policy, days_ranges_lists_wrap_and_defaults)
{
	sched_ok("fri-mon all");
	cr_assert(fr_schedule_allows(&S, FR_PRIO_LOW, at(SUN, 12, 0)));
	cr_assert(fr_schedule_allows(&S, FR_PRIO_LOW, at(MON, 23, 59)));
	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_HIGH, at(TUE, 0, 0)));

	sched_ok("tue,thu,sat-sun 00-24 medium");
	cr_assert(fr_schedule_allows(&S, FR_PRIO_MEDIUM, at(THU, 5, 0)));
	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_HIGH, at(WED, 5, 0)));

	/* no days: every day; no hours: the whole day */
	sched_ok("22-06 all");
	cr_assert(fr_schedule_allows(&S, FR_PRIO_LOW, at(WED, 23, 0)));
	cr_assert(fr_schedule_allows(&S, FR_PRIO_LOW, at(THU, 5, 59)));
	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_HIGH, at(THU, 6, 0)));
	/* a range past midnight stays on its days: Saturday's early hours
	 * are not Friday's night */
	sched_ok("fri 22-06 all");
	cr_assert(fr_schedule_allows(&S, FR_PRIO_LOW, at(FRI, 23, 0)));
	cr_assert(fr_schedule_allows(&S, FR_PRIO_LOW, at(FRI, 1, 0)));
	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_LOW, at(SAT, 1, 0)));
	sched_ok("high");
	cr_assert(fr_schedule_allows(&S, FR_PRIO_HIGH, at(SAT, 3, 0)));
	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_MEDIUM, at(SAT, 3, 0)));
	sched_ok("daily none");
	cr_assert_not(fr_schedule_allows(&S, FR_PRIO_HIGH, at(SAT, 3, 0)));
	/* the order of a rule's words does not matter, nor their case */
	sched_ok("HIGH 08-18 Mon-Fri");
	cr_assert(fr_schedule_allows(&S, FR_PRIO_HIGH, at(FRI, 17, 0)));
}

Test(policy, no_schedule_is_always_open)
{
	struct fr_schedule none;

	memset(&none, 0, sizeof(none));
	cr_assert(fr_schedule_allows(&none, FR_PRIO_LOW, at(TUE, 10, 0)));
	cr_assert_eq(fr_schedule_next_open(&none, FR_PRIO_LOW, at(TUE, 10, 0)),
		     at(TUE, 10, 0));
}

Test(policy, next_open_window)
{
	sched_ok("mon-fri 08-18 high; mon-fri 18-08 all; sat-sun all");

	/* a low-priority send on Tuesday 10:17:30 waits for 18:00 */
	cr_assert_eq(fr_schedule_next_open(&S, FR_PRIO_LOW, at(TUE, 10, 17) + 30),
		     at(TUE, 18, 0));
	cr_assert_eq(fr_schedule_next_open(&S, FR_PRIO_HIGH, at(TUE, 10, 17)),
		     at(TUE, 10, 17));
	sched_ok("sat 02-03 all");
	cr_assert_eq(fr_schedule_next_open(&S, FR_PRIO_LOW, at(SUN, 4, 0)),
		     at(SAT, 2, 0) + 7 * 86400);
	sched_ok("daily none");
	cr_assert_eq(fr_schedule_next_open(&S, FR_PRIO_HIGH, at(SUN, 4, 0)),
		     (time_t)-1);
}

Test(policy, schedule_errors_name_the_wrong_word)
{
	sched_bad("mon-fri 08-18 everyone", "everyone");
	/* a misspelt day is not taken for what the rule allows */
	sched_bad("funday all", "'funday' is not a day");
	sched_bad("mon-fro 08-18 high", "mon-fro");
	sched_bad("mon-fri 08-25 high", "08-25");
	sched_bad("mon-fri 8:61-10 high", "8:61-10");
	sched_bad("mon-fri 08-08 high", "08-08");
	sched_bad("mon-fri 24-08 high", "24-08");
	sched_bad("mon-fri 08-18", "says when but not what");
	sched_bad("mon 08-18 high all", "high all");
	sched_bad("mon tue high", "days given twice");
	sched_bad("08-10 10-12 high", "hours given twice");
	sched_bad("", "no rule");
	sched_bad(" ; ;", "no rule");
}

/* ---- rate limits --------------------------------------------------------- */

static void rl_ok(const char *text)
{
	memset(&R, 0, sizeof(R));
	cr_assert_eq(fr_ratelimit_parse(&R, text, err, sizeof(err)), 0,
		     "'%s' refused: %s", text, err);
}

static void rl_bad(const char *text, const char *named)
{
	struct fr_ratelimit r;

	err[0] = '\0';
	cr_assert_neq(fr_ratelimit_parse(&r, text, err, sizeof(err)), 0,
		      "'%s' accepted", text);
	cr_assert(strstr(err, named), "'%s': error '%s' does not name '%s'",
		  text, err, named);
}

Test(policy, rate_limit_forms)
{
	rl_ok("unlimited");
	cr_assert_eq(R.mode, FR_RL_NONE);
	rl_ok("pulse 4K 5s");
	cr_assert_eq(R.mode, FR_RL_PULSE);
	cr_assert_eq(R.pulse_bytes, 4096);
	cr_assert_eq(R.pulse_ms, 5000);
	rl_ok("08-18 50%; 18-08 100%");
	cr_assert_eq(R.mode, FR_RL_SHARE);
	cr_assert_eq(fr_ratelimit_share(&R, at(WED, 9, 0)), 50);
	cr_assert_eq(fr_ratelimit_share(&R, at(WED, 19, 0)), 100);
	/* uncovered minutes are unlimited */
	rl_ok("mon 10-11 25%");
	cr_assert_eq(fr_ratelimit_share(&R, at(MON, 10, 30)), 25);
	cr_assert_eq(fr_ratelimit_share(&R, at(TUE, 10, 30)), 100);
}

Test(policy, rate_limit_errors)
{
	rl_bad("pulse 4K", "pulse takes");
	rl_bad("pulse 0 5s", "pulse takes");
	rl_bad("pulse 4K soon", "pulse takes");
	rl_bad("08-18 150%", "150%");
	rl_bad("08-18 half", "half");
	rl_bad("unlimited 50%", "unlimited");
	rl_bad("08-18", "says when but not what");
}

/* ---- pacing: the rate a sender is held to -------------------------------- */

/* Send total bytes in chunks through the pacer on a virtual clock; the
 * time it took, by that clock. */
static double paced(struct fr_pacer *p, uint64_t total, time_t wall)
{
	double now = 1000.0;
	uint32_t chunk = fr_pacer_chunk(p);

	for (uint64_t sent = 0; sent < total;) {
		double w = fr_pacer_wait(p, chunk, now, wall);
		if (w > 0) {
			now += w;
			continue;
		}
		sent += chunk;
	}
	return now - 1000.0;
}

Test(policy, pulse_paces_blocks_and_gaps)
{
	struct fr_pacer p;

	rl_ok("pulse 4K 5s");
	fr_pacer_init(&p, &R, 128000);
	cr_assert_eq(fr_pacer_chunk(&p), 4096);
	/* a block takes the 16,000 bytes/s line 0.256 s, then 5 s of
	 * silence: the silence counts from when the block is off the wire */
	cr_assert_float_eq(fr_pacer_rate(&p, at(MON, 0, 0)),
			   4096 / (5.0 + 4096 / 16000.0), 1e-9);
	/* 10 blocks: 9 of them followed by a block's time and a gap */
	double t = paced(&p, 10 * 4096, at(MON, 0, 0));
	cr_assert_float_eq(t, 9 * (5.0 + 4096 / 16000.0), 1e-6);
}

Test(policy, share_paces_to_the_hour_s_percentage)
{
	struct fr_pacer p;

	rl_ok("08-18 50%; 18-08 100%");
	fr_pacer_init(&p, &R, 2000000); /* 2 Mbit/s: 250,000 bytes/s */
	cr_assert_float_eq(fr_pacer_rate(&p, at(TUE, 9, 0)), 125000.0, 1e-6);
	cr_assert_float_eq(fr_pacer_rate(&p, at(TUE, 20, 0)), 0.0, 1e-9);
	/* 10 MB at 50% of the line: 80 s, within a chunk's time */
	double t = paced(&p, 10000000, at(TUE, 9, 0));
	cr_assert(t > 79.0 && t < 81.0, "10 MB took %.2f s at 125 kB/s", t);
	/* at 100%: no pacing at all */
	fr_pacer_init(&p, &R, 2000000);
	cr_assert_float_eq(paced(&p, 10000000, at(TUE, 20, 0)), 0.0, 1e-9);
}

Test(policy, share_does_not_save_up_idle_time)
{
	struct fr_pacer p;

	rl_ok("10%");
	fr_pacer_init(&p, &R, 8000000); /* 1 MB/s line, 100 kB/s allowed */
	cr_assert_eq(fr_pacer_wait(&p, 65536, 0.0, at(MON, 0, 0)), 0.0);
	/* an hour idle, then 1 MB: still about 10 s, not sent at once */
	double now = 3600.0, start = now;
	for (uint64_t sent = 0; sent < 1000000;) {
		double w = fr_pacer_wait(&p, 65536, now, at(MON, 1, 0));
		if (w > 0)
			now += w;
		else
			sent += 65536;
	}
	cr_assert(now - start > 9.0, "1 MB took %.2f s", now - start);
}

Test(policy, share_on_a_slow_line_goes_in_its_frames)
{
	struct fr_pacer p;

	rl_ok("50%");
	fr_pacer_init(&p, &R, 64000);
	cr_assert_eq(fr_pacer_chunk(&p), 64u << 10, "no frame size: 64 KiB");
	p.frame = 4096;
	cr_assert_eq(fr_pacer_chunk(&p), 4096);
	/* 4 kB/s allowed: the last of 10 frames of 4 KiB starts after about
	 * 9 s (the first goes at once) */
	double t = paced(&p, 40 * 1024, at(MON, 12, 0));
	cr_assert(t > 8.5 && t < 9.5, "the 10th frame started at %.2f s", t);
}
