/*
 * status.c - `ferry status`: a read-only view of the store (`ferry
 * verify` is verify.c). Status reads what running senders and receivers
 * leave on disk (outgoing transfers' progress and their outputs' lines,
 * incoming partial packages' journals, complete packages' manifests); it
 * never takes a lock and never writes. What it finds is handed to tools/
 * as struct fr_status, which prints it.
 *
 * A sender killed mid-way leaves its files as they were: a state that
 * says it is under way, written by a process that is gone, is shown as
 * interrupted, for the transfer and for each of its outputs.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sched/fr_sched.h"

/* segments journaled in a partial package, without taking its lock */
static uint32_t journal_count(const char *dir, const struct fr_manifest *m)
{
	char path[1400];
	uint8_t *buf;
	size_t len;
	uint32_t n = 0;

	if (fr_path_fmt(path, sizeof(path), "%s/journal", dir) ||
	    fr_read_file(path,
			 (size_t)FR_JOURNAL_HDR +
			     (size_t)m->n_segments * FR_JREC_LEN * 4,
			 &buf, &len) < 0)
		return 0;
	uint8_t *seen = calloc(m->n_segments + 1, 1);
	for (size_t off = FR_JOURNAL_HDR; seen && off + FR_JREC_LEN <= len;
	     off += FR_JREC_LEN) {
		uint32_t idx;
		uint8_t h[FR_HASH_LEN];
		if (fr_jrec_unpack(buf + off, &idx, h) < 0)
			break;
		/* an open manifest (the sender had not hashed it when it
		 * offered): the frame's own hash was journaled */
		if (idx < m->n_segments && !seen[idx] &&
		    (fr_hash_unknown(m->segments[idx].hash) ||
		     !memcmp(h, m->segments[idx].hash, FR_HASH_LEN))) {
			seen[idx] = 1;
			n++;
		}
	}
	free(seen);
	free(buf);
	return n;
}

/* Room for one more element of *v (n used, *cap allocated). */
static int grow(void **v, unsigned n, unsigned *cap, size_t size)
{
	if (n < *cap)
		return 0;
	unsigned nc = *cap ? *cap * 2 : 8;
	void *p = realloc(*v, (size_t)nc * size);
	if (!p)
		return -ENOMEM;
	memset((char *)p + (size_t)*cap * size, 0, (size_t)(nc - *cap) * size);
	*v = p;
	*cap = nc;
	return 0;
}

/* ---- outgoing: a transfer's outputs -------------------------------------- */

void fr_outputs_field(const char *line, const char *key, bool rest,
		      char *out, size_t cap)
{
	size_t kl = strlen(key);
	const char *p = line;

	out[0] = '\0';
	for (; p; p = strchr(p, ' ')) {
		if (*p == ' ')
			p++;
		if (!strncmp(p, key, kl) && p[kl] == '=')
			break;
	}
	if (!p)
		return;
	p += kl + 1;
	size_t n = rest ? strlen(p) : strcspn(p, " ");
	snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
}

static double field_num(const char *line, const char *key)
{
	char v[64];

	fr_outputs_field(line, key, false, v, sizeof(v));
	return strtod(v, NULL);
}

/* A state that says its output is under way. */
static bool under_way(const char *state)
{
	return strcmp(state, "done") && strcmp(state, "failed") &&
	       strcmp(state, "interrupted");
}

/* One line of <transfer>/outputs; stale (its sender is gone): what was
 * under way is interrupted. */
static void output_parse(const char *line, long pid, struct fr_status_output *o)
{
	char v[64];

	fr_outputs_field(line, "output", false, o->name, sizeof(o->name));
	fr_outputs_field(line, "type", false, o->type, sizeof(o->type));
	fr_outputs_field(line, "state", false, o->state, sizeof(o->state));
	fr_outputs_field(line, "why", false, o->why, sizeof(o->why));
	fr_outputs_field(line, "rate_src", false, o->rate_src, sizeof(o->rate_src));
	fr_outputs_field(line, "error", true, o->error, sizeof(o->error));
	o->segments = (uint32_t)field_num(line, "segs");
	fr_outputs_field(line, "bytes", false, v, sizeof(v));
	o->bytes = strtoull(v, NULL, 10);
	o->carrying = (uint32_t)field_num(line, "carrying");
	o->estimate = field_num(line, "rate");
	o->rate = field_num(line, "current");
	o->eta = field_num(line, "eta");
	if (!strcmp(o->why, "-") || !strcmp(o->why, "done"))
		o->why[0] = '\0';
	fr_outputs_field(line, "pid", false, v, sizeof(v));
	if (v[0])
		pid = strtol(v, NULL, 10);
	/* a courier's: when its parcel is expected in, while its sender
	 * runs to say so */
	bool parcel = !strcmp(o->state, "writing") ||
		      (!strcmp(o->state, "shipping") && fr_pid_alive(pid));
	if ((strcmp(o->state, "sending") || !o->carrying) && !parcel)
		o->eta = -1;
	/* (a parcel written is on its way whoever sent it) */
	if (under_way(o->state) && !fr_pid_alive(pid) &&
	    strcmp(o->state, "shipping")) {
		snprintf(o->state, sizeof(o->state), "interrupted");
		snprintf(o->why, sizeof(o->why), "interrupted");
		o->carrying = 0;
		o->rate = 0;
		o->eta = -1;
	}
}

/* A striped send's outputs, from <transfer>/outputs: false if none. */
static bool outputs_load(const char *dir, long pid,
			 struct fr_status_transfer *st)
{
	char path[1400];
	uint8_t *text;
	size_t len;

	if (fr_path_fmt(path, sizeof(path), "%s/outputs", dir) ||
	    fr_read_file(path, (size_t)FR_STATUS_OUTPUTS * 2048, &text, &len) <
		0)
		return false;
	for (char *line = (char *)text, *nl; *line; line = nl + 1) {
		if (!(nl = strchr(line, '\n')))
			break;
		*nl = '\0';
		if (strncmp(line, "output=", 7) ||
		    st->n_outputs >= FR_STATUS_OUTPUTS)
			continue;
		output_parse(line, pid, &st->outputs[st->n_outputs++]);
	}
	free(text);
	return st->n_outputs > 0;
}

/* A send over one output: its line from the progress ("NAME" or "NAME
 * (type)"), in the transfer's state. */
static void output_single(const struct fr_status_transfer *st,
			  const struct fr_progress *p,
			  struct fr_status_output *o)
{
	const char *paren = strstr(p->output, " (");
	int len =
	    (int)(paren ? (size_t)(paren - p->output) : strlen(p->output));
	const char *s = st->state;
	bool schedule = !strncmp(p->error, "schedule:", 9);
	const char *state = p->phase[0] && (!strcmp(s, "sending") ||
					     !strcmp(s, "waiting"))
				? p->phase
			    : !strcmp(s, "waiting")
				? (schedule ? "closed" : "redialling")
			    : !strcmp(s, "incomplete") ? "done"
						       : s;

	snprintf(o->name, sizeof(o->name), "%.*s", len, p->output);
	if (paren)
		snprintf(o->type, sizeof(o->type), "%.*s",
			 (int)strcspn(paren + 2, ")"), paren + 2);
	else
		snprintf(o->type, sizeof(o->type), "%.*s", len, p->output);
	snprintf(o->state, sizeof(o->state), "%s", state);
	if (strcmp(state, "sending") && strcmp(state, "done"))
		snprintf(o->why, sizeof(o->why), "%s", state);
	if (!strcmp(o->state, "failed") || !strcmp(o->state, "redialling"))
		snprintf(o->error, sizeof(o->error), "%s", p->error);
	/* what it carried: not what the site held already */
	o->segments = st->segments_done > p->segs_held
			      ? st->segments_done - p->segs_held
			      : 0;
	o->bytes = st->bytes_done > p->held_bytes ? st->bytes_done - p->held_bytes
						  : 0;
	/* no assignment: its own measure is all there is */
	o->rate = !strcmp(o->state, "sending") ? p->rate : 0;
	o->eta = !strcmp(o->state, "sending") && p->eta >= 0 ? p->eta : -1;
}

/* ---- outgoing: transfers ------------------------------------------------- */

const char *fr_transfer_state_shown(const struct fr_transfer *t,
				    const struct fr_progress *p)
{
	const char *state = p->state[0] ? p->state : t->state;

	/* a send over one RAS output whose line another transfer holds */
	if (!strcmp(state, "sending") && !strcmp(p->phase, "waiting"))
		state = "waiting";
	/* a sender killed mid-way leaves "sending" behind */
	if ((!strcmp(state, "sending") || !strcmp(state, "waiting")) &&
	    !fr_pid_alive(p->pid))
		state = "interrupted";
	/* sent, but something of the source was left out (exit 6) */
	if (!strcmp(state, "done") && t->left_out && !t->skip_special)
		state = "incomplete";
	return state;
}

static void transfer_fill(const struct fr_transfer *t,
			  const struct fr_progress *p,
			  struct fr_status_transfer *st)
{
	const char *state = fr_transfer_state_shown(t, p);
	snprintf(st->id, sizeof(st->id), "%s", t->id);
	snprintf(st->name, sizeof(st->name), "%s", t->name);
	snprintf(st->site, sizeof(st->site), "%s", t->site);
	snprintf(st->state, sizeof(st->state), "%s", state);
	snprintf(st->output, sizeof(st->output), "%s", p->output);
	snprintf(st->error, sizeof(st->error), "%s", p->error);
	st->priority = t->priority;
	st->bytes = p->total_bytes;
	st->bytes_done = p->done_bytes;
	st->wire_bytes = p->wire_bytes;
	st->segments = p->n_segments;
	st->segments_done = p->segs_done;
	st->rate = p->rate;
	st->eta = !strcmp(state, "sending") && p->eta >= 0 ? p->eta : -1;
	st->level_auto = t->level < 0;
	st->level = t->level < 0 ? p->level : t->level;
	st->n_left_out = t->left_out;
}

static int outgoing(const struct fr_config *c, const char *which,
		    struct fr_status *s)
{
	char dir[1200];
	DIR *d;
	struct dirent *de;
	unsigned cap = 0;
	int rc = 0;

	fr_path_fmt(dir, sizeof(dir), "%s/outgoing", c->store);
	if (!(d = opendir(dir)))
		return 0;
	while (rc == 0 && (de = readdir(d))) {
		char sub[1300];
		struct fr_transfer t;
		struct fr_progress p;
		if (de->d_name[0] == '.' ||
		    fr_path_fmt(sub, sizeof(sub), "%s/%s", dir, de->d_name) ||
		    fr_transfer_load(sub, &t) < 0)
			continue;
		if (which && strcmp(which, t.id) && strcmp(which, t.name))
			continue;
		if ((rc = grow((void **)&s->out, s->n_out, &cap,
			       sizeof(*s->out))) < 0)
			break;
		struct fr_status_transfer *st = &s->out[s->n_out++];
		fr_progress_load(sub, &p);
		transfer_fill(&t, &p, st);
		/* "2 links: a+b" with no outputs file: from an older ferry */
		if (!outputs_load(sub, p.pid, st) && p.output[0] &&
		    !strstr(p.output, " links: ") && !strstr(p.output, " link: "))
			output_single(st, &p, &st->outputs[st->n_outputs++]);
	}
	closedir(d);
	return rc;
}

/* ---- incoming ------------------------------------------------------------ */

static struct fr_status_package *package_add(struct fr_status *s, unsigned *cap)
{
	if (grow((void **)&s->in, s->n_in, cap, sizeof(*s->in)) < 0)
		return NULL;
	struct fr_status_package *k = &s->in[s->n_in++];
	k->created = k->last_activity = -1;
	return k;
}

/* A partial package: what its journal holds, who offered it, when. */
static void partial_fill(const char *sub, const struct fr_manifest *m,
			 struct fr_status_package *k)
{
	char path[1400];
	uint8_t *fb;
	size_t fl;

	snprintf(k->name, sizeof(k->name), "%s", m->name);
	snprintf(k->from, sizeof(k->from), "?");
	fr_path_fmt(path, sizeof(path), "%s/from", sub);
	if (fr_read_file(path, 63, &fb, &fl) == 0) {
		snprintf(k->from, sizeof(k->from), "%s", (char *)fb);
		free(fb);
	}
	/* a complete package that verify --repair marked, waiting for its
	 * damaged segments */
	fr_path_fmt(path, sizeof(path), "%s/repair", sub);
	snprintf(k->state, sizeof(k->state), "%s",
		 access(path, F_OK) == 0 ? "repairing" : "partial");
	k->bytes = m->total_size;
	k->segments = m->n_segments;
	k->segments_done = journal_count(sub, m);
	fr_partial_times(sub, &k->created, &k->last_activity);
}

/* A package listed (from its partial) as repairing: verify --repair
 * found it damaged; it is not complete until its segments are in. */
static bool repairing(const struct fr_status *s, const char *name)
{
	for (unsigned i = 0; i < s->n_in; i++)
		if (!strcmp(s->in[i].name, name) &&
		    !strcmp(s->in[i].state, "repairing"))
			return true;
	return false;
}

/* <store>/partial (part == true) or <store>/manifests. */
static int incoming(const struct fr_config *c, const char *which, bool part,
		    struct fr_status *s, unsigned *cap)
{
	char dir[1200];
	DIR *d;
	struct dirent *de;
	int rc = 0;

	fr_path_fmt(dir, sizeof(dir), "%s/%s", c->store,
		    part ? "partial" : "manifests");
	if (!(d = opendir(dir)))
		return 0;
	while (rc == 0 && (de = readdir(d))) {
		char sub[1300], mp[1400];
		struct fr_manifest m = {0};
		struct fr_status_package *k;
		if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp.") ||
		    fr_path_fmt(sub, sizeof(sub), "%s/%s", dir, de->d_name) ||
		    fr_path_fmt(mp, sizeof(mp), part ? "%s/manifest" : "%s",
				sub) ||
		    fr_manifest_load(mp, &m) < 0)
			continue;
		if ((which && strcmp(which, m.name)) ||
		    (!part && repairing(s, m.name))) {
			fr_manifest_fini(&m);
			continue;
		}
		if (!(k = package_add(s, cap))) {
			rc = -ENOMEM;
		} else if (part) {
			partial_fill(sub, &m, k);
		} else {
			snprintf(k->name, sizeof(k->name), "%s", m.name);
			snprintf(k->state, sizeof(k->state), "complete");
			k->bytes = m.total_size;
			k->segments = k->segments_done = m.n_segments;
		}
		fr_manifest_fini(&m);
	}
	closedir(d);
	return rc;
}

int fr_status_load(const struct fr_config *c, const char *which,
		   struct fr_status *s)
{
	unsigned cap = 0;
	int rc;

	memset(s, 0, sizeof(*s));
	s->now = (int64_t)time(NULL);
	if ((rc = outgoing(c, which, s)) < 0 ||
	    (rc = incoming(c, which, true, s, &cap)) < 0 ||
	    (rc = incoming(c, which, false, s, &cap)) < 0) {
		fr_status_fini(s);
		return rc;
	}
	if (which && !s->n_out && !s->n_in) {
		fr_log(
		    FR_LOG_ERROR,
		    "no transfer or package '%s' in store '%s' (ferry status "
		    "lists them all)",
		    which, c->store);
		return -ENOENT;
	}
	return 0;
}

void fr_status_fini(struct fr_status *s)
{
	free(s->out);
	free(s->in);
	s->out = NULL;
	s->in = NULL;
	s->n_out = s->n_in = 0;
}
