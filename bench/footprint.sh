#!/usr/bin/env bash
# BENCHMARKS.md table 1: the agent's footprint next to Prometheus'
# node_exporter (Debian `prometheus-node-exporter`), same sampler, same
# window.
#
# A release collector on 127.0.0.1; each agent binary given (default: the
# release build) streams to it every 1 s with its default checks (those of
# the roles it detects, and `exposure`); a node_exporter with its default
# collectors is scraped once a second (by a small Python loop, not
# measured). After a warm-up, every process is sampled every 5 s for
# WINDOW seconds: RSS and PSS from /proc/PID/smaps_rollup (mean and max),
# CPU from utime+stime over the window, in % of one core.
#
#   bench/footprint.sh [WINDOW] [LABEL=AGENT-BINARY ...]    # 120 agent=target/release/stacktop-agent
. "$(dirname "$0")/lib.sh"
window=${1:-120}
shift || true
agents=("$@")
[[ ${#agents[@]} -gt 0 ]] || agents=("agent=$AGENT")
need "$COLLECTOR" /usr/bin/prometheus-node-exporter
grpc=$(free_port); nodeexp=$(free_port)

"$COLLECTOR" --listen 127.0.0.1:"$grpc" --data-dir "$WORK/collector" 2>"$WORK/collector.log" &
own $!
wait_port "$grpc"

labels=(); pids=()
for spec in "${agents[@]}"; do
  label=${spec%%=*}; bin=${spec#*=}
  need "$bin"
  "$bin" --collector "http://127.0.0.1:$grpc" --name "footprint-$label" --interval 1s \
    --log-level warn 2>"$WORK/$label.log" &
  own $!
  labels+=("$label"); pids+=($!)
done
/usr/bin/prometheus-node-exporter --web.listen-address=127.0.0.1:"$nodeexp" 2>"$WORK/node.log" &
own $!
labels+=(node_exporter); pids+=($!)
wait_port "$nodeexp"
python3 - "http://127.0.0.1:$nodeexp/metrics" "$WORK/scrapes" <<'PY' &
import sys, time, urllib.request
url, out = sys.argv[1], sys.argv[2]
n, nxt = 0, time.monotonic()
while True:
    urllib.request.urlopen(url).read()
    n += 1
    open(out, "w").write(str(n))
    nxt += 1.0
    time.sleep(max(0.0, nxt - time.monotonic()))
PY
own $!

echo "agents: ${agents[*]}; node_exporter $(/usr/bin/prometheus-node-exporter --version 2>&1 | awk 'NR==1 { print $3 }')"
echo "warm-up 20 s, then $window s; load average before: $(loadavg)"
sleep 20
declare -A t0 rss pss rmax n
for i in "${!pids[@]}"; do t0[$i]=$(cpu_ticks "${pids[$i]}"); rss[$i]=0; pss[$i]=0; rmax[$i]=0; n[$i]=0; done
scrapes0=$(cat "$WORK/scrapes")
start=$(now_s)
loads=()
for _ in $(seq $((window / 5))); do
  sleep 5
  for i in "${!pids[@]}"; do
    read -r r p < <(rss_pss "${pids[$i]}")
    rss[$i]=$((rss[$i] + r)); pss[$i]=$((pss[$i] + p)); n[$i]=$((n[$i] + 1))
    ((r > rmax[$i])) && rmax[$i]=$r
  done
  loads+=("$(cut -d' ' -f1 /proc/loadavg)")
done
elapsed=$(awk -v a="$start" -v b="$(now_s)" 'BEGIN { print b - a }')
echo "node_exporter scraped $(($(cat "$WORK/scrapes") - scrapes0)) times in ${elapsed%.*} s; 1-min load average during the window: ${loads[*]}"
printf '%-16s %10s %10s %10s %10s\n' PROCESS RSS_MiB MAX_RSS PSS_MiB CPU_%
for i in "${!pids[@]}"; do
  t1=$(cpu_ticks "${pids[$i]}")
  awk -v l="${labels[$i]}" -v r="${rss[$i]}" -v p="${pss[$i]}" -v m="${rmax[$i]}" -v n="${n[$i]}" \
      -v d=$((t1 - t0[$i])) -v hz="$TICKS" -v e="$elapsed" \
    'BEGIN { printf "%-16s %10.2f %10.2f %10.2f %10.3f\n", l, r / n / 1024, m / 1024, p / n / 1024, d / hz / e * 100 }'
done
echo "load average after: $(loadavg)"
