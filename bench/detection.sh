#!/usr/bin/env bash
# BENCHMARKS.md table 5: failure detection, stacktop vs Prometheus, both
# with their defaults, real processes on 127.0.0.1.
#
# stacktop: a release collector (built-in rules: `node-down` fires as soon
# as a node is down, i.e. its agent silent for 3 intervals; `check-failed`
# after a check is crit for 10 s) and two agents at 1 s: one is SIGKILLed
# (time to `stacktop_node_up 0` and to a firing `node-down` on /metrics);
# the other runs a TCP check (default 5 s interval) against a listener this
# script then kills (time to `stacktop_check_status` crit and to a firing
# `check-failed`). TRIALS trials each, polled every 0.1 s.
#
# Prometheus (Debian `prometheus`) with its defaults (scrape_interval and
# evaluation_interval 1m, no `for`) scraping a node_exporter (Debian
# `prometheus-node-exporter`) that is SIGKILLed at the same moment as the
# first stacktop agent: time to `up == 0` in a query and to the firing
# alert `up == 0`. One trial (it takes up to two minutes); the expected
# values follow from the defaults (printed).
#
#   bench/detection.sh [TRIALS]             # 5
. "$(dirname "$0")/lib.sh"
need "$AGENT" "$COLLECTOR" /usr/bin/prometheus /usr/bin/prometheus-node-exporter
trials=${1:-5}
grpc=$(free_port); metrics=$(free_port); nodeexp=$(free_port); prom=$(free_port)
M=http://127.0.0.1:$metrics/metrics
P=http://127.0.0.1:$prom

"$COLLECTOR" --listen 127.0.0.1:"$grpc" --metrics-listen 127.0.0.1:"$metrics" \
  --data-dir "$WORK/collector" 2>"$WORK/collector.log" &
own $!
wait_port "$grpc"

/usr/bin/prometheus-node-exporter --web.listen-address=127.0.0.1:"$nodeexp" 2>"$WORK/node.log" &
nodeexp_pid=$!
own "$nodeexp_pid"
mkdir -p "$WORK/prom"
cat >"$WORK/prom/prometheus.yml" <<YML
# Defaults: scrape_interval 1m, evaluation_interval 1m, scrape_timeout 10s.
rule_files: [rules.yml]
scrape_configs:
  - job_name: node
    static_configs: [{ targets: ["127.0.0.1:$nodeexp"] }]
YML
cat >"$WORK/prom/rules.yml" <<YML
groups:
  - name: down
    rules:
      - alert: InstanceDown
        expr: up == 0
YML
/usr/bin/prometheus --config.file="$WORK/prom/prometheus.yml" --storage.tsdb.path="$WORK/prom/data" \
  --web.listen-address=127.0.0.1:"$prom" 2>"$WORK/prom.log" &
own $!
wait_port "$prom"

# An agent named $1 at 1 s with config file $2 (its own spool); prints its PID.
agent() {
  { printf 'spool-dir = "%s"\n' "$WORK/spool-$1"; cat "$2"; } >"$2.full"
  "$AGENT" --collector "http://127.0.0.1:$grpc" --name "$1" --interval 1s --config "$2.full" \
    --log-level warn >/dev/null 2>>"$WORK/agents.log" &
  echo $!
}
# Waits (polling every 0.1 s, at most $2 s) until $1 succeeds; prints the
# seconds since $3 (or "timeout").
until_true() {
  local cond=$1 limit=$2 since=$3 t
  while :; do
    t=$(awk -v a="$since" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }')
    if eval "$cond" >/dev/null 2>&1; then echo "$t"; return; fi
    if awk -v t="$t" -v l="$limit" 'BEGIN { exit !(t > l) }'; then echo timeout; return; fi
    sleep 0.1
  done
}
scrape() { curl -sf "$M"; }
node_down() { scrape | grep "^stacktop_node_up{node=\"$1\"[^}]*} 0" >/dev/null; }
firing() { scrape | grep "^stacktop_alerts{" | grep "alertname=\"$1\"" | grep "node=\"$2\"" | grep 'state="firing"' >/dev/null; }
check_crit() { scrape | grep "^stacktop_check_status{" | grep "node=\"$1\"" | grep '} 2' >/dev/null; }
prom_q() { curl -sf --get "$P/api/v1/query" --data-urlencode "query=$1"; }

echo "load average before: $(loadavg)"
echo "waiting for Prometheus' first scrape of node_exporter (up to 1m, its default interval)"
t0=$(now_s)
[[ $(until_true "prom_q 'up == 1' | grep '\"value\"'" 90 "$t0") != timeout ]] || { echo "Prometheus never scraped"; exit 1; }

printf '%-44s %5s %10s %10s %8s\n' WHAT TRIAL DETECTED_S ALERT_S LOADAVG1
for trial in $(seq "$trials"); do
  name=killed-$trial
  printf 'checks = []\n' >"$WORK/none-$trial.toml"
  pid=$(agent "$name" "$WORK/none-$trial.toml")
  own "$pid"
  until_true "scrape | grep '^stacktop_node_up{node=\"$name\"[^}]*} 1'" 20 "$(now_s)" >/dev/null
  sleep 2
  kill_at=$(now_s)
  kill -9 "$pid"
  if [[ $trial == 1 ]]; then
    kill -9 "$nodeexp_pid"
    # Prometheus is watched from now on, beside the stacktop trials.
    until_true "prom_q 'up == 0' | grep '\"value\"'" 200 "$kill_at" >"$WORK/prom-down" &
    own $!
    prom_pollers=$!
    until_true "curl -sf $P/api/v1/alerts | grep '\"state\":\"firing\"'" 200 "$kill_at" >"$WORK/prom-alert" &
    own $!
    prom_pollers="$prom_pollers $!"
  fi
  down=$(until_true "node_down $name" 30 "$kill_at")
  alert=$(until_true "firing node-down $name" 30 "$kill_at")
  printf '%-44s %5d %10s %10s %8s\n' "stacktop: agent SIGKILLed -> down, node-down" "$trial" "$down" "$alert" "$(cut -d' ' -f1 /proc/loadavg)"
done

for trial in $(seq "$trials"); do
  name=checked-$trial
  port=$(free_port)
  python3 -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); time.sleep(3600)' "$port" &
  listener=$!
  own "$listener"
  printf '[[checks]]\nkind = "tcp"\naddress = "127.0.0.1:%s"\n' "$port" >"$WORK/tcp-$trial.toml"
  pid=$(agent "$name" "$WORK/tcp-$trial.toml")
  own "$pid"
  until_true "scrape | grep '^stacktop_check_status{' | grep 'node=\"$name\"' | grep '} 0'" 30 "$(now_s)" >/dev/null
  # A random phase against the check's 5 s interval.
  sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.1f", r % 50 / 10 }')"
  kill_at=$(now_s)
  kill -9 "$listener"
  crit=$(until_true "check_crit $name" 30 "$kill_at")
  alert=$(until_true "firing check-failed $name" 40 "$kill_at")
  printf '%-44s %5d %10s %10s %8s\n' "stacktop: TCP check target killed -> crit, check-failed" "$trial" "$crit" "$alert" "$(cut -d' ' -f1 /proc/loadavg)"
  kill -9 "$pid"
done

for pid in $prom_pollers; do wait "$pid" || true; done
down=$(cat "$WORK/prom-down"); alert=$(cat "$WORK/prom-alert")
printf '%-44s %5d %10s %10s %8s\n' "Prometheus: node_exporter SIGKILLed -> up==0, alert" 1 "$down" "$alert" "$(cut -d' ' -f1 /proc/loadavg)"
echo "Prometheus' defaults: the next scrape (0-60 s, mean 30) sees it down; the next rule evaluation"
echo "after that (0-60 s more) fires an alert without 'for': expected 30 s / 60 s, worst 60 s / 120 s;"
echo "the documented InstanceDown example ('for: 5m') adds 300 s."
echo "load average after: $(loadavg)"
