/*
 * err.c - names and messages for ferry's error codes.
 *
 * Both spaces of negative codes are served: ferry's own (FR_ERRORS, below
 * -4095) and -errno passed through from the kernel or libc. The tables are
 * generated from the one X-macro so a new code cannot be added without its
 * text.
 */
#include <errno.h>
#include <string.h>

#include "fr_codec.h"

#define FR_E_MSG_(name, msg) msg,
static const char *const fr_err_msgs[] = {FR_ERRORS(FR_E_MSG_)};
#undef FR_E_MSG_

#define FR_E_NAME_(name, msg) "FR_E_" #name,
static const char *const fr_err_names[] = {FR_ERRORS(FR_E_NAME_)};
#undef FR_E_NAME_

_Static_assert(sizeof(fr_err_msgs) / sizeof(fr_err_msgs[0]) ==
		   (size_t)(FR_E__END - FR_E__BASE - 1),
	       "FR_ERRORS tables out of step with the enum");
_Static_assert(FR_E__END <= -4095, "ferry codes must not overlap -errno");

static bool fr_is_own(int code)
{
	return code > FR_E__BASE && code < FR_E__END;
}

const char *fr_strerror(int code)
{
	if (code == 0)
		return "success";
	if (fr_is_own(code))
		return fr_err_msgs[code - FR_E__BASE - 1];
	if (code < 0 && code > -4096)
		return strerror(-code);
	return "unknown error";
}

#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
static const char *fr_errno_name(int e)
{
	return strerrorname_np(e);
}
#else
/* Without glibc's strerrorname_np: the errnos ferry actually meets. */
static const char *fr_errno_name(int e)
{
	static const struct {
		int e;
		const char *name;
	} tab[] = {
#define E_(x)                                                                  \
	{                                                                      \
		x, #x                                                          \
	}
	    E_(EPERM),	     E_(ENOENT),       E_(EINTR),	 E_(EIO),
	    E_(EBADF),	     E_(EAGAIN),       E_(ENOMEM),	 E_(EACCES),
	    E_(EFAULT),	     E_(EBUSY),	       E_(EEXIST),	 E_(ENOTDIR),
	    E_(EISDIR),	     E_(EINVAL),       E_(EMFILE),	 E_(EFBIG),
	    E_(ENOSPC),	     E_(ESPIPE),       E_(EROFS),	 E_(EPIPE),
	    E_(ERANGE),	     E_(ENAMETOOLONG), E_(ENOSYS),	 E_(ENOTEMPTY),
	    E_(ELOOP),	     E_(EOVERFLOW),    E_(ENOTSUP),	 E_(ENOBUFS),
	    E_(EADDRINUSE),  E_(ENETUNREACH),  E_(ECONNABORTED), E_(ECONNRESET),
	    E_(ETIMEDOUT),   E_(ECONNREFUSED), E_(EHOSTUNREACH), E_(EALREADY),
	    E_(EINPROGRESS), E_(ECANCELED),    E_(EDQUOT),
#undef E_
	};
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (tab[i].e == e)
			return tab[i].name;
	return NULL;
}
#endif

const char *fr_err_name(int code)
{
	const char *n;

	if (code == 0)
		return "OK";
	if (fr_is_own(code))
		return fr_err_names[code - FR_E__BASE - 1];
	if (code < 0 && code > -4096) {
		n = fr_errno_name(-code);
		if (n)
			return n;
	}
	return "UNKNOWN";
}
