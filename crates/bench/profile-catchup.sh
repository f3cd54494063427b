#!/bin/sh
# Profiles the relay during a catch-up (issue 13): runs `hookrelay-bench
# catchup` with a phase hook that attaches `perf record -F 499 -g` to the
# relay when the returning agent starts and stops it once every event
# arrived, then prints the top of the report (children, then self).
#
#   cargo build --release -p hookrelay -p bench
#   crates/bench/profile-catchup.sh [EVENTS] [OUT_DIR] [-- bench flags before the scenario]
set -eu
EVENTS=${1:-20000}
OUT=${2:-/tmp/hookrelay-profile-catchup}
shift 2 2>/dev/null || shift $#
BIN=$(cd "$(dirname "$0")/../.." && pwd)/target/release
mkdir -p "$OUT"
rm -f "$OUT/perf.data" "$OUT/perf.pid"
cat >"$OUT/phase-hook" <<HOOK
#!/bin/sh
case "\$1" in
    start) perf record -F 499 -g -o "$OUT/perf.data" -p "\$2" >/dev/null 2>&1 &
           echo \$! >"$OUT/perf.pid" ;;
    stop) [ -f "$OUT/perf.pid" ] && kill -INT "\$(cat "$OUT/perf.pid")" ;;
esac
HOOK
chmod +x "$OUT/phase-hook"
HOOKRELAY_BENCH_PHASE_HOOK="$OUT/phase-hook" "$BIN/hookrelay-bench" "$@" \
    catchup --transport grpc --events "$EVENTS" | tee "$OUT/catchup.txt"
# perf writes its file when it exits after the INT.
while [ -f "$OUT/perf.pid" ] && kill -0 "$(cat "$OUT/perf.pid")" 2>/dev/null; do sleep 1; done
perf report -i "$OUT/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null | grep -v '^$' | head -60 >"$OUT/self.txt"
perf report -i "$OUT/perf.data" --children --sort sym --stdio -g none 2>/dev/null | grep -v '^$' | head -60 >"$OUT/children.txt"
cat "$OUT/self.txt"
