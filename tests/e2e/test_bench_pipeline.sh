#!/bin/bash
# test_bench_pipeline.sh - `ferry bench pipeline` (issue 17): the sender's
# data path measured on a real package, with no network.
#   - --json at one level: the documented fields, the whole package read
#     (small enough to be the sample too), rates above zero, and the ratio
#     that of `zstd -1` on the same bytes (within 3%: ferry cuts 8 MiB
#     segments, this package is one);
#   - random data: ratio 1;
#   - the default levels are those the automatic choice weighs, and its
#     table over link speeds never picks a lighter level for a slower
#     link; --level all gives 1..19;
#   - the config's workers are used; with no config at all it still runs;
#   - the human table; errors: no such path, an empty tree, bad options.
# Stages run 50 ms instead of 1 s (FERRY_BENCH_STAGE_MS, a test build's).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_bench_pipeline
need_test_hooks
command -v zstd >/dev/null || skip "needs zstd (the ratio's yardstick)"
export FERRY_BENCH_STAGE_MS=50
O=$WORK/out
E=$WORK/err
# no config unless one is named: /etc/ferry/ferry.conf may exist here
NOCONF=$WORK/none.conf
printf '[site]\ncode = CEN\nstore = %s\n' "$CEN_STORE" >"$NOCONF"

mkdir -p "$WORK/bin" "$WORK/rand" "$WORK/empty/d"
binary_data "$WORK/bin/pkg" 2500000
head -c 1000000 /dev/urandom >"$WORK/rand/r"

# ---- one level, JSON ----------------------------------------------------------
run_ferry "$O" "$E" bench pipeline "$WORK/bin" --level 1 --json --config "$NOCONF"
expect_rc 0 "$RC" "bench pipeline --level 1 --json"
check "one JSON document" json_ok "$O"
want=$(python3 - "$O" "$WORK/bin/pkg" <<'EOF'
import json, sys, os, subprocess
d = json.load(open(sys.argv[1]))
size = os.path.getsize(sys.argv[2])
z = len(subprocess.run(["zstd", "-1", "-c", sys.argv[2]], capture_output=True).stdout)
lv = d["levels"]
bad = []
if d.get("ok") is not True: bad.append("ok")
if d["bytes"] != size or d["read"]["bytes"] != size: bad.append("read bytes")
if d["sample_bytes"] != size: bad.append("sample")
if not d["hash_mb_s_per_core"] > 100: bad.append("hash rate")
if not d["seal"]["mb_s_per_core"] > 10: bad.append("seal rate")
if not d["read"]["mb_s"] > 0: bad.append("read rate")
if [l["level"] for l in lv] != [1]: bad.append("levels")
l = lv[0]
for k in ("ratio", "compress_mb_s_per_core", "decompress_mb_s_per_core", "pipeline_mb_s"):
    if not l[k] > 0: bad.append(k)
r = size / z
if abs(l["ratio"] - r) / r > 0.03: bad.append("ratio %.3f, zstd -1 %.3f" % (l["ratio"], r))
print(" ".join(bad) or "ok")
EOF
)
check "fields, sizes and rates sane; ratio that of zstd -1 ($want)" [ "$want" = ok ]

run_ferry "$O" "$E" bench pipeline "$WORK/rand/r" --level 3 --json --config "$NOCONF"
expect_rc 0 "$RC" "bench pipeline of random data"
r=$(json_get "$O" 'round(d["levels"][0]["ratio"], 3)')
check "random data does not compress (ratio $r)" [ "$r" = 1.0 ]

# ---- the default levels, the automatic choice; all -------------------------------
run_ferry "$O" "$E" bench pipeline "$WORK/bin" --json --config "$NOCONF"
expect_rc 0 "$RC" "bench pipeline (default levels)"
lv=$(json_get "$O" '[l["level"] for l in d["levels"]]')
check "the levels the automatic choice weighs ($lv)" [ "$lv" = "[0, 1, 2, 3, 5, 7, 9, 12, 15, 19]" ]
mono=$(json_get "$O" 'all(a["level"] >= b["level"] and a["link_bps"] < b["link_bps"] for a, b in zip(d["auto"], d["auto"][1:])) and len(d["auto"]) == 6')
check "the automatic level never lighter on a slower link" [ "$mono" = true ]
slow=$(json_get "$O" 'd["auto"][0]["level"]')
check "a 128 kbit/s link gets a strong level for binaries ($slow)" [ "$slow" -ge 9 ]
run_ferry "$O" "$E" bench pipeline "$WORK/rand" --level all --json --config "$NOCONF"
expect_rc 0 "$RC" "bench pipeline --level all"
lv=$(json_get "$O" '[l["level"] for l in d["levels"]] == list(range(1, 20))')
check "--level all: 1 to 19" [ "$lv" = true ]

# ---- workers from the config; no config ---------------------------------------
printf "[site]\ncode = CEN\nstore = %s\n[sender]\nworkers = 1\n" "$CEN_STORE" >"$WORK/one.conf"
run_ferry "$O" "$E" bench pipeline "$WORK/rand" --level 1 --json --config "$WORK/one.conf"
expect_rc 0 "$RC" "bench pipeline with workers = 1"
w=$(json_get "$O" 'd["workers"]')
check "the config's workers (1): $w" [ "$w" = 1 ]
if [ ! -e /etc/ferry/ferry.conf ]; then
	run_ferry "$O" "$E" bench pipeline "$WORK/rand" --level 1
	expect_rc 0 "$RC" "bench pipeline with no config at all"
fi

# ---- the human table ---------------------------------------------------------------
run_ferry "$O" "$E" bench pipeline "$WORK/bin" --level 3 --config "$NOCONF"
expect_rc 0 "$RC" "bench pipeline, a table"
expect_grep "the source read line" '^source read: +[0-9.]+ MB/s' "$O"
expect_grep "the XXH3 line" '^XXH3-128: +[0-9.]+ MB/s per core' "$O"
expect_grep "the level's row" '^ +3 +[0-9]\.[0-9]{3} +[0-9.]+ MB/s' "$O"
expect_grep "the automatic level's table" '^  128 kbit/s' "$O"

# ---- errors ---------------------------------------------------------------------------
run_ferry "$O" "$E" bench pipeline "$WORK/nothere" --config "$NOCONF"
expect_rc 1 "$RC" "no such path"
expect_grep "the missing path named" 'nothere' "$E"
run_ferry "$O" "$E" bench pipeline "$WORK/empty" --config "$NOCONF"
expect_rc 1 "$RC" "an empty tree"
expect_grep "an empty tree said" 'no bytes to measure' "$E"
run_ferry "$O" "$E" bench pipeline "$WORK/bin" --level 20 --config "$NOCONF"
expect_rc 2 "$RC" "--level 20"
run_ferry "$O" "$E" bench pipeline --config "$NOCONF"
expect_rc 2 "$RC" "no PATH"
run_ferry "$O" "$E" bench pipeline "$WORK/bin" --seconds 3 --config "$NOCONF"
expect_rc 2 "$RC" "--seconds is bench link's"
expect_grep "--seconds refused by name" 'bench link' "$E"
run_ferry "$O" "$E" bench frobnicate
expect_rc 2 "$RC" "an unknown bench command"
expect_grep "the unknown bench command named" 'frobnicate' "$E"
e2e_finish
