# shellcheck shell=bash disable=SC2034
# Shared by lab/up, lab/down, lab/fault, lab/status and lab/traffic: the
# topology, where the lab's state lives, and how one component is started,
# found and stopped. Sourced, never run.
#
# Safety rules every function here keeps:
#   - every daemon binds 127.0.0.0/8 only, with its own config, pid file,
#     sockets and data inside "$LAB" (never /etc/<daemon>, /var/lib/mysql...);
#   - every daemon runs in its own session (setsid), its PID and start time
#     are recorded in "$LAB/run/NAME.pid", and it is only ever signalled
#     through that record (never by process name).

LAB_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$LAB_SRC/.." && pwd)"
STATE_FILE="${STACKTOP_LAB_STATE:-/tmp/stacktop-lab.state}"

# ---- topology ---------------------------------------------------------------
LB_ADDR=127.0.0.10
LB_PORT=8080          # HAProxy frontend (the site)
LB_STATS_PORT=8404    # HAProxy stats page: /stats and /stats;csv
WEB_PORT=8080         # nginx on each web node
APP_PORT=9000         # the app server on each web node
DB_PORT=3306
DB1_ADDR=127.0.0.21
DB2_ADDR=127.0.0.22
DNS_ADDR=127.0.0.30
DNS_PORT=5353
SITE_NAME=www.stacktop.test
COLLECTOR_ADDR=127.0.0.1
WEBS=(1 2 3)

# MariaDB accounts the lab creates (lab only; loopback only).
DB_MON_USER=stacktop DB_MON_PASS=stacktop   # monitoring (the agents' db checks)
DB_APP_USER=app DB_APP_PASS=app             # the app's /health SELECT 1
DB_REPL_USER=repl DB_REPL_PASS=repl         # replication db2 <- db1
# The lab's own admin: unix-socket auth as the OS user running the lab
# (root, or e.g. `nobody`; mariadb-install-db --auth-root-socket-user).
DB_ADMIN_USER="$(id -un)"

web_addr() { echo "127.0.0.1$1"; }

PY="${STACKTOP_LAB_PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x /usr/bin/python3 ]]; then PY=/usr/bin/python3; else PY="$(command -v python3 || true)"; fi
fi

log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[lab] error: %s\n' "$*" >&2; exit 1; }

# ---- where the lab is ---------------------------------------------------------
# Sets LAB to the running lab's directory; returns 1 when there is none.
find_lab() {
  if [[ -n "${STACKTOP_LAB_DIR:-}" ]]; then
    LAB="$STACKTOP_LAB_DIR"
  elif [[ -f "$STATE_FILE" ]]; then
    LAB="$(sed -n 's/^LAB=//p' "$STATE_FILE" | head -n1)"
  else
    LAB=""
  fi
  [[ -n "$LAB" && -d "$LAB/run" ]]
}

need_lab() {
  find_lab || die "no lab is running (no $STATE_FILE and no STACKTOP_LAB_DIR); start one with lab/up"
}

# ---- processes ------------------------------------------------------------------
# Field N (1-based, counted after the "comm" field) of /proc/PID/stat:
# 1=state 3=pgid 4=sid 20=starttime.
proc_field() {
  local pid=$1 n=$2 stat
  read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
  stat="${stat##*) }"
  # shellcheck disable=SC2086
  set -- $stat
  echo "${!n}"
}

# True when the process recorded in $LAB/run/NAME.pid is alive and is the
# one we started (same PID *and* same start time; zombies count as dead).
is_running() {
  local f="$LAB/run/$1.pid" pid start now state
  [[ -f "$f" ]] || return 1
  read -r pid start <"$f" || return 1
  [[ -n "$pid" ]] || return 1
  now="$(proc_field "$pid" 20)" || return 1
  state="$(proc_field "$pid" 1)" || return 1
  [[ "$now" == "$start" && "$state" != Z ]]
}

recorded_pid() { local pid _; read -r pid _ <"$LAB/run/$1.pid"; echo "$pid"; }

# PIDs still alive in the process group led by our recorded PID (covers nginx
# workers, the app's mariadb client children...). Only meaningful for groups
# we created with setsid, which is every group recorded here.
group_members() {
  ps -e -o pid=,pgid=,sid=,stat= | awk -v g="$1" '$2 == g && $3 == g && $4 !~ /^Z/ {print $1}'
}

# start_daemon NAME LOGFILE CMD...: runs CMD in its own session, stdin from
# /dev/null, stdout+stderr to LOGFILE (so nothing keeps the caller's pipes
# open), and records "PID STARTTIME" in $LAB/run/NAME.pid.
start_daemon() {
  local name=$1 logfile=$2 pid start i
  shift 2
  setsid "$@" </dev/null >>"$logfile" 2>&1 &
  pid=$!
  for i in 1 2 3 4 5 6 7 8 9 10; do
    start="$(proc_field "$pid" 20)" && break
    sleep 0.05
    [[ $i == 10 ]] && die "$name exited immediately; see $logfile"
  done
  echo "$pid $start" >"$LAB/run/$name.pid"
}

# stop_daemon NAME [TIMEOUT_S]: SIGTERM to the recorded process group, wait
# up to TIMEOUT_S, then SIGKILL. Returns 0 when nothing of it is left.
stop_daemon() {
  local name=$1 timeout=${2:-10} pid members deadline
  [[ -f "$LAB/run/$name.pid" ]] || return 0
  pid="$(recorded_pid "$name")"
  if is_running "$name"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  fi
  deadline=$((SECONDS + timeout))
  while :; do
    members="$(group_members "$pid")"
    [[ -z "$members" ]] && break
    if ((SECONDS >= deadline)); then
      log "$name did not stop within ${timeout}s; SIGKILL to group $pid"
      kill -KILL -- "-$pid" 2>/dev/null || true
      sleep 0.3
      members="$(group_members "$pid")"
      [[ -z "$members" ]] && break
      log "$name: still alive after SIGKILL: $members"
      return 1
    fi
    sleep 0.1
  done
  rm -f "$LAB/run/$name.pid"
}

# ---- readiness ------------------------------------------------------------------
# wait_for DESCRIPTION TIMEOUT_S CMD...: retries CMD every 0.2 s.
wait_for() {
  local what=$1 timeout=$2 deadline
  shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { log "timed out after ${timeout}s waiting for $what"; return 1; }
    sleep 0.2
  done
}

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }

# Is anything (ours or not) listening on ADDR:PORT? Used to refuse to start
# over someone else's socket.
port_in_use() {
  ss -Hltn "sport = :$2" 2>/dev/null | awk '{print $4}' | grep -Eq "^(\*|0\.0\.0\.0|\[::\]|$1):$2$"
}

# ---- components -------------------------------------------------------------------
db_dir() { echo "$LAB/db$1"; }

# Runs SQL on db N as the lab's admin (root over the node's unix socket).
db_sql() {
  local n=$1
  shift
  mariadb --no-defaults --socket="$LAB/db$n/mysqld.sock" -u"$DB_ADMIN_USER" --connect-timeout=2 -N -B "$@"
}

start_db() {
  local n=$1 addr
  addr="$([[ $n == 1 ]] && echo "$DB1_ADDR" || echo "$DB2_ADDR")"
  is_running "db$n-mariadb" && { log "db$n (mariadbd) already running"; return 0; }
  local extra=()
  [[ $n == 2 ]] && extra=(--read-only=1 --relay-log=relay-bin)
  start_daemon "db$n-mariadb" "$LAB/db$n/stdout.log" \
    mariadbd --no-defaults \
      --user="$(id -un)" \
      --datadir="$LAB/db$n/data" \
      --socket="$LAB/db$n/mysqld.sock" \
      --pid-file="$LAB/db$n/mysqld.pid" \
      --log-error="$LAB/db$n/error.log" \
      --bind-address="$addr" --port="$DB_PORT" \
      --skip-name-resolve \
      --server-id="$n" \
      --log-bin=binlog --binlog-format=ROW --log-slave-updates=1 \
      --gtid-strict-mode=1 \
      --innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
      --performance-schema=OFF --max-connections=100 \
      --tmpdir="$LAB/db$n/tmp" \
      "${extra[@]}"
}

db_ready() { mariadb-admin --no-defaults --socket="$LAB/db$1/mysqld.sock" -u"$DB_ADMIN_USER" --connect-timeout=1 ping; }

nginx_conf() {
  local n=$1 addr user_line=""
  addr="$(web_addr "$n")"
  if [[ $EUID == 0 ]]; then
    if id www-data >/dev/null 2>&1; then user_line="user www-data;"; else user_line="user nobody;"; fi
  fi
  cat <<EOF
# nginx for web$n ($addr), generated by lab/up. Proxies to the app on the same host.
$user_line
worker_processes 1;
pid $LAB/web$n/nginx.pid;
error_log $LAB/web$n/error.log warn;
events { worker_connections 512; }
http {
    default_type text/html;
    server_tokens off;
    client_body_temp_path $LAB/web$n/tmp/client_body;
    proxy_temp_path       $LAB/web$n/tmp/proxy;
    fastcgi_temp_path     $LAB/web$n/tmp/fastcgi;
    uwsgi_temp_path       $LAB/web$n/tmp/uwsgi;
    scgi_temp_path        $LAB/web$n/tmp/scgi;

    # "nginx-timed": the combined format plus request and upstream times.
    log_format stacktop_timed '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status \$body_bytes_sent "\$http_referer" "\$http_user_agent" \$request_time \$upstream_response_time';
    access_log $LAB/web$n/access.log stacktop_timed;

    upstream app { server $addr:$APP_PORT; keepalive 8; }

    server {
        listen $addr:$WEB_PORT;
        server_name web$n $SITE_NAME;
        add_header X-Served-By web$n always;

        location = /nginx_status {
            stub_status;
            allow 127.0.0.0/8;
            deny all;
            access_log off;
        }
        # HAProxy's httpchk lands here every second and is logged like any
        # request, as on a stock nginx: the agents' health-check-paths keep
        # it out of the request rate.
        location = /health {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 1s;
            proxy_read_timeout 3s;
        }
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_connect_timeout 1s;
            proxy_read_timeout 5s;
        }
    }
}
EOF
}

start_nginx() {
  local n=$1
  is_running "web$n-nginx" && { log "web$n nginx already running"; return 0; }
  nginx_conf "$n" >"$LAB/web$n/nginx.conf"
  start_daemon "web$n-nginx" "$LAB/web$n/nginx.stdout.log" \
    nginx -p "$LAB/web$n/" -e "$LAB/web$n/error.log" -c "$LAB/web$n/nginx.conf" -g 'daemon off;'
}

start_app() {
  local n=$1
  is_running "web$n-app" && { log "web$n app already running"; return 0; }
  start_daemon "web$n-app" "$LAB/web$n/app.log" \
    "$PY" "$LAB_SRC/app.py" --name "web$n" --listen "$(web_addr "$n")" --port "$APP_PORT" \
      --db-defaults-file "$LAB/web$n/app-my.cnf"
}

start_haproxy() {
  is_running lb1-haproxy && { log "lb1 haproxy already running"; return 0; }
  # -db: foreground, no daemon; the access log is stdout -> access.log,
  # HAProxy's own events (server UP/DOWN, alerts) go to stderr -> haproxy.log.
  # TZ=UTC: httplog's accept date carries no zone; UTC makes it unambiguous.
  # shellcheck disable=SC2016 # $1/$2 expand in the inner shell
  start_daemon lb1-haproxy "$LAB/lb1/haproxy.log" \
    bash -c 'TZ=UTC exec haproxy -db -f "$1" >>"$2"' _ "$LAB/lb1/haproxy.cfg" "$LAB/lb1/access.log"
}

start_dns() {
  is_running dns-dnsmasq && { log "dnsmasq already running"; return 0; }
  local user_opt=()
  [[ $EUID == 0 ]] && user_opt=(--user=nobody)
  start_daemon dns-dnsmasq "$LAB/dns/dnsmasq.stdout.log" \
    dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
      --listen-address="$DNS_ADDR" --bind-interfaces --port="$DNS_PORT" \
      --host-record="$SITE_NAME,$LB_ADDR" --local=/stacktop.test/ \
      --pid-file="$LAB/dns/dnsmasq.pid" --log-facility="$LAB/dns/dnsmasq.log" --log-queries \
      "${user_opt[@]}"
}

haproxy_cmd() {
  "$PY" - "$LAB/lb1/haproxy.sock" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(3)
s.connect(sys.argv[1])
s.sendall((sys.argv[2] + "\n").encode())
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode())
EOF
}

# "server status" lines of the web backend, e.g. "web1 UP".
haproxy_servers() {
  haproxy_cmd "show stat" | awk -F, '$1=="be_web" && $2!="BACKEND" {print $2, $18}'
}
