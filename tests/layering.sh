#!/bin/sh
# The build's layering rule, checked on the sources: liburing only in io/,
# zstd and xxHash only in codec/, sodium and inih only in engine/, OpenSSL
# only in engine/core/seal.c (AES-256-GCM's bulk), and the lower modules never
# include the engine's or the tools' headers. With a build directory
# (second argument), the engine's folders are checked on the objects built
# from them: a folder calls only folders below it (DESIGN.md, "Layout"):
#   recv, sched  ->  out, store  ->  pipe  ->  source  ->  core
root=${1:-.}
objs=${2:-}
fail=0
check() { # pattern allowed-dir
	hits=$(grep -rlE "#include[[:space:]]*<($1)" "$root"/codec "$root"/io "$root"/engine "$root"/tools 2>/dev/null | grep -v "^$root/$2/")
	if [ -n "$hits" ]; then echo "layering: <$1> included outside $2/: $hits"; fail=1; fi
}
check 'liburing' io
check 'zstd|xxhash' codec
check 'sodium' engine
check 'ini\.h' engine
hits=$(grep -rlE '#include[[:space:]]*<openssl/' "$root"/codec "$root"/io "$root"/engine "$root"/tools 2>/dev/null | grep -v "^$root/engine/core/seal\.c$")
[ -n "$hits" ] && { echo "layering: <openssl/...> included outside engine/core/seal.c: $hits"; fail=1; }
hits=$(grep -rlE '#include[[:space:]]*"(fr_engine|fr_io)\.h"' "$root"/codec 2>/dev/null)
[ -n "$hits" ] && { echo "layering: codec includes io/engine: $hits"; fail=1; }
hits=$(grep -rlE '#include[[:space:]]*"(fr_engine|fr_codec)\.h"' "$root"/io 2>/dev/null)
[ -n "$hits" ] && { echo "layering: io includes codec/engine: $hits"; fail=1; }

# engine/<folder>/*.c: the level of each folder; a call may go only to a
# lower level (or within the folder)
level() {
	case $1 in
	core) echo 0 ;; source) echo 1 ;; pipe) echo 2 ;;
	out | store) echo 3 ;; recv | sched) echo 4 ;; *) echo 9 ;;
	esac
}
# engine/<folder>/*.c includes its own folder's header (which brings the
# folders below it), a header of a folder below, or none of the engine's:
# never fr_internal.h (the unit tests' umbrella) nor a header above it
tmp_inc=$(mktemp)
for f in "$root"/engine/*/*.c; do
	d=$(basename "$(dirname "$f")")
	grep -oE '#include[[:space:]]*"[a-z_/]+\.h"' "$f" | sed -E 's/.*"(.*)"/\1/' |
		while read -r h; do
			case $h in
			fr_engine.h | fr_codec.h | fr_io.h) continue ;;
			*/fr_*.h) hd=${h%%/*} ;;
			*) echo "layering: $f includes \"$h\" (its folder's header: \"$d/fr_$d.h\")"; continue ;;
			esac
			[ "$hd" = "$d" ] || [ "$(level "$hd")" -lt "$(level "$d")" ] ||
				echo "layering: $f ($d) includes \"$h\", a folder not below it"
		done
done > "$tmp_inc" 2>&1
if [ -s "$tmp_inc" ]; then cat "$tmp_inc"; fail=1; fi
rm -f "$tmp_inc"
if [ -n "$objs" ] && [ -d "$objs" ]; then
	defs=$(mktemp)
	(cd "$objs" && for o in */*.o; do
		nm --defined-only -g "$o" | awk -v d="${o%%/*}" '$2 ~ /[TDBR]/ { print $3, d }'
	done) | sort > "$defs"
	calls=$( (cd "$objs" && for o in */*.o; do
		nm -u "$o" | awk -v f="$o" '{ print $2, f }'
	done) | sort | join "$defs" - | awk '{ split($3, p, "/"); if ($2 != p[1]) print p[1], $2, $1, $3 }')
	rm -f "$defs"
	bad=$(echo "$calls" | while read -r from to sym file; do
		[ -n "$from" ] || continue
		[ "$(level "$from")" -gt "$(level "$to")" ] || echo "  engine/${file%.o} ($from) calls $sym ($to)"
	done)
	if [ -n "$bad" ]; then
		echo "layering: engine folders calling up or sideways:"
		echo "$bad"
		fail=1
	fi
	[ -n "$calls" ] || { echo "layering: no engine objects under $objs"; fail=1; }
fi
[ $fail = 0 ] && echo "layering: ok"
exit $fail
