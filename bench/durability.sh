#!/usr/bin/env bash
# What "acked means durable" costs the collector: the same load twice, back
# to back, once with its ingest journal (the default: a batch is
# acknowledged once it is in the durable store, group-committed) and once
# with --memory-only (acknowledged at once, lost on a crash): samples/s
# acknowledged, the collector's CPU and memory, and sample -> Watch latency.
#
# Usage: bench/durability.sh [AGENTS] [DURATION]   (default 1000 30s)
# Needs target/release/stacktop-collector (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
agents=${1:-1000}
duration=${2:-30s}
bin=target/release/stacktop-collector
[[ -x $bin ]] || { echo "build it first: cargo build --release -p stacktop-collector" >&2; exit 1; }
echo "# $(date -u +%FT%TZ) $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in durable memory-only; do
  flags=()
  [[ $mode == memory-only ]] && flags=(--memory-only)
  "$bin" bench --agents "$agents" --series 50 --watchers 1 --warmup 10s --duration "$duration" "${flags[@]}"
done
