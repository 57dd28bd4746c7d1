#!/usr/bin/env python3
"""Writes a deterministic Nginx/Apache "combined" access log for the parsing
benchmark (BENCHMARKS.md table 4): IPv4 and IPv6 clients (5,000 of them), varied paths and
query strings, real-looking user agents and referers, a realistic status mix,
500 requests a second. The same mix as agent/benches/logparse.rs.

    bench/gen-access-log.py LINES PATH
"""
import random
import sys
import time

PATHS = ["/", "/index.html", "/static/css/site.4f9a2c.css", "/static/js/app.bundle.min.js",
         "/api/v1/orders?page=2&per_page=50", "/api/v1/users/18327/cart",
         "/search?q=red+shoes&sort=price_asc&filter=%22sale%22",
         "/product/ultra-light-running-shoe-men-size-44", "/wp-login.php",
         "/images/products/2026/11/9f8e7d6c5b4a.jpg", "/health"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "curl/8.5.0", "Googlebot/2.1 (+http://www.google.com/bot.html)", "kube-probe/1.31"]
REFERERS = ["-", "https://www.example.com/", "https://www.google.com/",
            "https://www.example.com/search?q=shoes"]
METHODS = ["GET", "GET", "GET", "GET", "POST", "HEAD", "PUT"]
STATUS = [200] * 75 + [304] * 10 + [301] * 4 + [404] * 6 + [499] + [500] * 2 + [502] + [201]
T0 = 1795608000  # 2026-11-25T12:00:00Z
CLIENTS = 5000


def client(r):
    """An IPv4 address, or one in five an IPv6 one."""
    x = r.getrandbits(40)
    if x % 5 == 0:
        return "2001:db8:%x::%x" % ((x >> 8) & 0xFFFF, (x >> 24) & 0xFFFF)
    return "%d.%d.%d.%d" % ((x >> 8) & 255, (x >> 16) & 255, (x >> 24) & 255, (x >> 32) & 255)


def main():
    lines, path = int(sys.argv[1]), sys.argv[2]
    r = random.Random(0x9E3779B97F4A7C15)
    # Clients come from a pool, as on a real site (GoAccess counts unique
    # visitors; a new address on every line would be nobody's traffic).
    clients = [client(r) for _ in range(CLIENTS)]
    with open(path, "w") as out:
        for i in range(lines):
            t = time.gmtime(T0 + i // 500)
            st = r.choice(STATUS)
            size = 0 if st == 304 else r.randrange(80000)
            ip = r.choice(clients)
            req = "%s %s HTTP/%s" % (r.choice(METHODS), r.choice(PATHS),
                                     "2.0" if r.randrange(3) == 0 else "1.1")
            out.write('%s - - [%s +0000] "%s" %d %d "%s" "%s"\n' % (
                ip, time.strftime("%d/%b/%Y:%H:%M:%S", t), req, st, size,
                r.choice(REFERERS), r.choice(AGENTS)))


if __name__ == "__main__":
    main()
