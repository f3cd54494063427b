#!/bin/sh
# Profiles the tunnel path (issue 15): `hookrelay-bench tunnel` over gRPC
# without the peers, with the relay and the `hookrelay tunnel` agent each
# under valgrind --tool=callgrind (instruction counts: independent of the
# machine's load), counting only the measured rounds, then prints the top
# functions of each, inclusive and exclusive.
#
#   cargo build --release -p hookrelay -p bench
#   crates/bench/profile-tunnel.sh [OUT_DIR] [extra hookrelay-bench tunnel args]
set -eu
OUT=${1:-/tmp/hookrelay-profile-tunnel}
[ $# -gt 0 ] && shift
BIN=$(cd "$(dirname "$0")/../.." && pwd)/target/release
RELAY=${HOOKRELAY_BIN:-$BIN/hookrelay}
mkdir -p "$OUT"
rm -f "$OUT"/callgrind.*
for who in relay agent; do
    printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s/callgrind.%s.%%p %s "$@"\n' \
        "$OUT" "$who" "$RELAY" >"$OUT/$who-under-callgrind"
done
cat >"$OUT/phase-hook" <<'HOOK'
#!/bin/sh
case "$1" in
    start) callgrind_control -z >/dev/null 2>&1 & ;;
    stop) callgrind_control -d >/dev/null 2>&1 ;;
esac
HOOK
chmod +x "$OUT"/*-under-* "$OUT/phase-hook"
HOOKRELAY_BENCH_PHASE_HOOK="$OUT/phase-hook" "$BIN/hookrelay-bench" \
    --server-bin "$OUT/relay-under-callgrind" --agent-bin "$OUT/agent-under-callgrind" \
    tunnel --no-peers --transport grpc --rounds 1 --connections 8 --seconds 5 \
    --sequential 300 --fresh 200 --bulk-mib 16 "$@" | tee "$OUT/tunnel-under-callgrind.txt"
for f in "$OUT"/callgrind.relay.*.1 "$OUT"/callgrind.agent.*.1; do
    [ -f "$f" ] || continue
    echo "== $f (inclusive)"
    callgrind_annotate --inclusive=yes "$f" 2>/dev/null | sed -n '/PROGRAM TOTALS/,$p' | head -60
    echo "== $f (exclusive)"
    callgrind_annotate "$f" 2>/dev/null | sed -n '/PROGRAM TOTALS/,$p' | head -40
done >"$OUT/callgrind-top.txt"
echo "callgrind summaries in $OUT/callgrind-top.txt"
