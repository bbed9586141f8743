/*
 * log.c - one line per event on stderr: "ferry[LAB]: what: which: why".
 * Lines are written with a single write() so concurrent threads never
 * interleave inside a line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fr_engine.h"

int fr_log_verbosity = FR_LOG_INFO;
const char *fr_log_tag = "ferry";
static char last_error[512];
static __thread char thread_error[512]; /* this thread's last */
/* this thread's lines also go here (an import run for a client) */
static __thread FILE *log_copy;

void fr_log_copy_to(FILE *f)
{
	log_copy = f;
	if (f)
		thread_error[0] = '\0';
}

const char *fr_log_last_error(void)
{
	return last_error;
}

const char *fr_log_thread_error(void)
{
	return thread_error;
}

void fr_log(int level, const char *fmt, ...)
{
	static const char *const names[] = {"error: ", "warning: ", "", ""};
	char line[2048];
	size_t n = 0;
	va_list ap;

	if (level == FR_LOG_ERROR) { /* for a JSON report, even when quiet */
		va_start(ap, fmt);
		vsnprintf(last_error, sizeof(last_error), fmt, ap);
		va_end(ap);
		va_start(ap, fmt);
		vsnprintf(thread_error, sizeof(thread_error), fmt, ap);
		va_end(ap);
	}
	if (level > fr_log_verbosity)
		return;
	if (isatty(STDERR_FILENO)) {
		/* over a progress line, which is drawn again after */
		memcpy(line, "\r\033[K", 4);
		n = 4;
	} else {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S ", &tm);
	}
	n += (size_t)snprintf(line + n, sizeof(line) - n, "%s: %s", fr_log_tag,
			      names[level < 0 ? 0 : level > 3 ? 3 : level]);
	va_start(ap, fmt);
	if (n < sizeof(line))
		n += (size_t)vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (log_copy)
		fwrite(line, 1, n, log_copy);
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
