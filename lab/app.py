#!/usr/bin/env python3
"""The lab's app server: one per web node, behind that node's nginx.

GET /        -> 200, a small HTML page naming the node.
GET /health  -> 200 "ok" when `SELECT 1` on the DB primary succeeds,
                503 "db: <reason>" otherwise. The DB result is cached for
                0.5 s so health probes stay cheap.

Standard library only; the DB query runs the `mariadb` client binary with a
short timeout, reading host/port/user/password from a my.cnf-style file.
"""

import argparse
import html
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CACHE_SECONDS = 0.5
QUERY_TIMEOUT_SECONDS = 2.0


class DbProbe:
    """`SELECT 1` against the primary, cached for CACHE_SECONDS."""

    def __init__(self, defaults_file):
        self.defaults_file = defaults_file
        self.lock = threading.Lock()
        self.checked_at = 0.0
        self.result = (False, "not checked yet")

    def _query(self):
        cmd = [
            "mariadb",
            f"--defaults-file={self.defaults_file}",
            "--connect-timeout=1",
            "-N",
            "-B",
            "-e",
            "SELECT 1",
        ]
        try:
            out = subprocess.run(
                cmd, capture_output=True, text=True, timeout=QUERY_TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired:
            return (False, "SELECT 1 timed out")
        except OSError as err:
            return (False, f"cannot run mariadb client: {err}")
        if out.returncode == 0 and out.stdout.strip() == "1":
            return (True, "ok")
        reason = (out.stderr.strip().splitlines() or ["SELECT 1 failed"])[-1]
        return (False, reason)

    def check(self):
        with self.lock:
            now = time.monotonic()
            if now - self.checked_at >= CACHE_SECONDS:
                self.result = self._query()
                self.checked_at = time.monotonic()
            return self.result


def make_handler(name, probe):
    page = (
        "<!doctype html><html><head><title>stacktop lab</title></head>"
        f"<body><h1>Hello from {html.escape(name)}</h1>"
        "<p>This page was served by the stacktop lab's app server.</p>"
        "</body></html>\n"
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = "stacktop-lab-app/1"
        protocol_version = "HTTP/1.1"

        def _send(self, status, body, ctype):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-App-Server", name)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/health":
                ok, reason = probe.check()
                if ok:
                    self._send(200, b"ok\n", "text/plain")
                else:
                    self._send(503, f"db: {reason}\n".encode(), "text/plain")
            elif path == "/" or path.startswith("/page"):
                self._send(200, page, "text/html; charset=utf-8")
            else:
                self._send(404, b"not found\n", "text/plain")

        do_HEAD = do_GET

        def log_message(self, fmt, *args):
            # nginx keeps the access log; only errors (log_error) get a line.
            pass

        def log_error(self, fmt, *args):
            sys.stderr.write(f"{self.log_date_time_string()} {name}: {fmt % args}\n")

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--listen", required=True, help="loopback address to bind")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--db-defaults-file", required=True)
    args = p.parse_args()
    if not args.listen.startswith("127."):
        p.error(f"refusing to bind {args.listen!r}: the lab binds 127.0.0.0/8 only")
    probe = DbProbe(args.db_defaults_file)
    server = ThreadingHTTPServer((args.listen, args.port), make_handler(args.name, probe))
    server.daemon_threads = True
    sys.stderr.write(f"{args.name}: app listening on {args.listen}:{args.port}\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
