# Shared by the bench/*.sh scripts (sourced, not run): where the binaries
# are, free loopback ports, per-process CPU and memory from /proc, and a
# cleanup that stops only the processes the script itself started.
#
# Every script binds 127.0.0.1 only and keeps its files under one temporary
# directory ($WORK), removed on exit.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Release binaries: `cargo build --release -p stacktop-agent -p stacktop-collector`.
BIN=${BIN:-$ROOT/target/release}
AGENT=${AGENT:-$BIN/stacktop-agent}
COLLECTOR=${COLLECTOR:-$BIN/stacktop-collector}
WORK=$(mktemp -d /tmp/stacktop-bench.XXXXXX)
TICKS=$(getconf CLK_TCK)
PIDS=()

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Remembers a PID this script started, for cleanup.
own() { PIDS+=("$1"); }

need() {
  local f
  for f in "$@"; do
    [[ -x $f ]] || { echo "missing $f (build: cargo build --release -p stacktop-agent -p stacktop-collector; apt-get install the peer)" >&2; exit 2; }
  done
}

# A free port on 127.0.0.1 (bound and released).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until 127.0.0.1:PORT accepts connections (at most 20 s).
wait_port() {
  local i
  for i in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# utime+stime of PID, in clock ticks.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# Resident and proportional set size of PID, KiB: "RSS PSS".
rss_pss() {
  awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } END { print r, p }' "/proc/$1/smaps_rollup"
}

# Seconds since the epoch with milliseconds.
now_s() { date +%s.%N | cut -c1-14; }
