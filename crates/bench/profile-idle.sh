#!/bin/sh
# Where the relay's memory per idle agent goes (issue 7): runs
# `hookrelay-bench idle` with the relay under valgrind --tool=massif and
# prints the heap tree of the peak snapshot (all agents connected).
#
#   cargo build --release -p hookrelay -p bench
#   crates/bench/profile-idle.sh [AGENTS] [grpc|ws] [OUT_DIR]
set -eu
AGENTS=${1:-300}
TRANSPORT=${2:-grpc}
OUT=${3:-/tmp/hookrelay-massif}
BIN=$(cd "$(dirname "$0")/../.." && pwd)/target/release
# The relay binary to profile (default: the one built beside the bench).
RELAY=${HOOKRELAY_BIN:-$BIN/hookrelay}
mkdir -p "$OUT"
rm -f "$OUT"/massif.*
printf '#!/bin/sh\nexec valgrind --tool=massif --depth=40 --threshold=0.5 --massif-out-file=%s/massif.%s.%%p %s "$@"\n' \
    "$OUT" "$TRANSPORT" "$RELAY" >"$OUT/relay-under-massif"
chmod +x "$OUT/relay-under-massif"
"$BIN/hookrelay-bench" --server-bin "$OUT/relay-under-massif" \
    idle --agents "$AGENTS" --transport "$TRANSPORT" | tee "$OUT/idle-under-massif.txt"
for f in "$OUT"/massif."$TRANSPORT".*; do
    ms_print --threshold=0.5 "$f" >"$f.txt"
    echo "peak heap tree in $f.txt"
done
