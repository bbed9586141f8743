#!/bin/bash
# test_progress.sh - the progress line on a terminal (a pty from
# script(1)): it never wraps on a narrow one (the terminal's width, else
# $COLUMNS; less telling fields left out first), and on a slow link it
# moves with what the peer's TCP acknowledged, long before the one large
# segment is acknowledged. A striped send draws one line for the package,
# whose count never goes back.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_progress
command -v script >/dev/null || skip "script(1) (util-linux) is required"
# about 2.5 MB/s; one segment of 64 MiB holds the whole package
mkdir -p "$WORK/media"
ADDR_EXTRA="rate-limit = pulse 256K 100ms

[address LAB usb]
type = courier
password-file = $PW_FILE
media = $WORK/media"
SENDER_EXTRA="segment-size = 64M"
write_configs
start_serve

# tty_send NAME SIZE_MB STTY: send NAME under a pty set up by STTY; the
# terminal's output in $WORK/NAME.tty
tty_send() {
	mkdir -p "$WORK/$1"
	head -c $(($2 * 1024 * 1024)) /dev/urandom >"$WORK/$1/data"
	(unset COLUMNS; timeout 60 script -qfec \
		"$3; $FERRY send $WORK/$1 --to LAB --config $CEN_CONF --level 0" \
		"$WORK/$1.tty" >/dev/null 2>&1)
	RC=$?
}

# progress_lines FILE: the progress lines drawn, one per line
progress_lines() {
	python3 - "$1" <<'EOF'
import re, sys
t = open(sys.argv[1], 'rb').read().decode('utf-8', 'replace')
for l in re.split(r'[\r\n]', t):
    l = l.replace('\x1b[K', '')
    if re.search(r'\d%  ', l) or re.match(r'\s*(hashing|parcel:)', l):
        print(l)
EOF
}

# ---- 50 columns -------------------------------------------------------------------
tty_send narrow 12 "stty cols 50"
expect_rc 0 "$RC" "send on a 50-column terminal"
progress_lines "$WORK/narrow.tty" >"$WORK/narrow.lines"
n=$(wc -l <"$WORK/narrow.lines")
wide=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$WORK/narrow.lines")
check "progress lines were drawn ($n)" [ "$n" -ge 3 ]
check "no progress line is wider than 49 columns (widest: $wide)" [ "$wide" -le 49 ]
expect_grep "the narrow line keeps percent and bytes" \
	'[0-9.]+%  [0-9.]+ [KMG]?i?B / 12.0 MiB' "$WORK/narrow.lines"
# one segment: every line before 100% is before its acknowledgement
mid=$(grep -Ec '^ *([1-9]|[1-9][0-9])\.[0-9]%' "$WORK/narrow.lines")
check "the count moves before the segment is acknowledged ($mid lines between 0 and 100%)" \
	[ "$mid" -ge 2 ]
first=$(grep -Em1 '^ *[0-9.]+%  [1-9]' "$WORK/narrow.lines")
log "first line with bytes: '$first'"

# ---- no size from the terminal: $COLUMNS ---------------------------------------------
mkdir -p "$WORK/cols"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$WORK/cols/data"
(timeout 60 script -qfec \
	"stty cols 0 rows 0; COLUMNS=36 $FERRY send $WORK/cols --to LAB --config $CEN_CONF --level 0" \
	"$WORK/cols.tty" >/dev/null 2>&1)
expect_rc 0 "$?" "send with COLUMNS=36 and no terminal size"
progress_lines "$WORK/cols.tty" >"$WORK/cols.lines"
wide=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$WORK/cols.lines")
check "with COLUMNS=36 no line is wider than 35 ($wide, $(wc -l <"$WORK/cols.lines") lines)" \
	test "$wide" -le 35 -a -s "$WORK/cols.lines"

# ---- a wide terminal shows every field ----------------------------------------------------
tty_send wide 3 "stty cols 160"
expect_rc 0 "$RC" "send on a 160-column terminal"
expect_grep "a wide line has the name, segments and level" \
	'wide -> LAB .*seg [01]/1  raw' "$WORK/wide.tty"

# ---- a striped send: one line for the package, never going back -------------------------
# two addresses to LAB, limited to about 2.6 and 0.65 MB/s: the line counts
# what both carry (the outputs' views made one), so its percentage and
# bytes only grow, and its rate is about both links' sum
cat >"$WORK/stripe.conf" <<EOF
[site]
code = CEN
store = $CEN_STORE
[address LAB lan]
type = lan
host = 127.0.0.1:$PORT
password-file = $CEN_PW_FILE
rate-limit = pulse 256K 100ms
[address LAB lan2]
type = lan
host = 127.0.0.1:$PORT
password-file = $CEN_PW_FILE
rate-limit = pulse 64K 100ms
[sender]
segment-size = 4M
EOF
mkdir -p "$WORK/striped"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$WORK/striped/data"
(unset COLUMNS; timeout 60 script -qfec \
	"stty cols 120; $FERRY send $WORK/striped --to LAB --config $WORK/stripe.conf --level 0" \
	"$WORK/striped.tty" >/dev/null 2>&1)
expect_rc 0 "$?" "a send striped over two addresses on a terminal"
expect_grep "... over both" "over 2 links: lan\+lan2" "$WORK/striped.tty"
progress_lines "$WORK/striped.tty" >"$WORK/striped.lines"
back=$(python3 - "$WORK/striped.lines" <<'EOF'
import re, sys
last, back, n = -1.0, 0, 0
for l in open(sys.argv[1]):
    m = re.match(r'\s*striped -> LAB\s+([0-9.]+)%', l)
    if not m:
        continue
    n += 1
    p = float(m.group(1))
    back += p < last
    last = max(last, p)
print(n, back)
EOF
)
check "the striped line was drawn and never went back (lines, times back: $back)" \
	test "${back% *}" -ge 4 -a "${back#* }" = 0
rates=$(grep -oE '[0-9.]+ [KM]iB/s' "$WORK/striped.lines" | tail -n +3 | head -n -2 |
	awk '{ r = $1 * ($2 == "MiB/s" ? 1024 : 1); if (r > m) m = r } END { print m + 0 }')
check "its rate is both links' at most, not one link's burst ($rates KiB/s)" \
	awk -v r="$rates" 'BEGIN { exit !(r > 0 && r < 4000) }'

# ---- parcel create's line too --------------------------------------------------------------
mkdir -p "$WORK/parcel"
binary_data "$WORK/parcel/data" $((12 * 1024 * 1024))
(unset COLUMNS; timeout 120 script -qfec \
	"stty cols 40; $FERRY parcel create $WORK/parcel --to LAB --config $CEN_CONF --level 19" \
	"$WORK/parcel.tty" >/dev/null 2>&1)
expect_rc 0 "$?" "parcel create on a 40-column terminal"
progress_lines "$WORK/parcel.tty" >"$WORK/parcel.lines"
wide=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$WORK/parcel.lines")
n=$(grep -c 'parcel:' "$WORK/parcel.lines")
check "parcel create drew its line ($n times), never wider than 39 ($wide)" \
	test "$wide" -le 39 -a "$n" -ge 1

e2e_finish
