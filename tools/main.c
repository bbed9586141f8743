/*
 * main.c - the `ferry` command line: subcommands in the style of git,
 * each with --help. Parsing and presentation live here; the work is the
 * engine's. Exit codes: 0 success, 1 the operation failed (a transfer
 * stays resumable), 2 usage, 3 configuration, 4 authentication refused,
 * 5 verification found a difference, 6 the package was sent (or the
 * parcel made) but is incomplete: something of the source was left out
 * (a fifo, socket, device, or symlink leading out), unless --skip-special;
 * 128 + the signal when SIGINT or SIGTERM stopped a send or resume.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fr_engine.h"
#include "fr_tools.h"

/* the config read when neither --config nor FERRY_CONFIG names one */
#ifndef FERRY_DEFAULT_CONFIG
#define FERRY_DEFAULT_CONFIG "/etc/ferry/ferry.conf"
#endif

enum {
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
	EXIT_CONFIG = 3,
	EXIT_AUTH = 4,
	EXIT_VERIFY = 5,
	EXIT_LEFT_OUT = 6
};

static const char *const usage_main =
	"usage: ferry <command> [options]\n"
	"\n"
	"Move large packages (files and trees) between sites, resumably.\n"
	"\n"
	"commands:\n"
	"  serve   --config F                  receive for this site\n"
	"  send    PATH --to SITE --config F   send a file or tree to a site\n"
	"  resume  [TRANSFER] --config F       continue interrupted sends\n"
	"  status  [TRANSFER] --config F       transfers, progress, rate, ETA\n"
	"  verify  NAME --config F             re-check a received package\n"
	"  prune   --older-than D --config F   remove what was abandoned\n"
	"  forget  TRANSFER --config F         drop one transfer record\n"
	"  parcel  create|list|ship|import     courier parcels on media\n"
	"  plan    PATH --to SITE --config F   what a send would do, and when it\n"
	"                                      would be done\n"
	"  bench   link SITE | pipeline PATH   measure a link to a site, or this\n"
	"                                      machine's data path\n"
	"  version                             print the version, the protocol and\n"
	"                                      volume format it speaks, its AEAD\n"
	"\n"
	"Run 'ferry <command> --help' for a command's options. The config\n"
	"may also be named by the FERRY_CONFIG environment variable; with\n"
	"neither, " FERRY_DEFAULT_CONFIG " is read.\n";

static const char *const usage_serve =
	"usage: ferry serve --config F [-v|-q]\n"
	"\n"
	"Receive packages for this site: listen on [site] listen, accept the\n"
	"accounts of the config, store into [site] store. Runs in the\n"
	"foreground and logs to stderr; stop it with Ctrl-C or SIGTERM.\n"
	"It checks at start that the store can be written (exit 3 if not).\n"
	"The config: --config F, else $FERRY_CONFIG, else\n"
	FERRY_DEFAULT_CONFIG ".\n";

static const char *const usage_send =
	"usage: ferry send PATH --to SITE --config F [options]\n"
	"\n"
	"Send a file or a directory tree to SITE. The package appears there\n"
	"as <store>/packages/NAME/ once every segment is verified. If the\n"
	"transfer is interrupted, 'ferry resume' (or the same send again)\n"
	"continues it, sending only what the site does not hold yet.\n"
	"Ctrl-C or SIGTERM stops it (exit 130 or 143), resumable.\n"
	"\n"
	"options:\n"
	"  --to SITE              destination site code (required)\n"
	"  --config F             this site's config file (default:\n"
	"                         $FERRY_CONFIG, else " FERRY_DEFAULT_CONFIG ")\n"
	"  --name N               package name (default: PATH's last part)\n"
	"  --priority P           high, medium or low (default: medium)\n"
	"  --via ADDR             use only the address named ADDR (with two or\n"
	"                         more network addresses, the default is all\n"
	"                         of them at once, by what each link carries)\n"
	"  --courier              also ship media: when a parcel would beat the\n"
	"                         network, the site's courier address writes\n"
	"                         the package's tail to its media at once and\n"
	"                         the network sends the front; the network goes\n"
	"                         on into the tail until the parcel is imported\n"
	"                         (--via auto: the same)\n"
	"  --level N|auto         compression: auto (follows the link), 0 for\n"
	"                         none, 1..19 zstd level (default: config)\n"
	"  --json                 print a JSON summary on stdout\n"
	"  --skip-special         what cannot be carried (fifos, sockets,\n"
	"                         devices, symlinks leading out of PATH) is\n"
	"                         left out and listed, but the exit is 0, not 6\n"
	"  --no-progress          no progress line even on a terminal\n"
	"  -q, --quiet            errors only;  -v, --verbose  more detail\n"
	"\n"
	"Every file, directory and symlink inside PATH is carried whatever\n"
	"its name; names are printed escaped (\\n, \\t, \\\\, \\xNN). What is\n"
	"left out is listed in the summary (on stderr even with -q) and in\n"
	"the JSON's \"left_out\", and the exit is 6 unless --skip-special.\n";

static const char *const usage_resume =
	"usage: ferry resume [TRANSFER] --config F [--json] [--no-progress]\n"
	"                    [--skip-special]\n"
	"\n"
	"Continue interrupted sends: one (by transfer id or package name) or\n"
	"all that are not done. Sends only the segments the destination does\n"
	"not already hold. A send made with --skip-special keeps it; exit 6\n"
	"when something was left out of the package (see 'send --help'). One summary line per\n"
	"transfer (--json: one document, {\"ok\": ..., \"transfers\": [...]}).\n";

static const char *const usage_status =
	"usage: ferry status [TRANSFER] --config F [--json]\n"
	"\n"
	"List outgoing transfers (state, progress, rate, ETA, compression\n"
	"level and output), each with a line per output (state, segments,\n"
	"bytes, rate, ETA, and why it is idle: closed window, dialling,\n"
	"redialling, failed, interrupted), and incoming packages (partial\n"
	"and complete); for a partial one, its age and its last activity.\n"
	"A TRANSFER (id or package name) that names nothing: exit 1.\n";

static const char *const usage_verify =
	"usage: ferry verify NAME --config F [--json] [--repair]\n"
	"\n"
	"Re-read the received package NAME and check every file, mode, mtime,\n"
	"link and segment hash against its manifest. Every difference is\n"
	"reported, one line each (--json: a list). Exit 5 on any difference.\n"
	"\n"
	"  --repair   mark the damaged segments (content, missing or cut\n"
	"             files) missing: the next 'ferry send' or 'ferry resume'\n"
	"             of the package carries exactly those, written in place\n"
	"             and verified again. Modes, times, links, directories\n"
	"             and empty files are put back from the manifest (at once,\n"
	"             or when the segments are in). Files the package does not\n"
	"             have are left for you to remove; a path of another type\n"
	"             (a directory where a file belongs) must be moved away\n"
	"             first. Exit 0 when the package is intact afterwards, 5\n"
	"             while it waits for segments or has extra files.\n";

static const char *const usage_prune =
	"usage: ferry prune --older-than DURATION --config F [--dry-run] [--json]\n"
	"\n"
	"Remove what nobody will finish, on whichever side the config's store\n"
	"is (a site is often both):\n"
	"  receiver: partial packages with no activity (no segment journaled,\n"
	"            no session taking them up) for longer than DURATION;\n"
	"  sender:   transfer records, done or abandoned, untouched for longer\n"
	"            than DURATION.\n"
	"A partial package a session is receiving, a package waiting for the\n"
	"segments 'verify --repair' marked, and a transfer that is running\n"
	"are never removed. A partial package replaced by a newer\n"
	"version of the same name goes by itself when that one completes.\n"
	"\n"
	"options:\n"
	"  --older-than DURATION  idle for longer than this: 30s, 90m, 12h, 7d\n"
	"                         (required)\n"
	"  --dry-run              list what would be removed; remove nothing\n"
	"  --json                 print the list as JSON on stdout\n";

static const char *const usage_forget =
	"usage: ferry forget TRANSFER --config F [--json]\n"
	"\n"
	"Drop one transfer record at this sender, by transfer id (or package\n"
	"name, when only one transfer has it): it leaves 'status' and is not\n"
	"resumed. A running transfer is refused. A partial package it left at\n"
	"the destination goes with the next 'ferry prune' there.\n";

static const char *const usage_parcel =
	"usage: ferry parcel create PATH --to SITE --config F [--media DIR]...\n"
	"                           [--volume-size SIZE] [options]\n"
	"       ferry parcel list --config F [--offline] [--json]\n"
	"       ferry parcel ship PARCEL --config F\n"
	"       ferry parcel import PATH... --config F [--json]\n"
	"\n"
	"Courier parcels: a package's segments written to physical media,\n"
	"shipped, and imported at the destination into the same store the\n"
	"network fills. The site needs a courier address and a network\n"
	"address in the config: the parcel is registered over the network\n"
	"(only segments the site does not hold go on the media) and its\n"
	"receipt comes back that way.\n"
	"\n"
	"create   write the parcel: volumes of --volume-size (700M, 4.7GB,\n"
	"         25GB: M, G are 1024-based, MB, GB 1000-based as media are\n"
	"         sold) or, without it, each medium filled before the next\n"
	"         --media DIR is used (default: the address's media). Each\n"
	"         volume is vol-NNN.fpv, sealed with the account's key, with\n"
	"         a packing list vol-NNN.txt (parcel, volume, size, sites) in\n"
	"         DIR/ferry-parcel-ID/. --level N|auto: compression (auto:\n"
	"         zstd level 3, stronger as far as a slow medium lets the\n"
	"         CPUs keep up). --name, --via, --skip-special, --json,\n"
	"         --no-progress as for send: what is left out is listed\n"
	"         (JSON: \"left_out_entries\"), exit 6 unless\n"
	"         --skip-special.\n"
	"list     parcels created here: created, shipped, received. Registers\n"
	"         parcels the site could not be told about, and asks it for\n"
	"         receipts (--offline: do not).\n"
	"ship     mark PARCEL handed to the courier: its id, or the first\n"
	"         characters of it if they name one parcel (several: the\n"
	"         error lists them). Exit 1 when none or several match.\n"
	"import   at the destination: verify every frame of the volumes found\n"
	"         in PATH (files, or directories searched for *.fpv) and store\n"
	"         the good segments; the package completes once every segment\n"
	"         is held, by parcel or network. Volumes may come one at a\n"
	"         time, in any order, twice. Exit 5 when a volume or segment\n"
	"         was refused (damaged, altered, wrong site).\n";

static const char *const usage_plan =
	"usage: ferry plan PATH --to SITE --config F [--priority P] [--via ADDR]\n"
	"                  [--name N] [--offline] [--json]\n"
	"\n"
	"Show what 'ferry send PATH --to SITE' would do, before anything is\n"
	"sent: what the site holds already, and per output (each network\n"
	"address the send would use) the segments and bytes it would carry,\n"
	"its rate and where that rate comes from (measured by an earlier\n"
	"send, configured bandwidth, line profile, default), and when it\n"
	"would be done; the package's ETA; and, when the site has a courier\n"
	"address with media and transit, whether shipping the tail of the\n"
	"package on media would beat the network, by how much, and where to\n"
	"split it. Schedules are followed: an address closed now starts\n"
	"when it opens.\n"
	"\n"
	"options:\n"
	"  --to SITE         destination site code (required)\n"
	"  --config F        this site's config file (default:\n"
	"                    $FERRY_CONFIG, else " FERRY_DEFAULT_CONFIG ")\n"
	"  --priority P      high, medium or low (default: medium): which\n"
	"                    schedule windows the send may use\n"
	"  --via ADDR        plan the send by the network address ADDR only\n"
	"                    (auto: every output, as without --via)\n"
	"  --name N          package name (default: PATH's last part)\n"
	"  --offline         do not ask the site what it holds (plan as if it\n"
	"                    held nothing); also when no LAN address answers\n"
	"                    within 5 s (a plan never dials a line)\n"
	"  --json            print the plan as one JSON object on stdout\n"
	"\n"
	"Asking the site opens a session that offers the package's listing\n"
	"(as a send does first) and closes it. Exit 0 with a plan, 1 when\n"
	"PATH cannot be read, 2 usage, 3 configuration (unknown site, no\n"
	"usable address, --via naming none).\n";

static const char *const usage_bench =
	"usage: ferry bench link SITE --config F [--via ADDR] [--seconds N]\n"
	"                   [--streams N] [--omit N] [--reverse] [--no-store]\n"
	"                   [--json]\n"
	"       ferry bench pipeline PATH [--config F] [--level auto|N|all]\n"
	"                   [--json]\n"
	"\n"
	"link: measure what one address to SITE carries, memory to memory,\n"
	"through the 'ferry serve' running there (authenticated like a send).\n"
	"Throughput per second and in total as the receiver counted it, the\n"
	"first --omit seconds (default 1) left out; round-trip time and\n"
	"retransmissions from TCP. A RAS address is dialled first and hung up\n"
	"after. The result is kept as the address's measured rate for the\n"
	"next send and 'ferry plan' (--no-store: not kept).\n"
	"\n"
	"  --via ADDR        the address to measure (default: the site's first\n"
	"                    network address)\n"
	"  --seconds N       how long to send (default 10, at most 60)\n"
	"  --streams N       parallel connections (default 1, at most 16)\n"
	"  --omit N          seconds of slow start left out (default 1)\n"
	"  --reverse         the site sends, this machine receives\n"
	"  --no-store        do not keep the result as the address's rate\n"
	"\n"
	"pipeline: run ferry's sender data path on PATH without a network:\n"
	"read the source (cold when the page cache can be dropped), XXH3,\n"
	"zstd compression and decompression at each level, sealing; per core\n"
	"and with every worker; the ratio at each level, and the level the\n"
	"automatic choice would take for a few link rates.\n"
	"\n"
	"  --level L         auto (default: the levels the automatic choice\n"
	"                    weighs), N (0..19), or all (1..19)\n"
	"\n"
	"  --json            one JSON document on stdout (fields: ferry(1))\n"
	"  --no-progress     no progress line even on a terminal\n";

#define MAX_POS 64
struct args {
	const char *config, *to, *name, *via, *positional;
	const char *pos[MAX_POS];
	int n_pos;
	const char *media[FR_PARCEL_MEDIA_MAX];
	unsigned n_media;
	uint64_t volume_size;
	bool offline;
	const char *older_than; /* prune */
	bool dry_run;
	bool repair;
	int priority, level;
	bool json, no_progress, help, skip_special, courier;
	int verbosity;
	unsigned seconds, streams, omit; /* bench link (0: default) */
	bool reverse, no_store;
};

static int show_usage(const char *usage)
{
	fputs(usage, stderr);
	return EXIT_USAGE;
}

static int die_usage(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int die_usage(const char *usage, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ferry: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	/* the synopsis, not the whole help: the error stays in sight */
	const char *end = strstr(usage, "\n\n");
	int n = end ? (int)(end - usage) + 1 : (int)strlen(usage);
	const char *cmd = strstr(usage, "usage: ferry ");
	fprintf(stderr, "%.*s", n, usage);
	if (cmd && end) {
		cmd += strlen("usage: ferry ");
		int cl = (int)strcspn(cmd, " \n");
		fprintf(stderr, "Run 'ferry %.*s --help' for its options.\n",
			cl, cmd);
	}
	return EXIT_USAGE;
}

static const struct option long_opts[] = {
    {"config", required_argument, 0, 'c'},
    {"to", required_argument, 0, 't'},
    {"name", required_argument, 0, 'n'},
    {"via", required_argument, 0, 'V'},
    {"priority", required_argument, 0, 'p'},
    {"level", required_argument, 0, 'l'},
    {"json", no_argument, 0, 'j'},
    {"no-progress", no_argument, 0, 'P'},
    {"quiet", no_argument, 0, 'q'},
    {"verbose", no_argument, 0, 'v'},
    {"help", no_argument, 0, 'h'},
    {"media", required_argument, 0, 'm'},
    {"volume-size", required_argument, 0, 'S'},
    {"offline", no_argument, 0, 'O'},
    {"skip-special", no_argument, 0, 'K'},
    {"older-than", required_argument, 0, 'A'},
    {"dry-run", no_argument, 0, 'D'},
    {"repair", no_argument, 0, 'R'},
    {"courier", no_argument, 0, 'C'},
    {"seconds", required_argument, 0, 's'},
    {"streams", required_argument, 0, 'N'},
    {"omit", required_argument, 0, 'o'},
    {"reverse", no_argument, 0, 'r'},
    {"no-store", no_argument, 0, 'X'},
    {0, 0, 0, 0}};

/* --name, --priority, --level: their values checked */
static int opt_checked(int ch, struct args *a, const char *usage)
{
	char *end, en[FR_ESC_MAX];
	long v;

	switch (ch) {
	case 'n':
		if (fr_name_check(optarg) < 0)
			return die_usage(usage,
					 "--name '%s' is not a valid package "
					 "name (1-255 bytes, no '/' or control "
					 "characters, not '.' or '..')",
					 fr_esc(optarg, en, sizeof(en)));
		a->name = optarg;
		return 0;
	case 'p':
		if (!strcmp(optarg, "high"))
			a->priority = FR_PRIO_HIGH;
		else if (!strcmp(optarg, "medium"))
			a->priority = FR_PRIO_MEDIUM;
		else if (!strcmp(optarg, "low"))
			a->priority = FR_PRIO_LOW;
		else
			return die_usage(usage,
					 "--priority '%s' must be high, medium "
					 "or low",
					 optarg);
		return 0;
	}
	/* --level */
	if (usage == usage_plan)
		return die_usage(usage, "unknown option '--level'");
	if (!strcmp(optarg, "auto")) {
		a->level = -1;
		return 0;
	}
	if (usage == usage_bench && !strcmp(optarg, "all")) {
		a->level = FERRY_LEVEL_ALL;
		return 0;
	}
	v = strtol(optarg, &end, 10);
	if (*end || end == optarg || v < 0 || v > 19)
		return die_usage(usage, "--level '%s' must be auto or 0..19",
				 optarg);
	a->level = (int)v;
	return 0;
}

/* parcel create's --media and --volume-size */
static int opt_parcel(int ch, struct args *a, const char *usage)
{
	if (usage != usage_parcel)
		return die_usage(usage, "unknown option '%s'",
				 ch == 'm' ? "--media" : "--volume-size");
	if (ch == 'm') {
		if (a->n_media == FR_PARCEL_MEDIA_MAX)
			return die_usage(usage, "at most %d --media",
					 FR_PARCEL_MEDIA_MAX);
		a->media[a->n_media++] = optarg;
		return 0;
	}
	if (fr_parse_size(optarg, &a->volume_size) < 0 ||
	    a->volume_size < (1u << 20))
		return die_usage(usage,
				 "--volume-size '%s' must be a size of at "
				 "least 1M (700M, 4.7GB, 25GB)",
				 optarg);
	return 0;
}

/* bench link's --seconds, --streams, --omit, --reverse, --no-store */
static int opt_bench(int ch, char **argv, struct args *a, const char *usage)
{
	char *end;

	if (usage != usage_bench)
		return die_usage(usage, "unknown option '%s'", argv[optind - 1]);
	if (ch == 'r' || ch == 'X') {
		if (ch == 'r')
			a->reverse = true;
		else
			a->no_store = true;
		return 0;
	}
	long v = strtol(optarg, &end, 10);
	long lo = ch == 'o' ? 0 : 1;
	long hi = ch == 's' ? 60 : ch == 'N' ? 16 : 30;
	if (*end || end == optarg || v < lo || v > hi)
		return die_usage(usage,
				 "%s '%s' must be a whole number from %ld to "
				 "%ld",
				 ch == 's'   ? "--seconds"
				 : ch == 'N' ? "--streams"
					     : "--omit",
				 optarg, lo, hi);
	if (ch == 's')
		a->seconds = (unsigned)v;
	else if (ch == 'N')
		a->streams = (unsigned)v;
	else
		a->omit = (unsigned)v + 1; /* 0: default */
	return 0;
}

/* The options only some commands take. */
static int opt_of_command(int ch, char **argv, struct args *a,
			  const char *usage)
{
	switch (ch) {
	case 'm':
	case 'S':
		return opt_parcel(ch, a, usage);
	case 'C':
		if (usage != usage_send)
			return die_usage(usage, "unknown option '--courier'");
		a->courier = true;
		return 0;
	case 'K':
		if (usage != usage_send && usage != usage_resume &&
		    usage != usage_parcel)
			return die_usage(usage,
					 "unknown option '--skip-special'");
		a->skip_special = true;
		return 0;
	case 'A':
	case 'D':
		if (usage != usage_prune)
			return die_usage(usage, "unknown option '%s'",
					 argv[optind - 1]);
		if (ch == 'A')
			a->older_than = optarg;
		else
			a->dry_run = true;
		return 0;
	case 'R':
		if (usage != usage_verify)
			return die_usage(usage, "unknown option '--repair'");
		a->repair = true;
		return 0;
	case 's':
	case 'N':
	case 'o':
	case 'r':
	case 'X':
		return opt_bench(ch, argv, a, usage);
	case ':':
		return die_usage(usage, "option '%s' needs a value",
				 argv[optind - 1]);
	default:
		return die_usage(usage, "unknown option '%s'", argv[optind - 1]);
	}
}

/* An option several commands take, given to one whose usage does not
 * name it (send --offline, status --priority): refused, not ignored. */
static bool not_ours(const char *usage, const char *opt)
{
	size_t n = strlen(opt);

	for (const char *p = strstr(usage, opt); p; p = strstr(p + 1, opt))
		if (!isalnum((unsigned char)p[n]) && p[n] != '-')
			return false;
	return true;
}

/* One option: those every command takes, or opt_of_command's. */
static int opt_one(int ch, char **argv, struct args *a, const char *usage)
{
	for (const struct option *o = long_opts; o->name; o++) {
		char name[40];
		if (o->val != ch || !strchr("tVnplPjO", ch))
			continue;
		snprintf(name, sizeof(name), "--%s", o->name);
		if (not_ours(usage, name))
			return die_usage(usage,
					 "option '%s' is not one of this "
					 "command's",
					 name);
	}
	switch (ch) {
	case 'c':
		a->config = optarg;
		return 0;
	case 't':
		a->to = optarg;
		return 0;
	case 'V':
		a->via = optarg;
		return 0;
	case 'n':
	case 'p':
	case 'l':
		return opt_checked(ch, a, usage);
	case 'j':
		a->json = true;
		return 0;
	case 'P':
		a->no_progress = true;
		return 0;
	case 'q':
		a->verbosity = FR_LOG_ERROR;
		return 0;
	case 'v':
		a->verbosity = FR_LOG_DEBUG;
		return 0;
	case 'h':
		a->help = true;
		return 0;
	case 'O':
		a->offline = true;
		return 0;
	}
	return opt_of_command(ch, argv, a, usage);
}

static int parse(int argc, char **argv, struct args *a, const char *usage)
{
	int ch, rc;

	memset(a, 0, sizeof(*a));
	a->priority = FR_PRIO_MEDIUM;
	a->level = -2;
	a->verbosity = FR_LOG_INFO;
	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:qvh", long_opts, NULL)) != -1)
		if ((rc = opt_one(ch, argv, a, usage)) != 0)
			return rc;
	while (optind < argc && a->n_pos < MAX_POS)
		a->pos[a->n_pos++] = argv[optind++];
	if (optind < argc)
		return die_usage(usage, "too many arguments");
	a->positional = a->n_pos ? a->pos[0] : NULL;
	if (a->n_pos > 1 && usage != usage_parcel && usage != usage_bench)
		return die_usage(usage, "unexpected argument '%s'", a->pos[1]);
	if (!a->config)
		a->config = getenv("FERRY_CONFIG");
	fr_log_verbosity = a->verbosity;
	return 0;
}

/* A progress line only on a terminal, and not when asked to be quiet. */
static bool show_progress(const struct args *a)
{
	return !a->no_progress && isatty(STDERR_FILENO) &&
	       a->verbosity >= FR_LOG_INFO;
}

static int exit_for(int rc)
{
	if (rc == 0)
		return 0;
	if (rc == -EINTR && fr_interrupted())
		return 128 + fr_interrupted();
	if (rc == FR_E_CONFIG)
		return EXIT_CONFIG;
	if (rc == FR_E_AUTH || rc == FR_E_NOT_OWNER)
		return EXIT_AUTH;
	if (rc == FR_E_LEFT_OUT)
		return EXIT_LEFT_OUT;
	return EXIT_FAIL;
}

static int load(struct fr_config *c, struct args *a, const char *usage)
{
	if (!a->config) {
		if (access(FERRY_DEFAULT_CONFIG, F_OK) < 0) {
			fprintf(stderr,
				"ferry: no config found: tried --config (not "
				"given), FERRY_CONFIG (not set), '%s' (%s)\n",
				FERRY_DEFAULT_CONFIG, strerror(errno));
			return -EXIT_CONFIG;
		}
		a->config = FERRY_DEFAULT_CONFIG;
	}
	if (fr_config_load(c, a->config) < 0)
		return -EXIT_CONFIG;
	return 0;
}

/* Each parcel command takes its own options: one of another is refused,
 * not ignored (`parcel ship --json` would print no JSON). */
static int parcel_opts_check(const char *sub, const struct args *a)
{
	static const char *const takes[][2] = {
	    {"create", "--to --media --volume-size --level --name --via "
		       "--skip-special --json --no-progress"},
	    {"list", "--offline --json"},
	    {"ship", ""},
	    {"import", "--json"}};
	const struct {
		bool on;
		const char *opt;
	} given[] = {{a->to != NULL, "--to"},
		     {a->n_media > 0, "--media"},
		     {a->volume_size > 0, "--volume-size"},
		     {a->level != -2, "--level"},
		     {a->name != NULL, "--name"},
		     {a->via != NULL, "--via"},
		     {a->skip_special, "--skip-special"},
		     {a->json, "--json"},
		     {a->no_progress, "--no-progress"},
		     {a->offline, "--offline"}};

	for (size_t i = 0; i < sizeof(takes) / sizeof(takes[0]); i++) {
		if (strcmp(takes[i][0], sub))
			continue;
		for (size_t k = 0; k < sizeof(given) / sizeof(given[0]); k++)
			if (given[k].on && not_ours(takes[i][1], given[k].opt))
				return die_usage(usage_parcel,
						 "option '%s' is not one of "
						 "parcel %s's",
						 given[k].opt, sub);
	}
	return 0;
}

static int cmd_parcel(int argc, char **argv)
{
	const char *usage = usage_parcel;
	struct fr_config c;
	struct args a;
	int rc;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "create") && strcmp(sub, "list") && strcmp(sub, "ship") &&
	    strcmp(sub, "import"))
		return die_usage(usage, "'%s' is not a parcel command", sub);
	if ((rc = parse(argc - 1, argv + 1, &a, usage)) != 0)
		return rc;
	if (a.help) {
		fputs(usage, stdout);
		return 0;
	}
	bool create = !strcmp(sub, "create"), import = !strcmp(sub, "import");
	if ((create || !strcmp(sub, "ship")) && a.n_pos != 1)
		return die_usage(usage, "parcel %s takes one %s", sub,
				 create ? "PATH" : "PARCEL");
	if (!strcmp(sub, "list") && a.n_pos)
		return die_usage(usage, "unexpected argument '%s'", a.pos[0]);
	if (import && !a.n_pos)
		return die_usage(usage, "%s", "parcel import needs a PATH");
	if (create && !a.to)
		return die_usage(usage, "%s", "--to SITE is required");
	if ((rc = parcel_opts_check(sub, &a)) != 0)
		return rc;
	if ((rc = load(&c, &a, usage)) < 0)
		return -rc;
	if (create) {
		struct fr_parcel_opts o = {
			.path = a.positional,
			.site = a.to,
			.name = a.name,
			.via = a.via,
			.n_media = a.n_media,
			.volume_size = a.volume_size,
			.level = a.level,
			.json = a.json,
			.skip_special = a.skip_special,
		};
		memcpy(o.media, a.media, sizeof(o.media));
		if (show_progress(&a))
			ferry_parcel_progress(&o);
		struct fr_parcel_made made;
		rc = fr_parcel_create(&c, &o, &made);
		/* -q: errors only, as send (what was left out still says) */
		bool quiet = a.verbosity < FR_LOG_INFO && !a.json &&
			     rc != FR_E_LEFT_OUT;
		if ((rc == 0 || rc == FR_E_LEFT_OUT || made.kept) && !quiet)
			ferry_parcel_made_print(&made, a.json, a.skip_special,
						stdout);
		fr_parcel_made_fini(&made);
	} else if (import) {
		struct fr_import_result ir;
		rc = fr_parcel_import(&c, a.pos, (unsigned)a.n_pos, &ir);
		if (rc != -ENOENT && rc != FR_E_PROTOCOL)
			ferry_parcel_import_print(&ir, a.json, stdout);
		/* a volume refused (not a volume, cut short, another
		 * site's...) is exit 5, as a segment refused is */
		bool refused = ir.n_refused > 0;
		fr_import_result_fini(&ir);
		fr_config_fini(&c);
		return rc == 0 ? 0
		       : rc != FR_E_AUTH &&
				 (refused || rc == FR_E_HASH_MISMATCH ||
				  rc == FR_E_FORGED || rc == FR_E_WRONG_SITE ||
				  rc == FR_E_BAD_VERSION ||
				  rc == FR_E_HDR_CHECKSUM || rc == FR_E_BAD_MAGIC)
			   ? EXIT_VERIFY
			   : exit_for(rc);
	} else if (!strcmp(sub, "list")) {
		struct fr_parcel_info *ps;
		uint32_t n;
		if ((rc = fr_parcel_list(&c, a.offline, &ps, &n)) == 0)
			ferry_parcel_list_print(ps, n, a.json, stdout);
		free(ps);
	} else {
		struct fr_parcel_info p;
		bool already;
		if ((rc = fr_parcel_ship(&c, a.positional, &p, &already)) == 0)
			ferry_parcel_shipped_print(&p, already, stdout);
	}
	fr_config_fini(&c);
	return exit_for(rc);
}

static int cmd_plan(struct args *a, const char *usage)
{
	struct fr_config c;
	struct fr_plan p;
	int rc;

	if (!a->positional)
		return die_usage(usage, "%s", "PATH is required");
	if (!a->to)
		return die_usage(usage, "%s", "--to SITE is required");
	if ((rc = load(&c, a, usage)) < 0)
		return -rc;
	struct fr_plan_opts o = {
		.path = a->positional,
		.site = a->to,
		.name = a->name,
		.via = a->via,
		.priority = a->priority,
		.offline = a->offline,
	};
	if (a->via && !strcmp(a->via, "auto")) /* as send: every output */
		o.via = NULL;
	rc = fr_plan(&c, &o, &p);
	if (rc == 0)
		ferry_plan_print(&p, a->json, stdout);
	fr_config_fini(&c);
	return exit_for(rc);
}

/* `ferry bench link SITE | pipeline PATH`: the measuring is the
 * engine's, the tables and JSON tools/bench_link.c's and
 * tools/bench_pipeline.c's. */
static int cmd_bench(int argc, char **argv)
{
	const char *usage = usage_bench;
	struct fr_config c;
	struct args a;
	int rc;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	const char *sub = argv[1];
	bool link = !strcmp(sub, "link");
	if (!link && strcmp(sub, "pipeline"))
		return die_usage(usage,
				 "'%s' is not a bench command (link or "
				 "pipeline)",
				 sub);
	if ((rc = parse(argc - 1, argv + 1, &a, usage)) != 0)
		return rc;
	if (a.help) {
		fputs(usage, stdout);
		return 0;
	}
	if (a.n_pos != 1)
		return die_usage(usage, "bench %s takes one %s", sub,
				 link ? "SITE" : "PATH");
	if (link && a.level != -2)
		return die_usage(usage, "%s", "--level is for 'bench pipeline'");
	if (!link && (a.seconds || a.streams || a.omit || a.reverse ||
		      a.no_store || a.via))
		return die_usage(usage, "%s",
				 "--via, --seconds, --streams, --omit, "
				 "--reverse and --no-store are for 'bench "
				 "link'");
	struct ferry_bench_args b = {
	    .target = a.positional,
	    .via = a.via,
	    .seconds = a.seconds ? a.seconds : 10,
	    .streams = a.streams ? a.streams : 1,
	    .omit = a.omit ? a.omit - 1 : 1,
	    .reverse = a.reverse,
	    .store = !a.no_store,
	    .json = a.json,
	    .progress = show_progress(&a),
	    .level = a.level == -2 ? -1 : a.level,
	};
	if (link && b.omit >= b.seconds)
		return die_usage(usage,
				 "--omit %u leaves nothing of --seconds %u to "
				 "count",
				 b.omit, b.seconds);
	if (!link && !a.config && access(FERRY_DEFAULT_CONFIG, F_OK) < 0) {
		/* no config: the defaults (workers, no sealing) */
		rc = ferry_bench_pipeline(NULL, &b, stdout);
		return exit_for(rc);
	}
	if ((rc = load(&c, &a, usage)) < 0)
		return -rc;
	rc = link ? ferry_bench_link(&c, &b, stdout)
		  : ferry_bench_pipeline(&c, &b, stdout);
	fr_config_fini(&c);
	return exit_for(rc);
}

/*
 * Every reader holds at most 64 files open and a receiving session at
 * most 128, but several sessions and transfers run at once: the usual
 * soft limit of 1,024 open files is raised to the hard limit (at most
 * 65,536). Within the limit ferry works either way.
 */
static void raise_open_files(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int cmd_serve(struct args *a, const char *usage)
{
	struct fr_config c;
	char tag[64];
	int rc;

	if (a->positional)
		return die_usage(usage, "unexpected argument '%s'",
				 a->positional);
	if ((rc = load(&c, a, usage)) < 0)
		return -rc;
	snprintf(tag, sizeof(tag), "ferry[%s]", c.code);
	fr_log_tag = tag;
	rc = fr_serve(&c);
	fr_config_fini(&c);
	return exit_for(rc);
}

/* What a send says when it is over: its summary (or JSON), what was left
 * out even with -q, or how to go on. */
static int cmd_send(struct args *a, const char *usage)
{
	struct fr_config c;
	struct fr_send_result r;
	int rc;

	if (!a->positional)
		return die_usage(usage, "%s", "PATH is required");
	if (!a->to)
		return die_usage(usage, "%s", "--to SITE is required");
	if ((rc = load(&c, a, usage)) < 0)
		return -rc;
	struct ferry_report rp = {.json = a->json,
				  .verbosity = a->verbosity,
				  .config = a->config};
	struct fr_send_hooks hooks;
	ferry_send_hooks(&rp, show_progress(a), &hooks);
	struct fr_send_opts o = {
		.path = a->positional,
		.site = a->to,
		.name = a->name,
		.via = a->via,
		.priority = a->priority,
		.level = a->level,
		.skip_special = a->skip_special,
		.courier = a->courier,
		.hooks = &hooks,
	};
	if (a->via && !strcmp(a->via, "auto")) { /* every output */
		o.via = NULL;
		if (!o.courier)
			o.courier = FR_COURIER_IF_ANY;
	}
	rc = fr_send(&c, &o, &r);
	/* a send that failed before it named its package still says what it
	 * was asked for */
	if (!r.site[0])
		snprintf(r.site, sizeof(r.site), "%s", a->to);
	if (!r.name[0]) {
		const char *base = a->name ? a->name : strrchr(a->positional, '/');
		base = !base ? a->positional : a->name ? base : base + 1;
		snprintf(r.name, sizeof(r.name), "%s", base);
	}
	/* a configuration error: nothing on stdout (ferry(1), JSON OUTPUT) */
	if (!(a->json && rc == FR_E_CONFIG))
		ferry_send_print(&r, &rp);
	fr_send_result_fini(&r);
	fr_config_fini(&c);
	return exit_for(rc);
}

static int cmd_resume(struct args *a, const char *usage)
{
	struct fr_config c;
	int rc;

	if ((rc = load(&c, a, usage)) < 0)
		return -rc;
	struct ferry_report rp = {.json = a->json,
				  .resume = true,
				  .verbosity = a->verbosity,
				  .config = c.path};
	struct fr_send_hooks hooks;
	ferry_send_hooks(&rp, show_progress(a), &hooks);
	struct fr_resume_opts o = {.transfer = a->positional,
				   .skip_special = a->skip_special,
				   .hooks = &hooks};
	struct fr_resume_result res;
	rc = fr_resume(&c, &o, &res);
	if (res.n || rc == 0) /* not: no such transfer, no memory */
		ferry_resume_print(&res, &rp);
	fr_resume_result_fini(&res);
	fr_config_fini(&c);
	return exit_for(rc);
}

static int cmd_status(struct args *a, const char *usage)
{
	struct fr_config c;
	struct fr_status st;
	int rc;

	if ((rc = load(&c, a, usage)) < 0)
		return -rc;
	if ((rc = fr_status_load(&c, a->positional, &st)) == 0)
		fr_status_print(&st, a->json, stdout);
	fr_status_fini(&st);
	fr_config_fini(&c);
	return exit_for(rc);
}

static int cmd_prune(struct args *a, const char *usage)
{
	struct fr_config c;
	double secs;
	int rc;

	if (a->positional)
		return die_usage(usage, "unexpected argument '%s'",
				 a->positional);
	if (!a->older_than)
		return die_usage(usage, "%s",
				 "--older-than DURATION is required");
	if (fr_parse_duration_s(a->older_than, &secs) < 0)
		return die_usage(usage,
				 "--older-than '%s' must be a duration with its "
				 "unit, such as 30s, 90m, 12h, 7d or 2w",
				 a->older_than);
	if ((rc = load(&c, a, usage)) < 0)
		return -rc;
	struct fr_prune_result r;
	rc = fr_prune(&c, secs, a->dry_run, &r);
	ferry_prune_print(&r, a->json, stdout);
	fr_prune_result_fini(&r);
	fr_config_fini(&c);
	return exit_for(rc);
}

static int cmd_forget(struct args *a, const char *usage)
{
	struct fr_config c;
	int rc;

	if (!a->positional)
		return die_usage(usage, "%s", "TRANSFER is required");
	if ((rc = load(&c, a, usage)) < 0)
		return -rc;
	struct fr_prune_entry e;
	if ((rc = fr_forget(&c, a->positional, &e)) == 0)
		ferry_forget_print(&e, a->json, stdout);
	fr_config_fini(&c);
	return exit_for(rc);
}

static int cmd_verify(struct args *a, const char *usage)
{
	char en[FR_ESC_MAX];
	struct fr_config c;
	int rc;

	if (!a->positional)
		return die_usage(usage, "%s", "NAME is required");
	if (fr_name_check(a->positional) < 0)
		return die_usage(usage, "'%s' is not a valid package name",
				 fr_esc(a->positional, en, sizeof(en)));
	if ((rc = load(&c, a, usage)) < 0)
		return -rc;
	struct fr_verify_result r;
	rc = fr_verify(&c, a->positional, a->repair, &r);
	ferry_verify_print(a->positional, &r, a->json, stdout);
	fr_verify_result_fini(&r);
	fr_config_fini(&c);
	return rc == 0 ? 0
	       : (rc == FR_E_HASH_MISMATCH || rc == FR_E_INCOMPLETE)
		   ? EXIT_VERIFY
		   : exit_for(rc);
}

/* The commands that share parse(): name, usage, what runs them. */
static const struct command {
	const char *name;
	const char *const *usage;
	int (*run)(struct args *a, const char *usage);
} commands[] = {
	{"serve", &usage_serve, cmd_serve},
	{"send", &usage_send, cmd_send},
	{"resume", &usage_resume, cmd_resume},
	{"status", &usage_status, cmd_status},
	{"verify", &usage_verify, cmd_verify},
	{"prune", &usage_prune, cmd_prune},
	{"forget", &usage_forget, cmd_forget},
	{"plan", &usage_plan, cmd_plan},
};

static int show_version(void)
{
#ifdef FERRY_TEST_HOOKS
	printf("ferry %s (test build: obeys the FERRY_* test switches)\n",
	       FERRY_VERSION);
#else
	printf("ferry %s\n", FERRY_VERSION);
#endif
	printf("%s; %s here\n", fr_versions(), fr_aead_here());
	return 0;
}

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	struct args a;
	int rc;

	raise_open_files();
	fr_hooks_check();

	if (argc < 2)
		return show_usage(usage_main);
	const char *name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h") ||
	    !strcmp(name, "help")) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (!strcmp(name, "version") || !strcmp(name, "--version"))
		return show_version();
	if (!strcmp(name, "parcel"))
		return cmd_parcel(argc - 1, argv + 1);
	if (!strcmp(name, "bench"))
		return cmd_bench(argc - 1, argv + 1);
	if (!strcmp(name, "__line-keeper")) /* started by a RAS send */
		return fr_line_keeper(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(name, commands[i].name))
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "ferry: '%s' is not a ferry command\n", name);
		return show_usage(usage_main);
	}
	const char *usage = *cmd->usage;
	if ((rc = parse(argc - 1, argv + 1, &a, usage)) != 0)
		return rc;
	if (a.help) {
		fputs(usage, stdout);
		return 0;
	}
	if (a.repair && cmd->run != cmd_verify)
		return die_usage(usage, "%s", "--repair is an option of verify");
	return cmd->run(&a, usage);
}
