#!/usr/bin/env bash
# What TLS costs the collector: the same load twice, back to back, once in
# plaintext and once over TLS (a throw-away CA; `stacktop-collector bench
# --tls`): the collector's CPU while the agents' connections are opened
# (the handshakes) and while it ingests, and sample -> Watch latency.
#
# Usage: bench/tls-vs-plaintext.sh [AGENTS] [DURATION]   (default 1000 30s)
# Needs target/release/stacktop-collector (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
agents=${1:-1000}
duration=${2:-30s}
bin=target/release/stacktop-collector
[[ -x $bin ]] || { echo "build it first: cargo build --release -p stacktop-collector" >&2; exit 1; }
echo "# $(date -u +%FT%TZ) $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in plaintext tls; do
  flags=()
  [[ $mode == tls ]] && flags=(--tls)
  "$bin" bench --agents "$agents" --series 50 --watchers 1 --warmup 10s --duration "$duration" "${flags[@]}"
done
