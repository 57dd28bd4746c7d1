//! Access-log parsing throughput per format, in lines/s (and bytes/s) per core.
//!
//! Each format gets a realistic log generated in memory: IPv4 and IPv6 clients, varied paths
//! and query strings, real-looking user agents, a status mix, 500 requests per second so the
//! minute cache sees minute changes as in production. The parse loop is what the agent runs:
//! split on `\n` with memchr, parse each line.
//!
//! `lines` and `bytes` parse with no health-check paths (the default); `health` parses the
//! same logs with `health-check-paths = ["/health"]` (about one line in eleven is a health
//! check), which also finds and matches every line's request path.
//!
//! Run: `cargo bench -p stacktop-agent --bench logparse -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memchr::memchr;
use stacktop_agent::logs::{Aggregator, Format, Line, LineSplitter, MAX_LINE, Parser};

/// Lines per generated log.
const LINES: usize = 200_000;

/// 2026-11-25T12:00:00Z.
const T0: i64 = 1_795_608_000;

/// A small deterministic generator, so every run parses the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/static/css/site.4f9a2c.css",
    "/static/js/app.bundle.min.js",
    "/api/v1/orders?page=2&per_page=50",
    "/api/v1/users/18327/cart",
    "/search?q=red+shoes&sort=price_asc&filter=%22sale%22",
    "/product/ultra-light-running-shoe-men-size-44",
    "/wp-login.php",
    "/images/products/2026/11/9f8e7d6c5b4a.jpg",
    "/health",
];

const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "curl/8.5.0",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
    "kube-probe/1.31",
];

const REFERERS: &[&str] = &[
    "-",
    "https://www.example.com/",
    "https://www.google.com/",
    "https://www.example.com/search?q=shoes",
];

const METHODS: &[&str] = &["GET", "GET", "GET", "GET", "POST", "HEAD", "PUT"];

/// A status from a realistic mix: mostly 200, some 304/301, a few 404/499/500/502.
fn status(r: &mut Rng) -> u16 {
    match r.next() % 100 {
        0..=74 => 200,
        75..=84 => 304,
        85..=88 => 301,
        89..=94 => 404,
        95 => 499,
        96..=97 => 500,
        98 => 502,
        _ => 201,
    }
}

fn ip(r: &mut Rng) -> String {
    let x = r.next();
    if x.is_multiple_of(5) {
        format!("2001:db8:{:x}::{:x}", (x >> 8) & 0xffff, (x >> 24) & 0xffff)
    } else {
        format!(
            "{}.{}.{}.{}",
            (x >> 8) as u8,
            (x >> 16) as u8,
            (x >> 24) as u8,
            (x >> 32) as u8
        )
    }
}

/// `dd/Mon/yyyy:hh:mm:ss` for a second on 2026-11-25.
fn clf_time(t: i64) -> String {
    let s = t - T0 + 12 * 3600;
    format!(
        "25/Nov/2026:{:02}:{:02}:{:02}",
        s / 3600 % 24,
        s / 60 % 60,
        s % 60
    )
}

/// Generates `LINES` lines of `format`.
fn generate(format: &str) -> Vec<u8> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = String::with_capacity(LINES * 220);
    for i in 0..LINES {
        // 500 requests per second, with millisecond detail.
        let t = T0 + (i / 500) as i64;
        let ms = (i % 500) * 2;
        let st = status(&mut r);
        let bytes = if st == 304 { 0 } else { r.next() % 80_000 };
        let req = format!(
            "{} {} HTTP/{}",
            r.pick(METHODS),
            r.pick(PATHS),
            if r.next().is_multiple_of(3) {
                "2.0"
            } else {
                "1.1"
            }
        );
        let rt = r.next() % 2_000;
        let (ip, referer, agent) = (ip(&mut r), r.pick(REFERERS), r.pick(AGENTS));
        let line = match format {
            "nginx-combined" | "format-string" => format!(
                "{ip} - - [{} +0000] \"{req}\" {st} {bytes} \"{referer}\" \"{agent}\"",
                clf_time(t)
            ),
            "nginx-timed" => format!(
                "{ip} - - [{} +0000] \"{req}\" {st} {bytes} \"{referer}\" \"{agent}\" {}.{:03} {}.{:03}",
                clf_time(t),
                rt / 1000,
                rt % 1000,
                rt / 1000,
                rt % 1000 / 2
            ),
            "stacktop" => format!(
                "{t}.{ms:03} {st} {bytes} {}.{:03} {ip} \"{req}\" \"{referer}\" \"{agent}\" {}.{:03}",
                rt / 1000,
                rt % 1000,
                rt / 1000,
                rt % 1000 / 2
            ),
            "haproxy-http" => format!(
                "<134>Nov 25 12:00:00 lb1 haproxy[1234]: {ip}:{} [{}.{ms:03}] http-in web/web{} 0/0/1/{}/{} {st} {bytes} - - ---- 12/12/3/1/0 0/0 \"{req}\"",
                r.next() % 65_535,
                clf_time(t),
                r.next() % 4 + 1,
                rt,
                rt + 2
            ),
            _ => unreachable!("unknown bench format {format}"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.into_bytes()
}

/// Parses every line of `buf`, the way the agent does; returns (ok, malformed).
fn parse_all(parser: &mut Parser, buf: &[u8]) -> (u64, u64) {
    let (mut ok, mut bad) = (0, 0);
    let mut rest = buf;
    while let Some(k) = memchr(b'\n', rest) {
        match parser.parse(&rest[..k]) {
            Ok(r) => {
                black_box(r);
                ok += 1;
            }
            Err(_) => bad += 1,
        }
        rest = &rest[k + 1..];
    }
    (ok, bad)
}

const COMBINED_STRING: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

fn formats() -> Vec<(&'static str, Format, Vec<u8>)> {
    let mut v = Vec::new();
    for name in [
        "nginx-combined",
        "nginx-timed",
        "stacktop",
        "haproxy-http",
        "format-string",
    ] {
        let format = if name == "format-string" {
            Format::parse(COMBINED_STRING)
        } else {
            Format::parse(name)
        }
        .expect("bench formats are valid");
        let buf = generate(name);
        // A benchmark of lines that do not parse would measure the error path.
        let (ok, bad) = parse_all(&mut Parser::new(format.clone()), &buf);
        assert_eq!(
            (ok, bad),
            (LINES as u64, 0),
            "{name}: generated lines must parse"
        );
        // The health-check bench must find health checks, and only them.
        let mut health = Parser::new(format.clone()).with_health_check_paths(&["/health"]);
        let checks = buf
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter(|l| health.parse(l).unwrap().health_check)
            .count();
        let expected = buf
            .split(|&b| b == b'\n')
            .filter(|l| memchr::memmem::find(l, b" /health HTTP").is_some())
            .count();
        assert!(
            checks == expected && checks > LINES / 20,
            "{name}: {checks} health checks, expected {expected}"
        );
        v.push((name, format, buf));
    }
    v
}

fn bench_lines(c: &mut Criterion) {
    let all = formats();
    let mut g = c.benchmark_group("lines");
    g.throughput(Throughput::Elements(LINES as u64));
    for (name, format, buf) in &all {
        let mut parser = Parser::new(format.clone());
        g.bench_function(*name, |b| b.iter(|| parse_all(&mut parser, black_box(buf))));
    }
    g.finish();

    let mut g = c.benchmark_group("health");
    g.throughput(Throughput::Elements(LINES as u64));
    for (name, format, buf) in &all {
        let mut parser = Parser::new(format.clone()).with_health_check_paths(&["/health"]);
        g.bench_function(*name, |b| b.iter(|| parse_all(&mut parser, black_box(buf))));
    }
    g.finish();

    let mut g = c.benchmark_group("bytes");
    for (name, format, buf) in &all {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        let mut parser = Parser::new(format.clone());
        g.bench_function(*name, |b| b.iter(|| parse_all(&mut parser, black_box(buf))));
    }
    g.finish();

    // The whole per-line path of a source: split (bounded buffer), parse, bucket.
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(LINES as u64));
    for (name, format, buf) in all
        .iter()
        .filter(|(n, ..)| *n == "nginx-combined" || *n == "stacktop")
    {
        g.bench_function(*name, |b| {
            b.iter(|| {
                let mut parser = Parser::new(format.clone());
                let mut agg = Aggregator::new("web", Duration::from_secs(2), T0);
                let mut splitter = LineSplitter::new(MAX_LINE);
                let mut seconds = 0u64;
                for chunk in buf.chunks(64 * 1024) {
                    splitter.feed(chunk, &mut |l: Line<'_>| match l {
                        Line::Complete(l) => match parser.parse(l) {
                            Ok(r) => agg.record(&r),
                            Err(_) => agg.malformed(),
                        },
                        Line::TooLong => agg.malformed(),
                    });
                    agg.flush(T0, &mut |s| seconds += black_box(s).requests());
                }
                seconds
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_lines);
criterion_main!(benches);
