#!/bin/sh
# The tunnel comparison of issue 15: installs rathole and bore (once) into
# target/bench-tools (not committed), builds hookrelay and the bench in
# release, and runs `hookrelay-bench tunnel` (direct, hookrelay over gRPC
# and WebSocket, rathole, bore; all on 127.0.0.1) with any extra
# arguments, writing JSON and Markdown under crates/bench/results/.
#
#   crates/bench/tunnel-bench.sh                  # 3 rounds, 1 GiB bulk
#   crates/bench/tunnel-bench.sh --rounds 1 --bulk-mib 256
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS="$ROOT/target/bench-tools"
export CARGO_INCREMENTAL=0
# rathole: plain TCP only (its default features pull in OpenSSL for TLS,
# Noise and WebSocket, none of which this loopback comparison uses). Not
# --locked: its lock file pins time 0.3.29, which today's rustc refuses.
[ -x "$TOOLS/bin/rathole" ] ||
    cargo install --root "$TOOLS" rathole --no-default-features --features server,client
[ -x "$TOOLS/bin/bore" ] || cargo install --locked --root "$TOOLS" bore-cli
(cd "$ROOT" && cargo build --release -p hookrelay -p bench)
STAMP=$(date -u +%Y-%m-%dT%H%M)
"$ROOT/target/release/hookrelay-bench" \
    --json "$ROOT/crates/bench/results/tunnel-$STAMP.json" \
    --markdown "$ROOT/crates/bench/results/tunnel-$STAMP.md" \
    tunnel --tools "$TOOLS/bin" "$@"
