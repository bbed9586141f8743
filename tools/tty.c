/*
 * tty.c - the progress line on the terminal (stderr) that send, resume
 * and parcel create draw while they run.
 */
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fr_tools.h"

static unsigned tty_columns(void)
{
	struct winsize ws;
	const char *env = getenv("COLUMNS");
	char *end;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	if (env) {
		unsigned long v = strtoul(env, &end, 10);
		if (end != env && !*end && v > 0 && v < 10000)
			return (unsigned)v;
	}
	return 80;
}

/* Characters on the screen, not bytes: UTF-8 continuation bytes take
 * no column. */
static size_t tty_width(const char *s, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++)
		w += ((unsigned char)s[i] & 0xc0) != 0x80;
	return w;
}

void ferry_tty_clear(void)
{
	if (write(STDERR_FILENO, "\r\033[K", 4) < 0)
		return;
}

void ferry_tty_line(const struct ferry_tty_part *parts, unsigned n)
{
	bool on[16];
	char line[1024];
	size_t len;
	/* the last column is left free: a line that fills it leaves some
	 * terminals at the start of the next */
	size_t cols = tty_columns() - 1;

	if (n > 16)
		n = 16;
	for (unsigned i = 0; i < n; i++)
		on[i] = true;
	for (;;) {
		len = 0;
		for (unsigned i = 0; i < n; i++)
			if (on[i] && len < sizeof(line))
				len += (size_t)snprintf(line + len, sizeof(line) - len,
							"%s%s", len ? "  " : "",
							parts[i].text);
		if (len >= sizeof(line))
			len = sizeof(line) - 1;
		if (tty_width(line, len) <= cols)
			break;
		int worst = -1;
		for (unsigned i = 0; i < n; i++)
			if (on[i] && parts[i].drop > 0 &&
			    (worst < 0 || parts[i].drop > parts[worst].drop))
				worst = (int)i;
		if (worst < 0) { /* cut, at a character's start */
			while (len > 0 && tty_width(line, len) > cols)
				len--;
			while (len > 0 && ((unsigned char)line[len] & 0xc0) == 0x80)
				len--;
			break;
		}
		on[worst] = false;
	}
	char out[1100];
	int m = snprintf(out, sizeof(out), "\r\033[K%.*s", (int)len, line);
	if (m > 0 && write(STDERR_FILENO, out, (size_t)m) < 0)
		return;
}
