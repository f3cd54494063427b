#!/bin/sh
# Profiles the end-to-end path with one request in flight (issue 7):
# runs `hookrelay-bench e2e` with the relay and the agent each under
# valgrind --tool=callgrind (instruction counts: independent of the
# machine's load), counting only the measured phase, then prints the top
# functions of each, inclusive and exclusive. Then (unless NO_STRACE=1) a
# second, unprofiled run with `strace -f -T -e fsync,fdatasync` on the
# relay, for the time spent waiting on the disk.
#
#   cargo build --release -p hookrelay -p bench
#   crates/bench/profile-e2e.sh [ROUNDS] [OUT_DIR]
set -eu
ROUNDS=${1:-300}
OUT=${2:-/tmp/hookrelay-profile}
BIN=$(cd "$(dirname "$0")/../.." && pwd)/target/release
# The relay binary to profile (default: the one built beside the bench).
RELAY=${HOOKRELAY_BIN:-$BIN/hookrelay}
mkdir -p "$OUT"
rm -f "$OUT"/callgrind.* "$OUT"/strace.*

for who in relay agent; do
    printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s/callgrind.%s.%%p %s "$@"\n' \
        "$OUT" "$who" "$RELAY" >"$OUT/$who-under-callgrind"
done
# Counters are zeroed when the measured phase starts and dumped when it
# ends (callgrind.*.1), so setup (bcrypt of the admin secret and of the
# agent token) stays out.
cat >"$OUT/phase-hook" <<'EOF'
#!/bin/sh
case "$1" in
    start) callgrind_control -z >/dev/null 2>&1 & ;;
    stop) callgrind_control -d >/dev/null 2>&1 ;;
esac
EOF
chmod +x "$OUT"/*-under-* "$OUT/phase-hook"

HOOKRELAY_BENCH_PHASE_HOOK="$OUT/phase-hook" "$BIN/hookrelay-bench" \
    --server-bin "$OUT/relay-under-callgrind" --agent-bin "$OUT/agent-under-callgrind" \
    e2e --transport grpc --sequential "$ROUNDS" --rates 10 --seconds 1 | tee "$OUT/e2e-under-callgrind.txt"

for f in "$OUT"/callgrind.relay.*.1 "$OUT"/callgrind.agent.*.1; do
    echo "== $f (inclusive)"
    callgrind_annotate --inclusive=yes "$f" 2>/dev/null | sed -n '/PROGRAM TOTALS/,$p' | head -80
    echo "== $f (exclusive)"
    callgrind_annotate "$f" 2>/dev/null | sed -n '/PROGRAM TOTALS/,$p' | head -45
done >"$OUT/callgrind-top.txt"
echo "callgrind summaries in $OUT/callgrind-top.txt"

if [ "${NO_STRACE:-0}" != 1 ]; then
    # strace attaches to the relay once it printed its pid (on stderr), and
    # ends with it.
    "$BIN/hookrelay-bench" --agent-bin "$RELAY" --server-bin "$RELAY" \
        e2e --transport grpc --sequential "$ROUNDS" --rates 10 --seconds 1 \
        >"$OUT/e2e-under-strace.txt" 2>"$OUT/e2e-under-strace.err" &
    bench=$!
    pid=
    for _ in $(seq 100); do
        pid=$(sed -n 's/.*(relay pid \([0-9]*\) at.*/\1/p' "$OUT/e2e-under-strace.err" | head -1)
        [ -n "$pid" ] && break
        sleep 0.1
    done
    timeout 300 strace -f -T -tt -e trace=fsync,fdatasync -o "$OUT/strace.relay" -p "$pid" 2>/dev/null &
    wait "$bench"
    wait
    cat "$OUT/e2e-under-strace.txt"
    echo "fsync/fdatasync calls of the relay (whole run, under strace):"
    grep -hE 'f(data)?sync\(' "$OUT"/strace.relay* | sed -E 's/.*<([0-9.]+)>$/\1/' |
        awk '{n++; s+=$1} END {printf "%d calls, %.3f s, mean %.3f ms\n", n, s, n ? s/n*1000 : 0}'
fi
