#!/bin/bash
# test_fdlimit.sh - a tree whose segments hold thousands of small files
# (8 MiB of 1 KiB files is 8,000 files) goes through with an open-file
# limit of 200, hard and soft, on both sides: the hashing pass, the
# sender's reads, the receiver's writes and `ferry verify` each hold a
# bounded number of files open, never a segment's worth. (The usual soft
# limit is 1,024; before, a real tree such as /usr/include failed with
# "Too many open files".)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init test_fdlimit

REAL=$FERRY
FERRY=$WORK/ferry-limited
cat >"$FERRY" <<EOS
#!/bin/bash
ulimit -Sn 200 && ulimit -Hn 200 || exit 99
exec "$REAL" "\$@"
EOS
chmod +x "$FERRY"

PKG=$WORK/src/many
mkdir -p "$PKG/small" "$PKG/big"
python3 - "$PKG/small" <<'EOP'
import os, sys
d = sys.argv[1]
for i in range(3000):
    sub = os.path.join(d, "d%02d" % (i % 30))
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "f%04d.txt" % i), "wb") as f:
        f.write((b"file %d " % i) * 120)
EOP
binary_data "$PKG/big/blob.bin" $((20 * 1024 * 1024))
log "package: $(find "$PKG" -type f | wc -l) files, $(du -sh "$PKG" | cut -f1)"
start_serve

run_ferry "$WORK/s.out" "$WORK/s.err" send "$PKG" --to LAB --name many --config "$CEN_CONF"
expect_rc 0 "$RC" "send of 3,000 small files under an open-file limit of 200"
expect_one_attempt "$WORK/s.err"
compare_trees "$PKG" "$LAB_STORE/packages/many" "the tree"
check "no 'Too many open files' anywhere" \
	bash -c "! grep -q 'Too many open files' '$WORK/s.err' '$SERVE_LOG'"
run_ferry "$WORK/v.out" "$WORK/v.err" verify many --config "$LAB_CONF"
expect_rc 0 "$RC" "ferry verify under the same limit"

# compressed, so the sender's workers and the receiver's decompression
# run too
run_ferry "$WORK/z.out" "$WORK/z.err" send "$PKG" --to LAB --name many-z --level 3 \
	--config "$CEN_CONF"
expect_rc 0 "$RC" "the same, compressed"
expect_one_attempt "$WORK/z.err"
compare_trees "$PKG" "$LAB_STORE/packages/many-z" "the compressed tree"

e2e_finish
