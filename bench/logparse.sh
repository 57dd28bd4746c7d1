#!/usr/bin/env bash
# BENCHMARKS.md table 4: access-log parsing, lines/s per core, stacktop vs
# GoAccess (Debian package `goaccess`) on the same generated combined log.
#
# stacktop: `stacktop-agent check-logs --format nginx-combined FILE --json`,
# the agent's own reader, line splitter and parser over the whole file with
# per-second counts by status class (what the agent turns a log into).
# GoAccess: `goaccess FILE --log-format=COMBINED -o report.json`, its
# parser and its panels (it also counts visitors, paths, agents...: more
# work per line, and the thing an operator would run instead).
# Each is run RUNS times, alternating; the file is in the page cache first.
# (GoAccess 1.7 takes about 20 CPU-seconds per million lines here.)
# CPU is user+sys from /usr/bin/time; lines/s per core = lines / CPU s.
#
#   bench/logparse.sh [LINES] [RUNS]          # 1000000 2
. "$(dirname "$0")/lib.sh"
need "$AGENT" /usr/bin/goaccess /usr/bin/time
lines=${1:-1000000}
runs=${2:-2}
log=$WORK/access.log
python3 "$ROOT/bench/gen-access-log.py" "$lines" "$log"
cat "$log" >/dev/null
echo "$lines lines, $(($(stat -c %s "$log") / 1048576)) MiB; goaccess $(goaccess --version | head -1)"
echo "load average before: $(loadavg)"
printf '%-9s %4s %8s %8s %8s %9s %14s %10s\n' TOOL RUN WALL_S USER_S SYS_S MAX_RSS_MiB LINES/S/CORE LOADAVG1
measure() {
  local tool=$1 run=$2; shift 2
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@" >"$WORK/$tool.out" 2>"$WORK/$tool.err" ||
    { echo "$tool failed:"; tail -5 "$WORK/$tool.err"; exit 1; }
  read -r wall user sys maxrss <"$WORK/time"
  awk -v t="$tool" -v r="$run" -v w="$wall" -v u="$user" -v s="$sys" -v m="$maxrss" -v n="$lines" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
    'BEGIN { printf "%-9s %4d %8.2f %8.2f %8.2f %9.1f %14.0f %10s\n", t, r, w, u, s, m / 1024, n / (u + s), l }'
}
# stacktop takes a fraction of a second per pass, close to /usr/bin/time's
# 10 ms resolution, so it makes five passes per run to GoAccess' one.
for run in $(seq "$runs"); do
  for _ in 1 2 3 4 5; do
    measure stacktop "$run" "$AGENT" check-logs --format nginx-combined "$log" --json
  done
  measure goaccess "$run" goaccess "$log" --log-format=COMBINED --no-global-config -o "$WORK/report.json"
done | tee "$WORK/rows"
# Over all passes: lines / total CPU seconds.
awk -v n="$lines" '{ cpu[$1] += $4 + $5; k[$1]++ }
  END { for (t in cpu) printf "%s: %d passes, %.0f lines/s per core (all passes: lines / user+sys)\n", t, k[t], n * k[t] / cpu[t] }' "$WORK/rows" | sort
# Both must have understood every line.
python3 - "$WORK/stacktop.out" "$lines" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["lines"] == int(sys.argv[2]) and r["malformed"] == 0, (r["lines"], r["malformed"])
print("stacktop: %d lines, %d malformed" % (r["lines"], r["malformed"]))
PY
python3 - "$WORK/report.json" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))["general"]
print("goaccess: %s requests, %s valid, %s failed" % (g.get("total_requests"), g.get("valid_requests"), g.get("failed_requests")))
PY
echo "load average after: $(loadavg)"
