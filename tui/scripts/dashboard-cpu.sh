#!/usr/bin/env bash
# The dashboard's CPU use while it watches a live fleet (issue #12: under
# 0.5 % of one core for 50 nodes streaming every second).
#
# Starts a collector on 127.0.0.1 (ephemeral port, temporary data dir), the
# collector's load generator (`stacktop-collector bench --collector`) with
# N simulated agents at a 1 s interval, and the real `stacktop` dashboard in
# a tmux session on a private socket; after a warm-up it reads the
# dashboard's utime+stime from /proc/PID/stat over SECONDS and prints the
# share of one core. Everything it started is stopped by PID (and that tmux
# server only) on exit.
#
# Usage: tui/scripts/dashboard-cpu.sh [AGENTS] [SECONDS]   (default 50 60)
# Needs: cargo build --release -p stacktop -p stacktop-collector, and tmux.
set -euo pipefail

agents=${1:-50}
seconds=${2:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${STACKTOP_BIN:-$root/target/release}
work=$(mktemp -d)
sock="$work/tmux.sock"
pids=()

cleanup() {
    tmux -S "$sock" kill-server 2>/dev/null || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$bin/stacktop-collector" --listen 127.0.0.1:0 --data-dir "$work/data" \
    2>"$work/collector.log" >/dev/null &
pids+=($!)
for _ in $(seq 100); do
    addr=$(grep -o 'listen=[0-9.:]*' "$work/collector.log" | head -1 | cut -d= -f2 || true)
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "${addr:-}" ] || { echo "the collector did not start; see $work/collector.log" >&2; exit 1; }
url="http://$addr"

"$bin/stacktop-collector" bench --collector "$url" --agents "$agents" --interval 1s \
    --warmup 5s --duration "$((seconds + 30))s" >"$work/bench.log" 2>&1 &
pids+=($!)

tmux -S "$sock" new-session -d -s cpu -x 120 -y 40 -- \
    "$bin/stacktop" --collector "$url" --log-file "$work/stacktop.log"
tmux -S "$sock" send-keys -t cpu 2
pid=$(tmux -S "$sock" display-message -p -t cpu '#{pane_pid}')

# Let the fleet fill up and the dashboard settle.
sleep 15
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks)
sleep "$seconds"
after=$(ticks)
nodes=$(tmux -S "$sock" capture-pane -p -t cpu | grep -c 'node0' || true)
awk -v t=$((after - before)) -v hz="$hz" -v s="$seconds" -v a="$agents" -v n="$nodes" 'BEGIN {
    printf "stacktop (nodes view, %d agents at 1 s, %d rows on screen): %.3f %% of one core over %d s (%d ticks)\n",
        a, n, 100 * t / hz / s, s, t
}'
