/*
 * fr_engine.h - what the command line (tools/) may call: configuration,
 * sending, resuming, serving, status and verification.
 *
 * The engine owns the pipeline (reader, hash/compress workers, outputs),
 * the scheduler, the receiver, the segment store and its journal. It uses
 * io/ for every data-path system call and codec/ for every byte format.
 *
 * Every function returns 0 or a negative code (fr_strerror() explains it)
 * and logs what went wrong, naming its subject, through fr_log().
 */
#ifndef FR_ENGINE_H
#define FR_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "fr_codec.h"

/* ---- logging ----------------------------------------------------------- */

enum fr_log_level { FR_LOG_ERROR, FR_LOG_WARN, FR_LOG_INFO, FR_LOG_DEBUG };
extern int fr_log_verbosity;  /* messages above this level are dropped */
extern const char *fr_log_tag; /* "ferry" or "ferry[LAB]" */
void fr_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The calling thread's log lines also go to f (NULL: no more). */
void fr_log_copy_to(FILE *f);
/* The last error logged by this process (also when it was not shown):
 * "" if none. */
const char *fr_log_last_error(void);
/* The last error this thread logged (since fr_log_copy_to began a copy):
 * a receiver's sessions each have theirs. */
const char *fr_log_thread_error(void);
/* What this ferry speaks: "protocol 2 (sealed sessions), parcel volume
 * format 3 (sealed)" (`ferry version`). */
const char *fr_versions(void);
/* The AEAD this machine chooses: "AES-256-GCM" or "XChaCha20-Poly1305". */
const char *fr_aead_here(void);

/* A test build (FERRY_TEST_HOOKS) checks the FERRY_* test switches at
 * start: a bad value ends the process with a message (exit 2). Nothing
 * in any other build. */
void fr_hooks_check(void);

/* ---- printing helpers (core/util.c) -------------------------------------- */

/* "512 B", "1.5 KiB", "33.0 MiB" ... into buf; returns buf. */
const char *fr_human_bytes(uint64_t b, char *buf, size_t cap);
/* Unix time t as a JSON string, ISO-8601 UTC ("2026-05-01T12:00:03Z"
 * with its quotes), or null when t < 0; returns buf. */
const char *fr_json_time(int64_t t, char *buf, size_t cap);
/* Unix time t in local time, "2026-05-01 14:00:03" ("?" when t < 0). */
const char *fr_time_text(int64_t t, char *buf, size_t cap);
/* Unix time t in local time with its weekday, to the minute, "Sat
 * 2026-05-02 14:00" (when a schedule opens; "?" when t < 0). */
const char *fr_when_text(int64_t t, char *buf, size_t cap);
/* Seconds as "45s", "12m", "1m30s", "3h05m", "4d07h" ("-" when s < 0). */
const char *fr_span_str(int64_t s, char *buf, size_t cap);
/* Seconds as a clock, "4:05" or "1:02:03" ("--:--" when unknown: < 0
 * or past 99 hours). */
const char *fr_clock_str(double s, char *buf, size_t cap);
/* JSON string escaping into out (quotes included, cut to fit cap);
 * returns out. Control characters as JSON escapes; a byte that is not
 * UTF-8 as the four characters \xNN. fr_json_fput writes it whole. */
const char *fr_json_str(const char *s, char *out, size_t cap);
void fr_json_fput(const char *s, FILE *f);
/*
 * A name (any bytes but NUL) made safe to print: backslash, newline, tab
 * and CR as \\ \n \t \r; other control bytes, C1 controls and bytes
 * that are not UTF-8 as \xNN; printable UTF-8 as it is. Cut with "..."
 * to fit cap; FR_ESC_MAX holds any path whole. Returns out.
 */
#define FR_ESC_MAX (4 * FR_PATH_MAX + 8)
const char *fr_esc(const char *s, char *out, size_t cap);

/* ---- configuration ----------------------------------------------------- */

enum fr_addr_type {
	FR_ADDR_LAN,
	FR_ADDR_ASYNC,
	FR_ADDR_ISDN,
	FR_ADDR_X25,
	FR_ADDR_SNA,
	FR_ADDR_COURIER
};

struct fr_account {
	char code[FR_CODE_MAX + 1];
	uint8_t key[32]; /* derived from the password, never the password */
};

/* ---- schedules and rate limits (policy.c) ------------------------------- */

#define FR_WEEK_MIN (7 * 1440)
/* Which priorities a schedule lets through at a minute: a send of
 * priority p (enum fr_priority) may go when open + p >= FR_OPEN_ALL. */
enum fr_open { FR_OPEN_NONE, FR_OPEN_HIGH, FR_OPEN_MEDIUM, FR_OPEN_ALL };

struct fr_schedule {
	bool set;                  /* no schedule: always open to all */
	uint8_t week[FR_WEEK_MIN]; /* per minute from Sunday 00:00: fr_open */
};

enum fr_rl_mode { FR_RL_NONE, FR_RL_PULSE, FR_RL_SHARE };
struct fr_ratelimit {
	int mode;                  /* enum fr_rl_mode */
	uint32_t pulse_bytes;      /* pulse: a block of this many bytes, */
	uint32_t pulse_ms;         /* then this long silent */
	uint8_t week[FR_WEEK_MIN]; /* share: percent of the line per minute */
};

/* Parse a schedule or rate-limit value (see policy.c for the grammar);
 * errors say which rule and word was wrong. */
int fr_schedule_parse(struct fr_schedule *s, const char *text, char *err,
		      size_t errcap);
int fr_ratelimit_parse(struct fr_ratelimit *r, const char *text, char *err,
		       size_t errcap);
/* May a send of this priority use the address at t (local time)? */
bool fr_schedule_allows(const struct fr_schedule *s, int priority, time_t t);
/* The first moment from t on when it may, or (time_t)-1: never. */
time_t fr_schedule_next_open(const struct fr_schedule *s, int priority,
			     time_t t);
int fr_schedule_open_at(const struct fr_schedule *s, time_t t);
/* The first time from t on that s is closed to priority (t itself when
 * it is closed now); -1 when it never closes. */
time_t fr_schedule_next_close(const struct fr_schedule *s, int priority,
			      time_t t);
/* The share of the line (percent) a rate limit allows at t. */
unsigned fr_ratelimit_share(const struct fr_ratelimit *r, time_t t);

/*
 * A pacer holds a sender to its rate limit: before sending `bytes` (at
 * most fr_pacer_chunk() at a time) ask fr_pacer_wait() how long to wait
 * first (now: a monotonic clock in seconds; wall: for the hour's share);
 * 0 means send now, and the bytes are counted.
 */
struct fr_pacer {
	const struct fr_ratelimit *rl; /* NULL: unlimited */
	double line;                   /* the line's rate, bytes/s */
	double next_at;                /* monotonic seconds */
	uint64_t in_block;             /* pulse: bytes of the current block */
	double block_at;               /* pulse: when it began to go */
	uint32_t frame;                /* share: chunk size (0: 64 KiB) */
	unsigned senders;              /* share: the sends it is split
					* among (0, 1: this one alone) */
};
void fr_pacer_init(struct fr_pacer *p, const struct fr_ratelimit *r,
		   double line_bps);
double fr_pacer_rate(const struct fr_pacer *p, time_t wall); /* 0: none */
uint32_t fr_pacer_chunk(const struct fr_pacer *p);
double fr_pacer_wait(struct fr_pacer *p, uint64_t bytes, double now,
		     time_t wall);

struct fr_address {
	char site[FR_CODE_MAX + 1];
	char name[64];
	int type;           /* enum fr_addr_type */
	char host[256];     /* host:port */
	char account[FR_CODE_MAX + 1];
	uint8_t key[32];
	int priority;       /* 1 is tried first */
	char media[1024];   /* courier: default media directory */
	char transit[32];   /* courier: how long shipping takes (display) */
	uint64_t bandwidth; /* the line's rate, bit/s; 0: the type's default */
	char dial[1024];    /* RAS: brings the line up (exit 0: up) */
	char hangup[1024];  /* RAS: takes it down */
	unsigned idle_ms;   /* RAS: hang up after this long idle (60 s) */
	struct fr_schedule schedule;
	struct fr_ratelimit ratelimit;
};

struct fr_config {
	char path[1024];
	char code[FR_CODE_MAX + 1];
	char store[1024];
	char listen[256];
	struct fr_account *accounts;
	unsigned n_accounts;
	struct fr_address *addresses;
	unsigned n_addresses;
	/* [sender] */
	int retries;             /* default 2 */
	unsigned retry_delay_ms; /* default 60 s */
	int max_sends;           /* default 5 */
	int max_sends_site;      /* default 3 */
	int level;               /* -1 = automatic, else 0 (raw) .. 19 */
	uint32_t seg_size;       /* default 8 MiB */
	int workers;             /* 0 = one per core */
	/* [receiver] */
	int max_connections;     /* default 4 */
};

/* An address type's line: default rate (bit/s, 0: measured) and frame
 * size (bytes, 0: a whole segment). */
struct fr_line_profile {
	const char *name;
	uint64_t rate_bps;
	uint32_t frame;
	double setup_s; /* bringing it up: a dial, a handshake */
};
const struct fr_line_profile *fr_line_profile(int type);
/* The address's line rate in bit/s: its bandwidth, else its type's. */
uint64_t fr_line_rate(const struct fr_address *a);

/* The detached process that hangs a RAS line up once idle (ras.c): run
 * as `ferry __line-keeper ...` by the sender that dialled. */
int fr_line_keeper(int argc, char **argv);

/* Load and check a config; errors name the file, line and key. */
int fr_config_load(struct fr_config *c, const char *path);
void fr_config_fini(struct fr_config *c);
const struct fr_account *fr_config_account(const struct fr_config *c,
					   const char *code);
/* The sites the config has addresses for, as "LAB, HQ" into out (""
 * when none); returns out. */
const char *fr_config_sites(const struct fr_config *c, char *out, size_t cap);
/* The addresses of a site, in priority order; returns how many. */
unsigned fr_config_addresses(const struct fr_config *c, const char *site,
			     const struct fr_address **out, unsigned max);
/* Parse "500ms", "30s", "2m", "1h", "3d" or "2w": the unit is required
 * (but for 0). */
int fr_parse_duration_ms(const char *s, unsigned *out);
/* The same, in seconds, without fr_parse_duration_ms's limit of 49 days
 * ("90d"). */
int fr_parse_duration_s(const char *s, double *out);
/* Parse "8M", "700MiB", "4096" into bytes: K, M, G, T (and KiB...) are
 * powers of 1024, KB, MB, GB, TB of 1000 ("4.7GB": a DVD). */
int fr_parse_size(const char *s, uint64_t *out);

/* ---- what a package cannot hold (scan.c) -------------------------------- */

/*
 * The walk of a source carries every regular file, directory and symlink
 * that stays inside it, whatever its name. What it cannot carry (fifos,
 * sockets, devices, symlinks leading out of the package) is left out and
 * listed here, so that a summary and its JSON can say so.
 */
struct fr_left_out {
	char *path;       /* relative to the source root; raw bytes */
	char type[32];    /* "fifo", "socket", "char device", ... */
};
struct fr_left_list {
	struct fr_left_out *v;
	uint32_t n, cap;
};
void fr_left_list_fini(struct fr_left_list *l);
/* The list packed into buf (cap bytes) as type NUL path NUL pairs, the
 * entries that fit: the bytes used. fr_left_unpack adds them to l. */
size_t fr_left_pack(const struct fr_left_list *l, char *buf, size_t cap);
int fr_left_unpack(const char *buf, size_t len, struct fr_left_list *l);

/* ---- sending ----------------------------------------------------------- */

enum fr_priority { FR_PRIO_LOW, FR_PRIO_MEDIUM, FR_PRIO_HIGH };
/* "high", "medium" or "low". */
const char *fr_priority_name(int p);

/* Progress of a send, as status shows it (rewritten atomically by the
 * sender) and as the command line draws it. */
struct fr_progress {
	char state[16];
	uint64_t total_bytes, done_bytes, wire_bytes;
	uint64_t moving_bytes;   /* of done_bytes: frames on their way, their
				  * part the receiver's TCP took (not kept) */
	uint32_t n_segments, segs_done;
	/* of segs_done, done_bytes: held at the site without this run's
	 * frames (held at its offer, copies found the same) */
	uint32_t segs_held;
	uint64_t held_bytes;
	uint64_t link_acked; /* what the receiver's TCP acknowledged (not
			      * kept on disk: a silent link's stays put) */
	double rate;   /* bytes/s of package data */
	double eta;    /* seconds, <0 unknown */
	int level;
	char output[96];
	char error[800];
	long pid;
	int64_t updated; /* unix seconds */
	char phase[16];  /* a send over one output, opening it: "dialling"
			  * its line, "waiting" for the line (another
			  * transfer holds it), or "" */
};

struct fr_send_result;
/* How a send or resume tells the command line while it runs (tools/
 * prints): every member may be NULL; called from the sender's threads. */
struct fr_send_hooks {
	/* about four times a second: a transfer's progress */
	void (*progress)(void *arg, const char *name, const char *site,
			 const struct fr_progress *p);
	/* the progress shown is over: a try ended (its log follows) */
	void (*progress_end)(void *arg);
	/* SIGINT or SIGTERM stopped r (its error -EINTR, its message why):
	 * its report, before the process exits 128 + the signal */
	void (*interrupted)(void *arg, const struct fr_send_result *r);
	void *arg;
};

/* --courier: the site's courier is weighed (an error when it has none
 * with media); --via auto: weighed if it has one. */
enum { FR_COURIER_NO, FR_COURIER_YES, FR_COURIER_IF_ANY };
struct fr_send_opts {
	const char *path;     /* file or directory to send */
	const char *site;     /* destination site code */
	const char *name;     /* package name (default: basename of path) */
	const char *via;      /* address name, or NULL for all in order */
	int priority;         /* enum fr_priority */
	int level;            /* -2 = config's choice, -1 auto, 0..19 fixed */
	bool skip_special;    /* what is left out does not make it fail */
	int courier;          /* split with a parcel when media would help:
			       * FR_COURIER_* */
	const struct fr_send_hooks *hooks; /* or NULL */
};

/* Result of one transfer, for the summary line or JSON. */
/* What one output carried in a send (a striped send has several). */
#define FR_OUTPUTS_MAX 16
struct fr_output_result {
	char name[64];
	uint32_t segments;          /* acknowledged first by this output */
	uint64_t bytes;             /* their raw bytes */
	double rate;                /* its rate at the end, bytes/s */
	double finished;            /* its last such ACK, s after the start */
	bool courier;               /* a --courier send's parcel */
};

struct fr_send_result {
	char transfer[64];
	char name[FR_NAME_MAX + 1];
	char site[FR_CODE_MAX + 1];
	uint64_t total_bytes;       /* package size */
	uint64_t sent_bytes;        /* payload bytes put on the wire */
	uint64_t sent_raw;          /* the package bytes those carried */
	uint64_t skipped_bytes;     /* raw bytes the receiver already held */
	uint64_t read_bytes;        /* bytes read from the source files */
	uint32_t n_segments, segs_sent, segs_skipped, segs_resent;
	bool was_complete;          /* the site held it complete already */
	double seconds;
	double waited_s;            /* of those, waiting for a window or a
				     * send slot before anything could go */
	int level_last;             /* compression level at the end */
	int attempts;
	int error;                  /* 0 or the last error */
	/* left out of the package; unless skip_special, a send that left
	 * something out returns (and says in error) FR_E_LEFT_OUT */
	struct fr_left_list left_out;
	uint32_t left_unlisted;     /* left out too, not in the list (a resume
				     * of several passes on 64 KiB of names:
				     * the log has them all) */
	bool skip_special;
	bool level_auto;            /* the level follows the link */
	char message[512];          /* what went wrong, when error */
	struct fr_output_result outputs[FR_OUTPUTS_MAX];
	unsigned n_outputs;         /* 0: one output, not striped */
};

/* Create a transfer for opts and run it to the end (with retries).
 * res is always filled; free it with fr_send_result_fini. */
int fr_send(const struct fr_config *c, const struct fr_send_opts *o,
	    struct fr_send_result *res);
void fr_send_result_fini(struct fr_send_result *r);
/* `ferry resume`: one interrupted transfer, or every unfinished one
 * (several at once, each in a process of its own, within the sender's
 * limits). */
struct fr_resume_opts {
	const char *transfer; /* id or package name; NULL: every one */
	bool skip_special;    /* as for a send */
	const struct fr_send_hooks *hooks; /* one transfer: progress shown,
					    * interruption; or NULL */
};
struct fr_resume_result {
	struct fr_send_result *v; /* a result per transfer resumed */
	unsigned n;
};
/* 0 when every one finished; -ENOENT for a transfer that names none;
 * else as fr_send (FR_E_INCOMPLETE for several, -EINTR when a signal
 * stopped them). out is filled even then: fr_resume_result_fini it. */
int fr_resume(const struct fr_config *c, const struct fr_resume_opts *o,
	      struct fr_resume_result *out);
void fr_resume_result_fini(struct fr_resume_result *r);
/* The signal (SIGINT, SIGTERM) that stopped a send or resume, or 0. A
 * sender stopped by one records its transfer as interrupted, says on
 * stderr how to resume it and exits 128 + the signal; a resume of
 * several returns -EINTR once its children have stopped. */
int fr_interrupted(void);

/* ---- planning (sched/plan.c) ------------------------------------------- */

/* `ferry plan`: what a send of path to site would do, before anything
 * moves. */
struct fr_plan_opts {
	const char *path;     /* file or directory */
	const char *site;     /* destination site code */
	const char *name;     /* package name (default: PATH's last part) */
	const char *via;      /* one network address, or NULL: every usable one */
	int priority;         /* enum fr_priority: what the schedules let through */
	bool offline;         /* do not ask the site what it holds */
};

/* One output the send would use: a network address to the site. */
struct fr_plan_output {
	char name[64];
	const char *type;     /* "lan", "async", "isdn", "x25", "sna" */
	double rate;          /* bytes/s it is planned at */
	const char *rate_src; /* "measured", "configured", "profile", "default" */
	int64_t measured_at;  /* measured: when (Unix time); else -1 */
	bool limited;         /* its rate-limit holds it below that now */
	double opens;         /* s from now until its schedule opens (0: open) */
	double setup;         /* s opening it costs first (a handshake; a
			       * line's dial too unless it is up) */
	const char *setup_src; /* a line's dial: "assumed" (its type's),
				* "measured" (its last here), "up" (none) */
	uint32_t segments;    /* it would carry (acknowledged first) */
	uint64_t bytes;       /* their bytes */
	double finish;        /* s from now when its last one lands (0: none) */
	char unreachable[256]; /* a LAN address that did not answer the plan
				* (why): planned without it; "": it answered,
				* or was not asked (a line, --offline) */
};

/* The site's courier address, and whether shipping media would beat the
 * network: the network carries the front, the parcel the back. */
struct fr_plan_courier {
	char name[64];
	char media[1024];
	double transit_s;     /* -1: no transit configured */
	double write_rate, import_rate; /* bytes/s, as modelled */
	double alone;         /* s: the parcel carrying all there is to send */
	bool modelled;        /* media and transit known, something to send */
	bool split;           /* shipping the tail beats the network alone */
	uint32_t first;       /* split: the parcel's first segment (package index) */
	uint32_t net_segments, segments; /* split: by the network, by the parcel */
	uint64_t net_bytes, bytes;
	double eta;           /* split: when the last segment lands, s from now */
	double gain;          /* split: that much sooner than the network alone */
	char why[160];        /* no split: why not */
};

struct fr_plan {
	char name[FR_NAME_MAX + 1];
	char site[FR_CODE_MAX + 1];
	int priority;
	int64_t now;                 /* planned at (Unix time) */
	uint64_t total_bytes;        /* the package */
	uint32_t n_segments;
	uint32_t left_out;           /* entries the walk cannot carry */
	bool asked;                  /* the site said what it holds, */
	char asked_via[64];          /* through this address; */
	char not_asked[512];         /* else why not */
	uint32_t held_segments;      /* at the site already (a send skips them) */
	uint32_t held_unconfirmed;   /* of them: copies the sender has not
				      * hashed yet (read and compared, then
				      * skipped when they match) */
	uint64_t held_bytes;
	uint32_t send_segments;      /* what a send would carry */
	uint64_t send_bytes;
	struct fr_plan_output outputs[FR_OUTPUTS_MAX];
	unsigned n_outputs;
	unsigned n_unreachable;      /* outputs that did not answer; all of
				      * them: planned as if they would */
	double eta;                  /* s from now when the last segment lands
				      * (0: nothing to send) */
	uint32_t seg_size;           /* the package's segments */
	/* over several links, smaller segments that would land it sooner
	 * (the slow links' last segments ending with the fast ones'): the
	 * best such size and its ETA, or 0 */
	uint32_t better_seg;
	double better_eta;
	bool has_courier;
	struct fr_plan_courier courier;
};

/*
 * List the source (its cached hashes, when an earlier send made them),
 * ask the site what it holds (unless offline; through every LAN address
 * at once, within a few seconds, the answer of the first in priority
 * order kept: a plan never dials a line), and simulate the send over
 * every usable address that answered (or was not asked), and the
 * courier's split. 0, or FR_E_CONFIG (unknown site, --via naming
 * nothing, no usable address), or the source's -errno; logged.
 */
int fr_plan(const struct fr_config *c, const struct fr_plan_opts *o,
	    struct fr_plan *p);

/* ---- `ferry bench pipeline` (pipe/bench.c) ----------------------------- */

/* Rates are MB/s with MB = 10^6 bytes, as `zstd -b` counts. */
#define FR_BENCH_LEVELS 20
struct fr_bench_level {
	int level;
	double ratio;			/* raw bytes / stored bytes */
	double compress_mb_s_per_core;
	double decompress_mb_s_per_core;
	double pipeline_mb_s;		/* every worker: the producer reading
					 * (warm), hashing, compressing and
					 * sealing frames */
};
/* What the automatic level would take over a link of link_bps. */
struct fr_bench_auto {
	double link_bps;		/* bits per second */
	int level;
	double predicted_mb_s;		/* raw bytes moved per second */
};
struct fr_bench_pipe {
	char name[FR_NAME_MAX + 1];
	uint64_t bytes;			/* the package's */
	uint32_t files, segments, seg_size;
	uint32_t left_out;		/* entries a send would leave out */
	uint64_t sample_bytes;		/* held in memory for the levels */
	uint32_t sample_segments;
	uint64_t read_bytes;		/* read to time the source */
	double read_mb_s;
	bool cold;			/* its page cache was dropped first */
	double cached_share;		/* of it cached when the read began
					 * (-1: unknown) */
	int workers;
	double hash_mb_s_per_core, hash_mb_s;	/* one core; every worker */
	const char *aead;
	double seal_mb_s_per_core;
	unsigned n_levels;
	struct fr_bench_level levels[FR_BENCH_LEVELS];
	unsigned n_auto;
	struct fr_bench_auto autos[8];
};
struct fr_bench_pipe_opts {
	const char *path;
	int level;		/* -1: the levels the automatic choice weighs,
				 * -3: 1..19, else that level (0..19) */
	/* a stage begins (frac 0) or moves on; NULL: none */
	void (*progress)(const char *stage, double frac, void *arg);
	void *arg;
};
/* Measure the sender's data path on the package at path, without a
 * network. 0 or a code (logged). c may be NULL: the defaults. */
int fr_bench_pipeline(const struct fr_config *c,
		      const struct fr_bench_pipe_opts *o,
		      struct fr_bench_pipe *r);

/* ---- measuring a link (sched/bench.c, out/probe.c, recv/bench.c) ------- */

/*
 * `ferry bench link`: one address to a site measured memory to memory
 * through the `ferry serve` there. The receiver of the bytes counts them
 * per interval of FR_BENCH_INTERVAL_S from its first byte (the receiver
 * is the site, or this machine with reverse); the first `omit` seconds
 * (slow start) are left out of the totals; the sender's TCP_INFO gives
 * the round-trip time and the retransmissions.
 */
#define FR_BENCH_STREAMS_MAX 16
#define FR_BENCH_SECONDS_MAX 60
#define FR_BENCH_IV_MAX 64 /* intervals a stream may report */
#define FR_BENCH_INTERVAL_S 1.0
struct fr_bench_interval {
	double start, end;       /* s from the receiver's first byte */
	uint64_t bytes;          /* counted by the receiver in it */
	double bits_per_second;  /* bytes * 8 / (end - start) */
	bool omitted;            /* in the warm-up (ends at or before omit) */
};
struct fr_bench_stream {
	struct fr_bench_interval iv[FR_BENCH_IV_MAX];
	unsigned n_iv;
	uint64_t bytes;          /* after the warm-up */
	double seconds;          /* ... and over how long */
	double received_bps;     /* bytes * 8 / seconds */
	double rtt_min_ms, rtt_avg_ms; /* the sender's TCP; < 0 unknown */
	uint64_t retransmits;    /* the sender's TCP, while it sent */
	bool capped;             /* the receiver's byte cap ended it early */
};
/* Progress while it runs, from the thread that called fr_bench_link,
 * about 4 times a second: what the sender's TCP has had acknowledged
 * (forward) or what arrived here (reverse), all streams together. */
struct fr_bench_progress {
	double elapsed, seconds; /* s since the streams began; asked */
	uint64_t bytes;
	double bps;              /* over the last report's span */
	const char *phase;       /* "dialling", "connecting", "measuring" */
};
struct fr_bench_opts {
	const char *site;
	const char *via;         /* address name, or NULL: the first network one */
	unsigned seconds;        /* 1..FR_BENCH_SECONDS_MAX */
	unsigned streams;        /* 1..FR_BENCH_STREAMS_MAX */
	unsigned omit;           /* < seconds */
	bool reverse;            /* the site sends, this machine counts */
	bool store;              /* keep the result as the address's rate */
	void (*progress)(void *arg, const struct fr_bench_progress *p);
	void *progress_arg;
};
struct fr_bench_result {
	char site[FR_CODE_MAX + 1];
	char address[64];
	const char *type;        /* "lan", "async", ... */
	char host[256];
	unsigned seconds, omit, streams;
	bool reverse;
	uint32_t frame;          /* bytes per filler message */
	bool dialled, hung_up;   /* a RAS line: dialled here, hung up after */
	struct fr_bench_stream st[FR_BENCH_STREAMS_MAX];
	struct fr_bench_interval sum[FR_BENCH_IV_MAX]; /* streams added */
	unsigned n_sum;
	double received_bps;     /* every stream's, added: the result */
	uint64_t received_bytes; /* after the warm-up, all streams */
	double rtt_min_ms, rtt_avg_ms; /* over the streams; < 0 unknown */
	uint64_t retransmits;
	bool stored;             /* kept as the address's measured rate */
	int64_t stored_at;       /* then when (Unix time) */
	char not_stored[160];    /* else why not */
};
/*
 * Measure: choose the address (o->via, else the site's first network
 * address), dial it when it is a RAS line, run the streams, hang up,
 * store the rate (bytes/s, links.c) unless !o->store or reverse. 0, or
 * FR_E_CONFIG (unknown site, no network address, --via naming none or a
 * courier), FR_E_AUTH (the account refused), FR_E_PROTOCOL (an older
 * receiver), another code (unreachable, cut); logged, naming the address.
 */
int fr_bench_link(const struct fr_config *c, const struct fr_bench_opts *o,
		  struct fr_bench_result *r);

/* ---- courier parcels (out/parcel.c; the import: recv/import.c) --------- */

#define FR_PARCEL_MEDIA_MAX 64
/* A parcel being written, as its progress line shows it. */
struct fr_parcel_progress {
	uint32_t written;     /* frames written */
	uint32_t segments;    /* of this many (once the site's holdings are
			       * known: those it lacks) */
	double mb_s;          /* raw MB (10^6) per second since the start */
	int level;            /* the last frame's zstd level */
	uint32_t volume;      /* the volume being written, from 1 */
};
struct fr_parcel_opts {
	const char *path;     /* file or directory */
	const char *site;     /* destination */
	const char *name;     /* package name (default: basename) */
	const char *via;      /* courier address name, or NULL: the first */
	const char *media[FR_PARCEL_MEDIA_MAX]; /* directories, filled in order */
	unsigned n_media;     /* 0: the address's media */
	uint64_t volume_size; /* 0: fill each medium */
	int level;            /* -2 config, -1 auto (follows the medium), 0..19 */
	/* about four times a second while frames are written (NULL: not
	 * wanted); progress_end once they stop */
	void (*progress)(void *arg, const struct fr_parcel_progress *p);
	void (*progress_end)(void *arg);
	void *progress_arg;
	/* once every segment is hashed (NULL: not wanted): a send whose
	 * parcel this is takes the hashes, not to read its tail again */
	void (*hashed)(void *arg, const struct fr_manifest *m);
	void *hashed_arg;
	bool json;
	bool skip_special;    /* what is left out does not make it fail */
	uint32_t first;       /* a send's courier: segments from this one on */
	bool quiet;           /* no report on stdout: one line logged */
	bool whole;           /* kept only with every segment written (a
			       * send's courier: else the network carries
			       * them all); else a full medium keeps what
			       * it holds */
};
struct fr_parcel_made;
/* Write a parcel of the segments SITE does not hold onto the media; made
 * (NULL: not wanted) says what was written (fr_parcel_made_fini it). */
int fr_parcel_create(const struct fr_config *c, const struct fr_parcel_opts *o,
		     struct fr_parcel_made *made);
/* A parcel made here, as its record at the source says. */
struct fr_parcel_info {
	char id[33];			/* hex of the parcel id */
	char name[FR_NAME_MAX + 1];
	char site[FR_CODE_MAX + 1];
	char state[16];			/* created, shipped, received,
					 * not-needed */
	char address[64];		/* the courier address it goes by */
	bool registered;		/* with the site */
	uint32_t volumes, segments, n_segments;
	uint32_t first;			/* a send's parcel: its tail's first
					 * segment (0: the whole package) */
	uint32_t left_out;		/* segments that did not fit */
	uint64_t bytes;			/* on the media */
	int64_t created, shipped, received; /* Unix s, 0: not yet */
};
/* A parcel just written (fr_parcel_create). */
struct fr_parcel_made {
	bool kept;			/* a parcel was written and kept */
	struct fr_parcel_info p;
	uint64_t raw_bytes;		/* the segments' bytes */
	double seconds;
	char **paths;			/* its volumes */
	uint32_t n_paths;
	struct fr_left_list left;	/* what the walk left out */
};
void fr_parcel_made_fini(struct fr_parcel_made *m);
/* A parcel (its full hex id) the site no longer needs: the network
 * brought its package before any of it was imported. Marked not-needed
 * if it was created or shipped. */
int fr_parcel_not_needed(const struct fr_config *c, const char *id);
/* The record of parcel ID (its whole hex id), as `parcel list --offline`
 * would show it: -ENOENT when there is none. */
int fr_parcel_find(const struct fr_config *c, const char *id,
		   struct fr_parcel_info *out);
/* Parcels created here (*out malloc'd, *n of them); registers and asks
 * for receipts unless offline. */
int fr_parcel_list(const struct fr_config *c, bool offline,
		   struct fr_parcel_info **out, uint32_t *n);
/* Mark a parcel (by id prefix) handed to the courier: which one in
 * *out; *already when it was marked before. */
int fr_parcel_ship(const struct fr_config *c, const char *which,
		   struct fr_parcel_info *out, bool *already);
/* What `parcel import` did with one parcel whose volumes were given. */
struct fr_import_parcel {
	char id[33];			/* hex of the parcel id */
	char name[FR_NAME_MAX + 1];	/* its package */
	bool already_complete;		/* complete here before: nothing
					 * imported */
	bool superseded;		/* a newer version of its package is
					 * in place: nothing imported */
	int64_t placed;			/* that version's, unix seconds */
	int64_t made;			/* the parcel's creation */
	uint32_t imported, held;	/* segments written, held already */
	uint32_t refused;		/* segments that failed their check */
	uint32_t damaged;		/* volumes that ended early */
	bool complete;			/* the package is complete now */
	uint32_t n_have, n_segments;	/* segments held, of the package's */
	/* what is still missing (complete: nothing) */
	char missing_volumes[1024];	/* "vol-002.fpv, vol-005.fpv" */
	bool last_volume_seen;		/* else any after the highest seen */
	char missing_segments[2048];	/* of the parcel: "3,7-9" */
	uint32_t n_missing;		/* their number */
	uint32_t not_in_parcel;		/* missing, and the network's */
};
/* A volume refused whole: not a volume, older, or for another site. */
struct fr_import_refused {
	char path[FR_PATH_MAX + 1];
	char why[256];
};
struct fr_import_result {
	struct fr_import_parcel *parcels;
	unsigned n_parcels;
	struct fr_import_refused *refused;
	unsigned n_refused;
	int error;			/* the first error, or 0 */
	char message[1024];		/* and what it said */
};
void fr_import_result_fini(struct fr_import_result *r);
/* Verify and import the volumes found in paths (files or directories),
 * by the receiver running here if there is one: what was done in *out
 * (fini it), even when it fails. */
int fr_parcel_import(const struct fr_config *c, const char *const *paths,
		     unsigned n_paths, struct fr_import_result *out);

/* ---- receiving --------------------------------------------------------- */

/* Serve until SIGINT/SIGTERM. */
int fr_serve(const struct fr_config *c);

/* ---- housekeeping (prune.c) ---------------------------------------------- */

/* A partial package or a transfer record that prune removed (or would,
 * or kept because it is in use), or that forget removed. */
struct fr_prune_entry {
	bool transfer;			/* a sender's record; else a partial
					 * package at the receiver */
	char id[64];			/* the transfer's, or the package's (hex) */
	char name[FR_NAME_MAX + 1];
	char site[FR_CODE_MAX + 1];	/* transfer: its site; partial: from */
	char state[16];			/* transfer: as status shows it */
	uint32_t segments, segments_done; /* partial */
	uint64_t bytes;			/* partial: the package's */
	int64_t last;			/* last activity (Unix s; -1: unknown) */
	const char *kept;		/* NULL: removed; else why it stays */
};
struct fr_prune_result {
	double older_than_s;
	bool dry_run;
	int64_t now;
	struct fr_prune_entry *v;	/* in the order found */
	unsigned n, cap;
	unsigned n_partials, n_transfers, n_busy; /* removed; kept */
	uint64_t bytes;			/* of the partials removed */
};
/*
 * Remove what nobody will finish, on whichever side c's store is: partial
 * packages (receiver) and transfer records (sender, done or not) with no
 * activity for more than older_than_s seconds, except those a session or
 * a send is working on. dry_run: only find what would go. r lists each
 * (fr_prune_result_fini it); 0, or the first removal that failed.
 */
int fr_prune(const struct fr_config *c, double older_than_s, bool dry_run,
	     struct fr_prune_result *r);
void fr_prune_result_fini(struct fr_prune_result *r);
/* Remove one transfer record (by id or package name), unless it runs:
 * what it was in *out. */
int fr_forget(const struct fr_config *c, const char *transfer,
	      struct fr_prune_entry *out);

/* ---- inspection -------------------------------------------------------- */

/*
 * What `ferry status` shows (sched/status.c reads it from the store;
 * tools/ prints it): outgoing transfers, each with its outputs, and
 * incoming packages. Read-only: no lock is taken, nothing is written.
 */
#define FR_STATUS_OUTPUTS 16
struct fr_status_output {
	char name[64];
	char type[16];    /* lan, async, isdn, x25, sna ("" unknown) */
	/* starting, dialling, sending, closed (its window), redialling,
	 * done, failed, interrupted (its sender is gone) */
	char state[16];
	/* why it carries nothing now: "" (it carries, or it is done), idle
	 * (nothing is given to it), starting, dialling, closed, redialling,
	 * courier (waiting for the courier), failed, interrupted */
	char why[16];
	uint32_t segments; /* acknowledged first by it */
	uint64_t bytes;    /* their bytes */
	uint32_t carrying; /* segments it carries now */
	double rate;       /* what it moves now, bytes/s (0 when idle) */
	double estimate;   /* the rate the assignment counts on, bytes/s */
	char rate_src[16]; /* where that came from: configured, learned... */
	double eta;        /* seconds until what it carries lands; < 0 none */
	char error[800];   /* failed or redialling: what went wrong */
};
struct fr_status_transfer {
	char id[64];
	char name[FR_NAME_MAX + 1];
	char site[FR_CODE_MAX + 1];
	int priority;     /* enum fr_priority */
	char state[16];   /* sending, waiting, done, failed, interrupted,
			   * incomplete */
	uint64_t bytes, bytes_done, wire_bytes;
	uint32_t segments, segments_done;
	double rate;      /* bytes/s of package data */
	double eta;       /* seconds; < 0 unknown or not sending */
	int level;
	bool level_auto;
	char output[96];  /* one output's name, or "N links: a+b" */
	char error[800];  /* the last error, "" none */
	uint32_t n_left_out;
	struct fr_status_output outputs[FR_STATUS_OUTPUTS];
	unsigned n_outputs;
};
struct fr_status_package {
	char name[FR_NAME_MAX + 1];
	char from[64];     /* the account that offered it ("" complete) */
	char state[16];    /* partial, repairing, complete */
	uint64_t bytes;
	uint32_t segments, segments_done;
	int64_t created, last_activity; /* unix seconds, < 0 unknown */
};
struct fr_status {
	struct fr_status_transfer *out;
	unsigned n_out;
	struct fr_status_package *in;
	unsigned n_in;
	int64_t now; /* when it was read */
};
/* Everything, or what `which` (a transfer id or a package name) names:
 * -ENOENT, logged, when that is nothing. */
int fr_status_load(const struct fr_config *c, const char *which,
		   struct fr_status *s);
void fr_status_fini(struct fr_status *s); /* idempotent; safe zeroed */

/* ---- verify (store/verify.c) --------------------------------------------- */

/* One difference between a received tree and its manifest. */
struct fr_verify_diff {
	const char *kind;	/* missing, extra, type, size, mode, mtime,
				 * link, content */
	char *path;		/* as in the package */
	char *message;		/* the sentence that says it */
	char *got, *want;	/* its values ("" when it has none) */
	bool content;		/* a segment's bytes: segment, files */
	uint32_t segment, files;
};
struct fr_verify_result {
	bool checked;		/* the tree was read (else rc says why not) */
	uint32_t entries, segments, bad_segments;
	uint64_t bytes;
	double seconds;
	char *gravest;		/* the gravest difference's message, or NULL */
	struct fr_verify_diff *diffs;
	uint32_t n_diffs;
	/* --repair */
	bool repair;		/* asked for, and it ran */
	int repair_rc;
	bool nothing;		/* the package was intact */
	bool refused;		/* a type difference: nothing changed */
	bool forgotten;		/* the package directory was gone */
	uint32_t marked;	/* segments marked missing ... */
	uint64_t marked_bytes;	/* ... and their bytes */
	bool restored;		/* modes, times, links put back */
	uint32_t extra_left;	/* entries not in the package, left */
	char repair_err[9000];
	bool intact_after;	/* differences, all put right here */
};
/* Check the received package name against its manifest; with repair,
 * then put right what can be (`ferry verify --repair`). 0 when it is
 * intact (after the repair), FR_E_HASH_MISMATCH or FR_E_INCOMPLETE when
 * not, another code (logged) when it could not be checked. r says what
 * was found (fr_verify_result_fini it). */
int fr_verify(const struct fr_config *c, const char *name, bool repair,
	      struct fr_verify_result *r);
void fr_verify_result_fini(struct fr_verify_result *r);

#endif
