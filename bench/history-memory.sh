#!/usr/bin/env bash
# BENCHMARKS.md table 3: history memory per sample and per node-hour.
#
# Method: a release collector with a HISTORY window is loaded by
# `stacktop-collector bench` (AGENTS agents x ~50 series every 1 s). Until
# the first points age out nothing is pruned, so every point ingested is
# still held: the collector's RSS growth between two instants divided by
# the points it ingested in between (its own counter,
# stacktop_collector_points_total on /metrics) is the memory one stored
# sample costs, ring-buffer slack and the ingest journal's in-memory share
# included. After the window, RSS should level off (pruning keeps it
# bounded); the last rows show it.
#
#   bench/history-memory.sh [AGENTS] [HISTORY-SECONDS]     # 1000 240
. "$(dirname "$0")/lib.sh"
need "$COLLECTOR"
agents=${1:-1000}
history=${2:-240}
run=$((history + 60))
grpc=$(free_port)
metrics=$(free_port)
"$COLLECTOR" --listen 127.0.0.1:"$grpc" --metrics-listen 127.0.0.1:"$metrics" \
  --data-dir "$WORK/data" --history "${history}s" --max-agents $((agents + 100)) \
  2>"$WORK/collector.log" &
collector=$!
own "$collector"
wait_port "$grpc"
"$COLLECTOR" bench --collector "http://127.0.0.1:$grpc" --collector-pid "$collector" \
  --agents "$agents" --agents-per-connection 10 --warmup 5s --duration "$((run - 5))s" \
  >"$WORK/bench.out" 2>&1 &
bench=$!
own "$bench"
start=$(now_s)
metric() {
  curl -s "http://127.0.0.1:$metrics/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v }'
}
echo "load average before: $(loadavg)"
printf '%6s %10s %12s %10s %14s\n' SECONDS RSS_KiB POINTS SERIES LOADAVG1
rows=()
while kill -0 "$bench" 2>/dev/null; do
  t=$(awk -v a="$start" -v b="$(now_s)" 'BEGIN { printf "%.0f", b - a }')
  read -r rss _ < <(rss_pss "$collector")
  points=$(metric stacktop_collector_points_total)
  series=$(metric stacktop_collector_series)
  l1=$(cut -d' ' -f1 /proc/loadavg)
  printf '%6s %10s %12.0f %10.0f %14s\n' "$t" "$rss" "$points" "$series" "$l1"
  rows+=("$t $rss $points $series")
  sleep 10
done
cat "$WORK/bench.out"
# The slope over the part of the run where nothing was pruned yet: from 30 s
# in (past start-up allocations) to 10 s before the window ends.
printf '%s\n' "${rows[@]}" | awk -v h="$history" -v agents="$agents" '
  $1 >= 30 && a == "" { a = $0; split($0, A) }
  $1 <= h - 10 { b = $0; split($0, B) }
  END {
    dp = B[3] - A[3]; dr = (B[2] - A[2]) * 1024
    series = B[4] / agents
    printf "window %s-%s s: RSS +%.1f MiB for %.0f points ingested and held\n", A[1], B[1], dr / 1048576, dp
    printf "bytes per stored sample: %.1f\n", dr / dp
    printf "series per node: %.1f; per node-hour at 1 s: %.0f samples = %.2f MiB\n", series, series * 3600, dr / dp * series * 3600 / 1048576
  }'
echo "load average after: $(loadavg)"
