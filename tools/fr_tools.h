/*
 * fr_tools.h - what the command line's files share: main.c parses and
 * dispatches, the others present what the engine found.
 */
#ifndef FR_TOOLS_H
#define FR_TOOLS_H

#include <stdbool.h>
#include <stdio.h>

#include "fr_engine.h"

/* A progress line on the terminal (stderr), never wider than it (its
 * TIOCGWINSZ, else $COLUMNS, else 80): the parts in order, two spaces
 * apart; while too wide, the part with the highest drop rank is left
 * out (rank 0 never), and what is still too wide is cut. */
struct ferry_tty_part {
	const char *text;
	int drop;
};
void ferry_tty_line(const struct ferry_tty_part *parts, unsigned n);
/* The line drawn is wiped. */
void ferry_tty_clear(void);

/* `ferry status`: a table per direction, or one JSON array (status.c). */
void fr_status_print(const struct fr_status *s, bool json, FILE *out);
/* `ferry plan`'s report (plan.c): the table, or one JSON object. */
void ferry_plan_print(const struct fr_plan *p, bool json, FILE *out);

/* `ferry prune` and `ferry forget` (prune.c): lines, or JSON. */
void ferry_prune_print(const struct fr_prune_result *r, bool json, FILE *out);
void ferry_forget_print(const struct fr_prune_entry *e, bool json, FILE *out);

/* `ferry verify [--repair]` (verify.c): lines, or one JSON object;
 * nothing when the tree could not be read. */
void ferry_verify_print(const char *name, const struct fr_verify_result *r,
			bool json, FILE *out);

/* `ferry parcel list` and `ferry parcel ship` (parcel.c). */
void ferry_parcel_list_print(const struct fr_parcel_info *ps, uint32_t n,
			     bool json, FILE *out);
void ferry_parcel_shipped_print(const struct fr_parcel_info *p, bool already,
				FILE *out);
/* `ferry parcel import`'s report: a line per parcel and what it still
 * misses, or one JSON object. */
void ferry_parcel_import_print(const struct fr_import_result *r, bool json,
			       FILE *out);
/* `ferry parcel create`'s progress line, set in o. */
void ferry_parcel_progress(struct fr_parcel_opts *o);
/* `ferry parcel create`'s summary: the parcel, or (none kept) what the
 * walk left out, on stderr. */
void ferry_parcel_made_print(const struct fr_parcel_made *m, bool json,
			     bool skip_special, FILE *out);

/* What `ferry send` and `ferry resume` print (send.c): the summary of
 * each transfer (a line, or JSON), and while they run, the progress line
 * and the report of an interruption (the engine's hooks). */
struct ferry_report {
	bool json, resume;
	int verbosity;		/* FR_LOG_*: -q leaves the summary line out */
	const char *config;	/* for "ferry resume ... --config F" */
};
void ferry_send_hooks(struct ferry_report *rp, bool progress_line,
		      struct fr_send_hooks *h);
void ferry_send_print(const struct fr_send_result *r,
		      const struct ferry_report *rp);
void ferry_resume_print(const struct fr_resume_result *res,
			const struct ferry_report *rp);
/* What the walk left out: "left out N: a (fifo), ..." and a newline
 * (nothing when none), or a JSON array of {"path", "type"}. */
void ferry_left_print(const struct fr_left_list *l, FILE *out);
void ferry_left_json(const struct fr_left_list *l, FILE *out);

/* `ferry bench`'s arguments, checked by main.c. */
#define FERRY_LEVEL_ALL (-3) /* --level all */
struct ferry_bench_args {
	const char *target;	/* link: SITE; pipeline: PATH */
	const char *via;	/* link: the address's name, or NULL */
	unsigned seconds;	/* link: 1..60 */
	unsigned streams;	/* link: 1..16 */
	unsigned omit;		/* link: seconds left out, < seconds */
	bool reverse, store;	/* link */
	bool json, progress;
	int level;		/* pipeline: -1 auto, FERRY_LEVEL_ALL, 0..19 */
};
/* `ferry bench link` (bench_link.c): measure, print the table or the
 * JSON document on out. 0 or a negative engine code (logged). */
int ferry_bench_link(const struct fr_config *c,
		     const struct ferry_bench_args *b, FILE *out);
/* `ferry bench pipeline` (bench_pipeline.c); c may be NULL (no config:
 * the defaults). */
int ferry_bench_pipeline(const struct fr_config *c,
			 const struct ferry_bench_args *b, FILE *out);

#endif
