//! Following a log file by polling, through rotation, truncation and deletion.
//!
//! # Why polling
//!
//! The tailer stats and reads its file every [`POLL_INTERVAL`] (250 ms) instead of waiting
//! for inotify events: polling works on every filesystem (NFS, overlayfs in containers,
//! bind mounts, where change notification is missing or unreliable), it cannot lose an event
//! when a queue overflows, and its cost is bounded and predictable — one `fstat`, one `stat`
//! and a `read` that returns 0 when nothing changed, four times a second. A second's data is
//! held back by the grace (2 s) anyway, so 250 ms of extra delay is invisible.
//!
//! # What it handles
//!
//! - **First start**: an existing file is read from its end (history is not QPS); a file that
//!   does not exist yet is waited for and then read from its start.
//! - **Rename-and-create rotation** (logrotate's default): when the path names a different
//!   file (device + inode changed), the old handle is read to its end first, then the new file
//!   is read from its start. The old handle stays open for [`DRAIN_POLLS`] more quiet polls,
//!   because Nginx keeps writing to it until it handles its reopen signal.
//! - **copytruncate**: the file shrank below our offset, so it is read again from 0. (As for
//!   every tailer, a file that is truncated and then regrows past our offset within one
//!   poll looks like an append; its first lines are then missed.)
//! - **Deletion**: the open handle is kept and polling continues until the path reappears.
//!
//! # Bounded memory
//!
//! Reads go through one [`READ_CHUNK`] (64 KiB) buffer, and only an incomplete last line is
//! copied out of it, at most [`MAX_LINE`] (16 KiB) bytes. A longer line is reported as
//! [`Line::TooLong`] (counted as malformed) and skipped up to its newline. One poll reads at
//! most [`MAX_BYTES_PER_POLL`] so a huge backlog is consumed in bounded steps.
//!
//! [`Tailer::poll`] is synchronous and never sleeps, so tests drive it deterministically;
//! [`SourceCore`] adds parsing and aggregation, and `LogSource` (in `mod.rs`) runs it on a
//! tokio interval.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use memchr::memchr;

use super::bucket::{Aggregator, SecondStats};
use super::parse::Parser;

/// How often the runner polls the file.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Size of the read buffer.
pub const READ_CHUNK: usize = 64 * 1024;

/// Longest accepted line, without its newline; longer lines are malformed.
pub const MAX_LINE: usize = 16 * 1024;

/// Most bytes one [`Tailer::poll`] reads, so a backlog is consumed in bounded steps.
pub const MAX_BYTES_PER_POLL: u64 = 16 * 1024 * 1024;

/// Quiet polls after which a rotated-away file is closed.
pub const DRAIN_POLLS: u32 = 8;

/// A line handed out by the tailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A whole line, without its newline.
    Complete(&'a [u8]),
    /// A line longer than the limit, skipped without being read.
    TooLong,
}

/// Splits a byte stream into lines, holding at most one incomplete line of bounded length.
#[derive(Debug)]
pub struct LineSplitter {
    /// The start of a line whose newline has not arrived yet.
    partial: Vec<u8>,
    /// Inside an over-long line: drop bytes until the next newline.
    skipping: bool,
    /// Longest accepted line.
    max_line: usize,
    /// Started in the middle of a line: drop bytes up to the next newline silently.
    resync: bool,
}

impl LineSplitter {
    /// Creates a splitter that rejects lines longer than `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        Self {
            partial: Vec::new(),
            skipping: false,
            max_line,
            resync: false,
        }
    }

    /// Drops everything up to the next newline without reporting it: used when following
    /// starts in the middle of a line, whose head was never seen.
    pub fn resync(&mut self) {
        self.partial.clear();
        self.skipping = false;
        self.resync = true;
    }

    /// Feeds bytes, handing every line that ends in them to `sink`.
    pub fn feed(&mut self, mut data: &[u8], sink: &mut impl FnMut(Line<'_>)) {
        if self.resync {
            let Some(k) = memchr(b'\n', data) else {
                return;
            };
            self.resync = false;
            data = &data[k + 1..];
        }
        if !self.partial.is_empty() || self.skipping {
            let Some(k) = memchr(b'\n', data) else {
                if !self.skipping && self.partial.len() + data.len() > self.max_line {
                    self.skipping = true;
                    self.partial.clear();
                } else if !self.skipping {
                    self.partial.extend_from_slice(data);
                }
                return;
            };
            if self.skipping || self.partial.len() + k > self.max_line {
                sink(Line::TooLong);
            } else {
                self.partial.extend_from_slice(&data[..k]);
                sink(Line::Complete(&self.partial));
            }
            self.partial.clear();
            self.skipping = false;
            data = &data[k + 1..];
        }
        while let Some(k) = memchr(b'\n', data) {
            sink(if k > self.max_line {
                Line::TooLong
            } else {
                Line::Complete(&data[..k])
            });
            data = &data[k + 1..];
        }
        if data.len() > self.max_line {
            self.skipping = true;
        } else {
            self.partial.extend_from_slice(data);
        }
    }

    /// Hands out an unterminated last line (the file is finished: rotated, truncated, or at
    /// the end of a checked file) and resets.
    pub fn finish(&mut self, sink: &mut impl FnMut(Line<'_>)) {
        if self.skipping {
            sink(Line::TooLong);
        } else if !self.partial.is_empty() {
            sink(Line::Complete(&self.partial));
        }
        self.partial.clear();
        self.skipping = false;
    }
}

/// An open file being followed.
#[derive(Debug)]
struct Followed {
    /// The handle; it keeps a rotated or deleted file readable.
    file: File,
    /// Device and inode, to notice that the path now names another file.
    id: (u64, u64),
    /// Bytes consumed so far.
    offset: u64,
    /// The file's own incomplete last line.
    lines: LineSplitter,
}

impl Followed {
    /// Reads to EOF or until `budget` is spent; returns the bytes read.
    fn drain(
        &mut self,
        chunk: &mut [u8],
        budget: u64,
        sink: &mut impl FnMut(Line<'_>),
    ) -> io::Result<u64> {
        // A file shorter than what we read was truncated in place (copytruncate).
        if self.file.metadata()?.len() < self.offset {
            self.lines.finish(sink);
            self.file.seek(SeekFrom::Start(0))?;
            self.offset = 0;
        }
        let mut total = 0;
        while total < budget {
            let n = match self.file.read(chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.offset += n as u64;
            total += n as u64;
            self.lines.feed(&chunk[..n], sink);
        }
        Ok(total)
    }
}

/// What one poll did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PollOutcome {
    /// Bytes read.
    pub bytes: u64,
    /// The read budget ran out before EOF: poll again soon.
    pub more: bool,
}

/// Follows one path. See the module docs for the rules.
#[derive(Debug)]
pub struct Tailer {
    /// The path being followed.
    path: PathBuf,
    /// The file the path named when last checked, if any.
    current: Option<Followed>,
    /// A rotated-away file still being drained, and how many quiet polls it has had.
    old: Option<(Followed, u32)>,
    /// The read buffer, shared by both files.
    chunk: Box<[u8]>,
    /// Longest accepted line.
    max_line: usize,
}

/// Device and inode of a file.
fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

impl Tailer {
    /// Starts following `path`: an existing file is read from its current end, a missing one
    /// from its start once it appears.
    pub fn new(path: impl Into<PathBuf>) -> io::Result<Self> {
        let mut t = Self::from_start(path);
        if let Some(mut f) = t.open()? {
            f.offset = f.file.seek(SeekFrom::End(0))?;
            // A writer caught mid-line: its head is history, so skip to the next line
            // instead of reporting a fragment as malformed.
            if f.offset > 0 {
                let mut last = [0u8];
                f.file.seek(SeekFrom::End(-1))?;
                f.file.read_exact(&mut last)?;
                if last[0] != b'\n' {
                    f.lines.resync();
                }
            }
            t.current = Some(f);
        }
        Ok(t)
    }

    /// Starts following `path` from the start of the file, existing or not.
    pub fn from_start(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            current: None,
            old: None,
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
            max_line: MAX_LINE,
        }
    }

    /// Sets the longest accepted line (default [`MAX_LINE`]).
    pub fn with_max_line(mut self, max_line: usize) -> Self {
        self.max_line = max_line;
        self
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the path; `None` when it does not exist.
    fn open(&self) -> io::Result<Option<Followed>> {
        match File::open(&self.path) {
            Ok(file) => {
                let id = file_id(&file.metadata()?);
                Ok(Some(Followed {
                    file,
                    id,
                    offset: 0,
                    lines: LineSplitter::new(self.max_line),
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads whatever is new and hands every complete line to `sink`, oldest data first:
    /// the rest of a rotated file before the new one.
    pub fn poll(&mut self, sink: &mut impl FnMut(Line<'_>)) -> io::Result<PollOutcome> {
        let mut out = PollOutcome::default();
        let mut budget = MAX_BYTES_PER_POLL;
        if let Some((old, quiet)) = &mut self.old {
            let n = old.drain(&mut self.chunk, budget, sink)?;
            budget -= n;
            out.bytes += n;
            *quiet = if n == 0 { *quiet + 1 } else { 0 };
            if budget == 0 {
                out.more = true;
                return Ok(out);
            }
            if *quiet > DRAIN_POLLS
                && let Some((mut old, _)) = self.old.take()
            {
                old.lines.finish(sink);
            }
        }
        // At most a couple of rounds: read the current file, notice a rotation, read the new.
        for _ in 0..3 {
            if self.current.is_none() {
                self.current = self.open()?;
            }
            let Some(cur) = &mut self.current else {
                return Ok(out);
            };
            let n = cur.drain(&mut self.chunk, budget, sink)?;
            budget -= n;
            out.bytes += n;
            if budget == 0 {
                out.more = true;
                return Ok(out);
            }
            match std::fs::metadata(&self.path) {
                Ok(m) if file_id(&m) != cur.id => {
                    // Rotated: the old file was read to its end just now; keep it a little
                    // longer for a writer that has not reopened yet, then switch.
                    if let Some((mut older, _)) = self.old.take() {
                        older.lines.finish(sink);
                    }
                    self.old = self.current.take().map(|f| (f, 0));
                }
                Ok(_) => return Ok(out),
                // Deleted (or between rename and create): keep the handle, wait.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// Tailer + parser + aggregator for one source: the synchronous core of a log source.
#[derive(Debug)]
pub struct SourceCore {
    /// Where lines come from.
    tailer: Tailer,
    /// Turns lines into records.
    parser: Parser,
    /// Turns records into complete seconds.
    agg: Aggregator,
}

impl SourceCore {
    /// Assembles a core from its parts.
    pub fn new(tailer: Tailer, parser: Parser, agg: Aggregator) -> Self {
        Self {
            tailer,
            parser,
            agg,
        }
    }

    /// Reads new lines, and hands every second completed by the log's clock or by `now`
    /// (wall clock, unix seconds) to `out`, in time order.
    pub fn poll(&mut self, now: i64, out: &mut impl FnMut(SecondStats)) -> io::Result<PollOutcome> {
        self.agg.set_wall_clock(now);
        let (parser, agg) = (&mut self.parser, &mut self.agg);
        let mut n: u32 = 0;
        let res = self.tailer.poll(&mut |line| {
            match line {
                Line::Complete(l) => match parser.parse(l) {
                    Ok(r) => agg.record(&r),
                    Err(_) => agg.malformed(),
                },
                Line::TooLong => agg.malformed(),
            }
            // Flushing often keeps the pending seconds few even when a backlog spans hours.
            n = n.wrapping_add(1);
            if n.is_multiple_of(64) {
                agg.flush(now, out);
            }
        });
        self.agg.flush(now, out);
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<Option<Vec<u8>>> {
        let mut s = LineSplitter::new(max);
        let mut v = Vec::new();
        let mut sink = |l: Line<'_>| {
            v.push(match l {
                Line::Complete(b) => Some(b.to_vec()),
                Line::TooLong => None,
            })
        };
        for c in chunks {
            s.feed(c, &mut sink);
        }
        s.finish(&mut sink);
        v
    }

    #[test]
    fn splitter_joins_and_limits() {
        let got = split(5, &[b"ab", b"c\nde", b"f\n123456\nxy"]);
        assert_eq!(
            got,
            [
                Some(b"abc".to_vec()),
                Some(b"def".to_vec()),
                None,
                Some(b"xy".to_vec())
            ]
        );
        // A long line across chunks is skipped up to its newline, once.
        let got = split(4, &[b"abc", b"defg", b"hij", b"k\nok\n"]);
        assert_eq!(got, [None, Some(b"ok".to_vec())]);
        // Exactly the limit is fine.
        assert_eq!(split(3, &[b"abc\n"]), [Some(b"abc".to_vec())]);
    }
}
