#!/usr/bin/env bash
# BENCHMARKS.md table 2: collector ingest. `stacktop-collector bench` starts
# a release collector as its own process (so its CPU and memory are its
# own), connects N simulated agents (each a real Ingest stream sending ~50
# series every second) and measures, per Watch subscriber count, the
# samples/s acknowledged and the sample -> Watch latency.
#
#   bench/ingest.sh [AGENTS] [AGENTS-PER-CONNECTION] [WATCHERS]
#   bench/ingest.sh 5000 1 1,10,100        # defaults
#   bench/ingest.sh 10000 10 1,10
. "$(dirname "$0")/lib.sh"
need "$COLLECTOR"
agents=${1:-5000}
per=${2:-1}
watchers=${3:-1,10,100}
echo "load average before: $(loadavg)"
"$COLLECTOR" bench --agents "$agents" --agents-per-connection "$per" \
  --watchers "$watchers" --warmup 10s --duration 30s
echo "load average after: $(loadavg)"
