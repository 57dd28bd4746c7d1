//! Tail tests on real files in a temporary directory, driving the synchronous core
//! (`Tailer::poll`, `SourceCore::poll`) so no test sleeps or depends on timing.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use stacktop_agent::logs::{
    Aggregator, DRAIN_POLLS, Format, Line, MAX_LINE, Parser, SecondStats, SourceCore, Tailer,
};

/// Appends `text` to `path`, creating it if needed.
fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Polls once and returns the lines seen (`None` for a too-long line).
fn poll(t: &mut Tailer) -> Vec<Option<String>> {
    let mut v = Vec::new();
    t.poll(&mut |l| {
        v.push(match l {
            Line::Complete(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Line::TooLong => None,
        })
    })
    .unwrap();
    v
}

fn lines(v: &[&str]) -> Vec<Option<String>> {
    v.iter().map(|s| Some((*s).to_owned())).collect()
}

#[test]
fn starts_at_end_and_follows_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    append(&path, "old 1\nold 2\n");
    let mut t = Tailer::new(&path).unwrap();
    assert!(poll(&mut t).is_empty(), "history before start is not read");
    append(&path, "new 1\nnew 2\n");
    assert_eq!(poll(&mut t), lines(&["new 1", "new 2"]));
    // A line without its newline waits for the rest.
    append(&path, "half");
    assert!(poll(&mut t).is_empty());
    append(&path, " done\n");
    assert_eq!(poll(&mut t), lines(&["half done"]));
    assert!(poll(&mut t).is_empty());
}

#[test]
fn starting_mid_line_skips_the_fragment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    append(&path, "old 1\nold 2 hal");
    let mut t = Tailer::new(&path).unwrap();
    append(&path, "f of a line\nnew 1\n");
    assert_eq!(poll(&mut t), lines(&["new 1"]));
}

#[test]
fn waits_for_a_missing_file_then_reads_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.log");
    let mut t = Tailer::new(&path).unwrap();
    assert!(poll(&mut t).is_empty());
    append(&path, "first\nsecond\n");
    assert_eq!(poll(&mut t), lines(&["first", "second"]));
}

#[test]
fn rotate_by_rename_reads_old_tail_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    append(&path, "a1\n");
    let mut t = Tailer::from_start(&path);
    assert_eq!(poll(&mut t), lines(&["a1"]));
    // Written before the rotation, not read yet; the rotation leaves an unterminated line.
    append(&path, "a2\na3");
    fs::rename(&path, &rotated).unwrap();
    append(&path, "b1\n");
    assert_eq!(poll(&mut t), lines(&["a2", "b1"]));
    // The writer has not reopened yet and finishes its line in the old file.
    append(&rotated, "\na4\n");
    append(&path, "b2\n");
    assert_eq!(poll(&mut t), lines(&["a3", "a4", "b2"]));
    // After enough quiet polls the old file is closed; later writes to it are not read.
    for _ in 0..=DRAIN_POLLS {
        assert!(poll(&mut t).is_empty());
    }
    append(&rotated, "a5\n");
    append(&path, "b3\n");
    assert_eq!(poll(&mut t), lines(&["b3"]));
}

#[test]
fn rotate_twice_between_polls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    append(&path, "");
    let mut t = Tailer::new(&path).unwrap();
    append(&path, "x1\n");
    fs::rename(&path, dir.path().join("access.log.1")).unwrap();
    append(&path, "y1\n");
    assert_eq!(poll(&mut t), lines(&["x1", "y1"]));
    append(&path, "y2\n");
    fs::rename(&path, dir.path().join("access.log.2")).unwrap();
    append(&path, "z1\n");
    assert_eq!(poll(&mut t), lines(&["y2", "z1"]));
}

#[test]
fn copytruncate_rereads_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    append(&path, "line one is long\nline two is long\n");
    let mut t = Tailer::from_start(&path);
    assert_eq!(poll(&mut t).len(), 2);
    fs::copy(&path, dir.path().join("access.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    assert!(poll(&mut t).is_empty());
    append(&path, "c1\n");
    assert_eq!(poll(&mut t), lines(&["c1"]));
    append(&path, "c2\n");
    assert_eq!(poll(&mut t), lines(&["c2"]));
}

#[test]
fn survives_delete_and_recreate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    append(&path, "d0\n");
    let mut t = Tailer::from_start(&path);
    assert_eq!(poll(&mut t), lines(&["d0"]));
    fs::remove_file(&path).unwrap();
    for _ in 0..3 {
        assert!(poll(&mut t).is_empty());
    }
    append(&path, "d1\nd2\n");
    assert_eq!(poll(&mut t), lines(&["d1", "d2"]));
    append(&path, "d3\n");
    assert_eq!(poll(&mut t), lines(&["d3"]));
}

#[test]
fn overlong_line_is_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    File::create(&path).unwrap();
    let mut t = Tailer::new(&path).unwrap();
    let long = "x".repeat(MAX_LINE + 1);
    append(&path, &format!("ok1\n{long}"));
    assert_eq!(poll(&mut t), lines(&["ok1"]));
    append(&path, &format!("{long}\nok2\n"));
    assert_eq!(poll(&mut t), vec![None, Some("ok2".into())]);
}

/// 2026-11-25T12:00:00Z.
const T0: i64 = 1_795_608_000;

/// A combined line at second `t` with `status`.
fn combined_line(t: i64, status: u16, i: usize) -> String {
    let (h, m, s) = ((t % 86_400) / 3600, (t % 3600) / 60, t % 60);
    let ip = if i.is_multiple_of(3) {
        format!("2001:db8::{:x}", i % 65_536)
    } else {
        format!("10.0.{}.{}", i % 256, (i / 256) % 256)
    };
    format!(
        "{ip} - - [25/Nov/2026:{h:02}:{m:02}:{s:02} +0000] \"GET /item/{i}?q=\\\"x\\\" HTTP/1.1\" {status} {} \"-\" \"Mozilla/5.0 (\u{fffd})\"\n",
        i % 5000
    )
}

fn core(path: &Path, start: i64) -> SourceCore {
    SourceCore::new(
        Tailer::from_start(path),
        Parser::new(Format::NginxCombined),
        Aggregator::new("web", Duration::from_secs(2), start),
    )
}

#[test]
fn burst_of_100k_lines_counts_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    File::create(&path).unwrap();
    let mut c = core(&path, T0);
    // Known counts per second, 100,000 in all, one quiet second in the middle.
    let per_second: [usize; 10] = [
        5_000, 20_000, 1, 0, 14_999, 30_000, 10_000, 9_000, 6_000, 5_000,
    ];
    assert_eq!(per_second.iter().sum::<usize>(), 100_000);
    let statuses = [200, 200, 200, 301, 404, 503, 200, 304, 500, 201];

    let mut text = String::new();
    let mut want = Vec::new();
    let mut i = 0;
    for (k, &n) in per_second.iter().enumerate() {
        let t = T0 + k as i64;
        let mut classes = [0u64; 5];
        for _ in 0..n {
            let st = statuses[i % statuses.len()];
            classes[(st / 100 - 2) as usize] += 1;
            text.push_str(&combined_line(t, st, i));
            i += 1;
        }
        want.push((t, n as u64, classes));
    }
    // Write in odd-sized pieces and poll between them, so lines straddle every boundary.
    let mut got: Vec<SecondStats> = Vec::new();
    let bytes = text.as_bytes();
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    for piece in bytes.chunks(100_003) {
        f.write_all(piece).unwrap();
        // A wall clock at T0 means only the log's own clock completes seconds.
        while c.poll(T0, &mut |s| got.push(s)).unwrap().more {}
    }
    // Now let the wall clock pass everything so the last seconds flush too.
    c.poll(T0 + 100, &mut |s| got.push(s)).unwrap();

    let got_10: Vec<(i64, u64, [u64; 5])> = got
        .iter()
        .take(10)
        .map(|s| (s.unix, s.requests(), s.classes))
        .collect();
    let want: Vec<(i64, u64, [u64; 5])> = want.into_iter().collect();
    assert_eq!(got_10, want);
    assert!(got.iter().all(|s| s.malformed == 0 && s.late == 0));
    // After the burst the wall clock fills quiet seconds with zeros.
    assert!(got[10..].iter().all(|s| s.requests() == 0));
    assert_eq!(got.last().unwrap().unix, T0 + 100 - 4);
}

#[test]
fn core_counts_malformed_and_late_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    File::create(&path).unwrap();
    let mut c = core(&path, T0);
    let mut got = Vec::new();
    let mut text = String::new();
    for t in 0..5 {
        text.push_str(&combined_line(T0 + t, 200, t as usize));
    }
    text.push_str("not a log line\n\u{1}\u{2}\u{ff}\n");
    append(&path, &text);
    c.poll(T0, &mut |s| got.push(s)).unwrap();
    // Seconds 0..=1 are complete (log clock at 4, grace 2); a line for second 0 is now late.
    assert_eq!(got.len(), 2);
    append(&path, &combined_line(T0, 500, 7));
    append(&path, &combined_line(T0 + 9, 200, 8));
    c.poll(T0, &mut |s| got.push(s)).unwrap();
    let secs: Vec<_> = got
        .iter()
        .map(|s| (s.unix - T0, s.requests(), s.malformed, s.late))
        .collect();
    assert_eq!(
        secs,
        [
            (0, 1, 2, 0),
            (1, 1, 0, 0),
            (2, 1, 0, 1),
            (3, 1, 0, 0),
            (4, 1, 0, 0),
            (5, 0, 0, 0),
            (6, 0, 0, 0)
        ]
    );
}
