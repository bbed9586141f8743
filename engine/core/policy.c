/*
 * policy.c - when an address may be used, and how fast: schedules and
 * rate limits, parsed from the config and decided against a clock the
 * caller passes in (tests pass their own).
 *
 *   schedule   = mon-fri 08-18 high; mon-fri 18-08 all; sat-sun all
 *   rate-limit = pulse 4K 5s | 08-18 50%; 18-08 100% | unlimited
 *
 * A rule is [days] [hours] what, its parts in any order; rules are
 * separated by ';' and the first rule that covers a minute decides it.
 * Days: mon..sun, a range (mon-fri, fri-mon), a list (mon,wed,fri-sun)
 * or "daily"; none given: every day. Hours: HH-HH or HH:MM-HH:MM, local
 * time, the end not included; a range that ends before it starts covers
 * the two ends of each of its days (mon-fri 18-08 is Monday to Friday
 * before 08:00 and from 18:00), so the example covers the week
 * exactly; none given: the whole day. A schedule's minutes that no rule
 * covers are closed; a rate limit's are unlimited.
 *
 * The week is kept as one byte per minute (10,080 bytes): every question
 * is then an index, and "when does it open next" a scan of at most a
 * week.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fr_core.h"

#define UNSET 0xff

static const char *const day_names[7] = {"sun", "mon", "tue", "wed",
					 "thu", "fri", "sat"};
static const char *const open_names[] = {"none", "high", "medium", "all"};

static int day_of(const char *s, size_t n)
{
	for (int d = 0; d < 7; d++)
		if (n == 3 && !strncasecmp(s, day_names[d], 3))
			return d;
	return -1;
}

/* "mon", "mon-fri", "mon,wed,fri-sun", "daily" -> a bit per day (bit 0:
 * Sunday); 0 when tok is not a day list. */
static unsigned parse_days(const char *tok)
{
	unsigned mask = 0;

	if (!strcasecmp(tok, "daily"))
		return 0x7f;
	for (const char *p = tok; *p;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		const char *dash = memchr(p, '-', n);
		int a, b;
		if (dash) {
			a = day_of(p, (size_t)(dash - p));
			b = day_of(dash + 1, n - (size_t)(dash - p) - 1);
		} else {
			a = b = day_of(p, n);
		}
		if (a < 0 || b < 0)
			return 0;
		for (int d = a;; d = (d + 1) % 7) {
			mask |= 1u << d;
			if (d == b)
				break;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return mask;
}

/* "HH" or "HH:MM" (00:00 .. 24:00) -> minutes of the day, or -1 */
static int parse_clock(const char *s, size_t n)
{
	int h = 0, m = 0;
	size_t i = 0;

	if (n == 0 || n > 5)
		return -1;
	for (; i < n && isdigit((unsigned char)s[i]); i++)
		h = h * 10 + (s[i] - '0');
	if (i == 0 || i > 2)
		return -1;
	if (i < n) {
		if (s[i] != ':' || n - i != 3 || !isdigit((unsigned char)s[i + 1]) ||
		    !isdigit((unsigned char)s[i + 2]))
			return -1;
		m = (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
	}
	if (m > 59 || h > 24 || (h == 24 && m))
		return -1;
	return h * 60 + m;
}

/* "08-18", "18:30-07:00": 1 and the range; 0 when not an hour range;
 * -1 when it looks like one but is wrong (why in err). */
static int parse_hours(const char *tok, int *from, int *to, char *err,
		       size_t errcap)
{
	const char *dash = strchr(tok, '-');

	if (!dash || !isdigit((unsigned char)tok[0]))
		return 0;
	*from = parse_clock(tok, (size_t)(dash - tok));
	*to = parse_clock(dash + 1, strlen(dash + 1));
	if (*from < 0 || *to < 0) {
		snprintf(err, errcap,
			 "'%s': hours are HH-HH or HH:MM-HH:MM, 00:00 to 24:00",
			 tok);
		return -1;
	}
	if (*from == 1440) {
		snprintf(err, errcap, "'%s': 24:00 can only end a range", tok);
		return -1;
	}
	if (*from == *to) {
		snprintf(err, errcap,
			 "'%s' is empty (leave the hours out for the whole day)",
			 tok);
		return -1;
	}
	return 1;
}

/* Fill the minutes a rule covers that no earlier rule has. */
static void fill(uint8_t *week, unsigned days, int from, int to, uint8_t v)
{
	for (int d = 0; d < 7; d++) {
		if (!(days & (1u << d)))
			continue;
		for (int k = 0; k < 1440; k++) {
			bool in = to > from ? k >= from && k < to
					    : k >= from || k < to;
			if (in && week[d * 1440 + k] == UNSET)
				week[d * 1440 + k] = v;
		}
	}
}

/*
 * Split text into rules and each rule into its days, hours and the rest
 * (one token, handed to what()); fills week. what() returns the value to
 * store or -1 with err filled.
 */
static int parse_rules(const char *text, uint8_t *week,
		       int (*what)(const char *tok, char *err, size_t errcap),
		       const char *kind, char *err, size_t errcap)
{
	char buf[1024];

	if (strlen(text) >= sizeof(buf)) {
		snprintf(err, errcap, "%s too long", kind);
		return FR_E_CONFIG;
	}
	snprintf(buf, sizeof(buf), "%s", text);
	memset(week, UNSET, FR_WEEK_MIN);
	int n_rules = 0;
	char *save_r = NULL;
	for (char *rule = strtok_r(buf, ";", &save_r); rule;
	     rule = strtok_r(NULL, ";", &save_r)) {
		char *save_t = NULL, *tok;
		unsigned days = 0;
		int from = 0, to = 1440, v = -1, got_hours = 0, n_tok = 0;
		char copy[256];
		snprintf(copy, sizeof(copy), "%s", rule);
		for (tok = strtok_r(rule, " \t", &save_t); tok;
		     tok = strtok_r(NULL, " \t", &save_t)) {
			unsigned dm;
			int h;
			n_tok++;
			if ((dm = parse_days(tok))) {
				if (days) {
					snprintf(err, errcap,
						 "rule '%s': days given twice",
						 copy);
					return FR_E_CONFIG;
				}
				days = dm;
			} else if ((h = parse_hours(tok, &from, &to, err,
						    errcap))) {
				if (h < 0)
					return FR_E_CONFIG;
				if (got_hours++) {
					snprintf(err, errcap,
						 "rule '%s': hours given twice",
						 copy);
					return FR_E_CONFIG;
				}
			} else {
				if (v >= 0) {
					snprintf(err, errcap,
						 "rule '%s': '%s' is not a day or "
						 "hour range, and the rule already "
						 "says what it allows",
						 copy, tok);
					return FR_E_CONFIG;
				}
				if ((v = what(tok, err, errcap)) < 0)
					return FR_E_CONFIG;
			}
		}
		if (n_tok == 0)
			continue; /* "a; ; b" or a trailing ';' */
		if (v < 0) {
			snprintf(err, errcap, "rule '%s' says when but not what",
				 copy);
			return FR_E_CONFIG;
		}
		fill(week, days ? days : 0x7f, from, to, (uint8_t)v);
		n_rules++;
	}
	if (!n_rules) {
		snprintf(err, errcap, "%s has no rule", kind);
		return FR_E_CONFIG;
	}
	return 0;
}

/* ---- schedules ----------------------------------------------------------- */

static int open_word(const char *tok, char *err, size_t errcap)
{
	for (int i = 0; i < (int)FR_ARRAY_SIZE(open_names); i++)
		if (!strcasecmp(tok, open_names[i]))
			return i;
	snprintf(err, errcap,
		 "'%s' is not a day (mon..sun, daily, mon-fri, sat,sun), an "
		 "hour range (08:00-18:00), or what a schedule rule allows "
		 "(all, medium: medium and high, high, none)",
		 tok);
	return -1;
}

int fr_schedule_parse(struct fr_schedule *s, const char *text, char *err,
		      size_t errcap)
{
	int rc = parse_rules(text, s->week, open_word, "schedule", err, errcap);

	if (rc < 0)
		return rc;
	for (unsigned m = 0; m < FR_WEEK_MIN; m++)
		if (s->week[m] == UNSET)
			s->week[m] = FR_OPEN_NONE;
	s->set = true;
	return 0;
}

/* Minute of the week (0: Sunday 00:00) of t, local time. */
static unsigned week_minute(time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	return (unsigned)(tm.tm_wday * 1440 + tm.tm_hour * 60 + tm.tm_min);
}

const char *fr_priority_name(int p)
{
	return p == FR_PRIO_HIGH ? "high" : p == FR_PRIO_MEDIUM ? "medium" : "low";
}

bool fr_schedule_allows(const struct fr_schedule *s, int priority, time_t t)
{
	if (!s->set)
		return true;
	return s->week[week_minute(t)] + priority >= FR_OPEN_ALL;
}

/* The first time from t on that s is open (or closed) to priority; -1
 * when that never comes within a week. */
static time_t next_when(const struct fr_schedule *s, int priority, time_t t,
			bool open)
{
	if (fr_schedule_allows(s, priority, t) == open)
		return t;
	/* to the start of the next minute, then minute by minute; local
	 * time is asked each step, so a DST change is followed */
	time_t c = t - t % 60 + 60;
	for (unsigned k = 0; k <= FR_WEEK_MIN + 60; k++, c += 60)
		if (fr_schedule_allows(s, priority, c) == open)
			return c;
	return (time_t)-1;
}

time_t fr_schedule_next_open(const struct fr_schedule *s, int priority,
			     time_t t)
{
	return next_when(s, priority, t, true);
}

time_t fr_schedule_next_close(const struct fr_schedule *s, int priority,
			      time_t t)
{
	return s->set ? next_when(s, priority, t, false) : (time_t)-1;
}

int fr_schedule_open_at(const struct fr_schedule *s, time_t t)
{
	return s->set ? s->week[week_minute(t)] : FR_OPEN_ALL;
}

/* ---- rate limits --------------------------------------------------------- */

static int percent_word(const char *tok, char *err, size_t errcap)
{
	char *end;
	long v = strtol(tok, &end, 10);

	if (end == tok || strcmp(end, "%") || v < 1 || v > 100) {
		snprintf(err, errcap,
			 "'%s': a rate-limit rule is a share of the line, 1%% "
			 "to 100%%",
			 tok);
		return -1;
	}
	return (int)v;
}

int fr_ratelimit_parse(struct fr_ratelimit *r, const char *text, char *err,
		       size_t errcap)
{
	char w1[32], w2[64], w3[64], extra[8];
	int n = sscanf(text, " %31s %63s %63s %7s", w1, w2, w3, extra);

	memset(r, 0, sizeof(*r));
	if (n >= 1 && !strcasecmp(w1, "unlimited")) {
		if (n > 1) {
			snprintf(err, errcap, "'unlimited' takes nothing after it");
			return FR_E_CONFIG;
		}
		return 0;
	}
	if (n >= 1 && !strcasecmp(w1, "pulse")) {
		uint64_t size;
		unsigned ms;
		if (n != 3 || fr_parse_size(w2, &size) || size == 0 ||
		    size > (64u << 20) || fr_parse_duration_ms(w3, &ms) ||
		    ms == 0) {
			snprintf(err, errcap,
				 "'%s': pulse takes a block size (1 to 64M) and "
				 "a delay, e.g. 'pulse 4K 5s'",
				 text);
			return FR_E_CONFIG;
		}
		r->mode = FR_RL_PULSE;
		r->pulse_bytes = (uint32_t)size;
		r->pulse_ms = ms;
		return 0;
	}
	int rc = parse_rules(text, r->week, percent_word, "rate-limit", err,
			     errcap);
	if (rc < 0)
		return rc;
	for (unsigned m = 0; m < FR_WEEK_MIN; m++)
		if (r->week[m] == UNSET)
			r->week[m] = 100;
	r->mode = FR_RL_SHARE;
	return 0;
}

unsigned fr_ratelimit_share(const struct fr_ratelimit *r, time_t t)
{
	return r->mode == FR_RL_SHARE ? r->week[week_minute(t)] : 100;
}

/* ---- pacing --------------------------------------------------------------- */

void fr_pacer_init(struct fr_pacer *p, const struct fr_ratelimit *r,
		   double line_bps)
{
	memset(p, 0, sizeof(*p));
	p->rl = r;
	p->line = line_bps / 8.0;
}

double fr_pacer_rate(const struct fr_pacer *p, time_t t)
{
	if (!p->rl)
		return 0;
	switch (p->rl->mode) {
	case FR_RL_PULSE: {
		/* a block, on the wire at the line's rate, then the silence */
		double period = p->rl->pulse_ms / 1000.0 +
				(p->line > 0 ? p->rl->pulse_bytes / p->line : 0);
		return period > 0 ? p->rl->pulse_bytes / period : 0;
	}
	case FR_RL_SHARE: {
		unsigned share = fr_ratelimit_share(p->rl, t);
		return share >= 100 || p->line <= 0
			       ? 0
			       : p->line * share / 100.0 /
					 (p->senders > 1 ? p->senders : 1);
	}
	default:
		return 0;
	}
}

uint32_t fr_pacer_chunk(const struct fr_pacer *p)
{
	if (p->rl && p->rl->mode == FR_RL_PULSE)
		return p->rl->pulse_bytes;
	return p->frame ? p->frame : 64u << 10;
}

double fr_pacer_wait(struct fr_pacer *p, uint64_t bytes, double now,
		     time_t wall)
{
	if (!p->rl || p->rl->mode == FR_RL_NONE)
		return 0;
	if (p->rl->mode == FR_RL_PULSE) {
		/* a block of pulse_bytes, then pulse_ms of silence */
		double gap = p->rl->pulse_ms / 1000.0;
		if (p->in_block == 0 && now < p->next_at)
			return p->next_at - now;
		if (p->in_block == 0)
			p->block_at = now;
		p->in_block += bytes;
		if (p->in_block >= p->rl->pulse_bytes) {
			/* the silence begins once the block is off the wire:
			 * handed to the socket is not sent, and at the line's
			 * rate (when known) it leaves that much later */
			double gone = p->line > 0
					  ? p->block_at + (double)p->in_block / p->line
					  : now;
			p->in_block = 0;
			p->next_at = (gone > now ? gone : now) + gap;
		}
		return 0;
	}
	double rate = fr_pacer_rate(p, wall);
	if (rate <= 0) {
		p->next_at = 0;
		return 0;
	}
	/* a virtual clock: each byte is due 1/rate after the one before,
	 * never earlier than a quarter second ago (no saving up) */
	if (p->next_at < now - 0.25)
		p->next_at = now - 0.25;
	if (p->next_at > now)
		return p->next_at - now;
	p->next_at += (double)bytes / rate;
	return 0;
}

/* ---- line profiles -------------------------------------------------------- */

/*
 * What each address type's line is, unless its bandwidth says otherwise:
 * the default rate (for rate limits in percent and the first ETA), and
 * the frame size (how much line time a dropped connection can cost, and
 * the size of the pacer's chunks). A LAN's rate is unknown until
 * measured.
 */
static const struct fr_line_profile profiles[] = {
	[FR_ADDR_LAN] = {"lan", 0, 0, 0.5},
	[FR_ADDR_ASYNC] = {"async", 57600, 4096, 30},
	[FR_ADDR_ISDN] = {"isdn", 128000, 16384, 5},
	[FR_ADDR_X25] = {"x25", 64000, 4096, 5},
	[FR_ADDR_SNA] = {"sna", 64000, 8192, 10},
	[FR_ADDR_COURIER] = {"courier", 0, 0, 0},
};

const struct fr_line_profile *fr_line_profile(int type)
{
	return type >= 0 && type < (int)FR_ARRAY_SIZE(profiles) ? &profiles[type]
								 : &profiles[0];
}

uint64_t fr_line_rate(const struct fr_address *a)
{
	return a->bandwidth ? a->bandwidth : fr_line_profile(a->type)->rate_bps;
}
