#!/usr/bin/env bash
# Restart time with 15 minutes of history for 1,000 nodes (BENCHMARKS.md
# section 7): fills a data directory through the collector's own journal
# (NODES x SERIES series, one point a second for SECONDS), starts the
# release collector on it and times it until Fleet.Snapshot lists every
# node; also the directory's size on disk per sample and the collector's
# RSS right then. See collector/examples/restart_time.rs for the method.
#
#   bench/restart.sh [NODES] [SERIES] [SECONDS]     # 1000 50 900
#
# Builds the release collector and the example first (cargo, release
# profile), then runs in a few minutes; the output is printed and saved as
# bench/results/restart-NODESxSERIESxSECONDS.txt. Needs free disk space of
# about 3.6 GiB under $TMPDIR (1,000 x 50 x 900) (removed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-1000}
series=${2:-50}
seconds=${3:-900}
out=bench/results/restart-${nodes}x${series}x${seconds}.txt
cargo build --release -p stacktop-collector --bin stacktop-collector --example restart_time
{
  echo "# $(date -u +%FT%TZ) $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg), $(git rev-parse --short HEAD)"
  echo "# bench/restart.sh $nodes $series $seconds"
  target/release/examples/restart_time "$nodes" "$series" "$seconds"
  echo "# done, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$out"
