#!/bin/sh
# The build's layering rule, checked on the sources: liburing only in io/,
# zstd and xxHash only in codec/, sodium and inih only in engine/, OpenSSL
# only in engine/seal.c (AES-256-GCM's bulk), and the lower modules never
# include the engine's or the tools' headers.
root=${1:-.}
fail=0
check() { # pattern allowed-dir
	hits=$(grep -rlE "#include[[:space:]]*<($1)" "$root"/codec "$root"/io "$root"/engine "$root"/tools 2>/dev/null | grep -v "^$root/$2/")
	if [ -n "$hits" ]; then echo "layering: <$1> included outside $2/: $hits"; fail=1; fi
}
check 'liburing' io
check 'zstd|xxhash' codec
check 'sodium' engine
check 'ini\.h' engine
hits=$(grep -rlE '#include[[:space:]]*<openssl/' "$root"/codec "$root"/io "$root"/engine "$root"/tools 2>/dev/null | grep -v "^$root/engine/seal\.c$")
[ -n "$hits" ] && { echo "layering: <openssl/...> included outside engine/seal.c: $hits"; fail=1; }
hits=$(grep -rlE '#include[[:space:]]*"(fr_engine|fr_io)\.h"' "$root"/codec 2>/dev/null)
[ -n "$hits" ] && { echo "layering: codec includes io/engine: $hits"; fail=1; }
hits=$(grep -rlE '#include[[:space:]]*"(fr_engine|fr_codec)\.h"' "$root"/io 2>/dev/null)
[ -n "$hits" ] && { echo "layering: io includes codec/engine: $hits"; fail=1; }
[ $fail = 0 ] && echo "layering: ok"
exit $fail
