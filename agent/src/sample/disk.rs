//! Disks: filesystem usage per mount point and I/O rates per block device.
//!
//! The mount list (sysinfo, from `/proc/mounts`) and the set of whole block
//! devices (`/sys/block`) change rarely, so they are re-read every
//! [`LIST_EVERY`]; each tick only `statvfs`es the known mounts and reads
//! `/proc/diskstats` once. I/O is reported per whole device (`sda`,
//! `nvme0n1`, `vda`), like node_exporter, not per partition or mount, so a
//! device mounted twice is not counted twice.

use std::time::{Duration, Instant};

use stacktop_proto::metrics::{self, label};
use stacktop_proto::v1::Point;
use sysinfo::DiskRefreshKind;

use super::{Rate, push, read_into};
use crate::series::SeriesTable;

/// How often the mount list and the block-device set are re-read.
pub const LIST_EVERY: Duration = Duration::from_secs(60);

/// `/proc/diskstats` counts 512-byte sectors whatever the device's sector size.
const SECTOR_BYTES: u64 = 512;

/// Device-name prefixes that are not real storage traffic.
const IGNORED_DEVICES: [&str; 5] = ["loop", "ram", "zram", "fd", "nbd"];

#[derive(Debug)]
struct Mount {
    used_id: u32,
    size_id: u32,
}

#[derive(Debug)]
struct Device {
    name: String,
    read_id: u32,
    written_id: u32,
    read: Rate,
    written: Rate,
}

/// The disk part of the sampler.
pub struct Disks {
    series: SeriesTable,
    disks: sysinfo::Disks,
    /// Ids for `disks.list()`, index for index.
    mounts: Vec<Mount>,
    devices: Vec<Device>,
    /// Whole block devices; `None` when `/sys/block` is unreadable, in
    /// which case every non-ignored device in diskstats is reported.
    whole: Option<Vec<String>>,
    listed_at: Option<Instant>,
    buf: String,
}

impl Disks {
    /// A disk sampler interning into `series`.
    pub fn new(series: SeriesTable) -> Result<Self, sysinfo::Error> {
        Ok(Self {
            series,
            disks: sysinfo::Disks::new()?,
            mounts: Vec::new(),
            devices: Vec::new(),
            whole: None,
            listed_at: None,
            buf: String::with_capacity(4096),
        })
    }

    /// Appends filesystem and I/O points.
    pub fn sample(&mut self, now: Instant, out: &mut Vec<Point>) {
        let due = self
            .listed_at
            .is_none_or(|at| now.saturating_duration_since(at) >= LIST_EVERY);
        if due {
            self.listed_at = Some(now);
            self.relist();
        } else {
            for disk in self.disks.iter_mut() {
                disk.refresh_specifics(DiskRefreshKind::nothing().with_storage());
            }
        }
        for (disk, mount) in self.disks.iter().zip(&self.mounts) {
            let size = disk.total_space();
            if size == 0 {
                continue;
            }
            push(
                out,
                mount.used_id,
                size.saturating_sub(disk.available_space()) as f64,
            );
            push(out, mount.size_id, size as f64);
        }
        self.sample_io(now, out);
    }

    fn relist(&mut self) {
        self.disks
            .refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        self.mounts.clear();
        for disk in self.disks.iter() {
            let mount = disk.mount_point().to_string_lossy();
            self.mounts.push(Mount {
                used_id: self
                    .series
                    .intern(metrics::FILESYSTEM_USED, &[(label::MOUNT, &mount)]),
                size_id: self
                    .series
                    .intern(metrics::FILESYSTEM_SIZE, &[(label::MOUNT, &mount)]),
            });
        }
        self.whole = std::fs::read_dir("/sys/block").ok().map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        });
    }

    fn sample_io(&mut self, now: Instant, out: &mut Vec<Point>) {
        if read_into("/proc/diskstats", &mut self.buf).is_err() {
            return;
        }
        for line in self.buf.lines() {
            let Some((name, read, written)) = parse_diskstats_line(line) else {
                continue;
            };
            if IGNORED_DEVICES.iter().any(|p| name.starts_with(p)) {
                continue;
            }
            if let Some(whole) = &self.whole
                && !whole.iter().any(|w| w == name)
            {
                continue;
            }
            let index = match self.devices.iter().position(|d| d.name == name) {
                Some(index) => index,
                None => {
                    self.devices.push(Device {
                        name: name.to_string(),
                        read_id: self
                            .series
                            .intern(metrics::DISK_READ, &[(label::DEVICE, name)]),
                        written_id: self
                            .series
                            .intern(metrics::DISK_WRITTEN, &[(label::DEVICE, name)]),
                        read: Rate::default(),
                        written: Rate::default(),
                    });
                    self.devices.len() - 1
                }
            };
            let device = &mut self.devices[index];
            if let Some(rate) = device.read.update(read, now) {
                push(out, device.read_id, rate);
            }
            if let Some(rate) = device.written.update(written, now) {
                push(out, device.written_id, rate);
            }
        }
    }
}

/// Device name and bytes read and written from one `/proc/diskstats` line
/// (`major minor name reads merged sectors_read ms writes merged
/// sectors_written ...`).
fn parse_diskstats_line(line: &str) -> Option<(&str, u64, u64)> {
    let mut fields = line.split_ascii_whitespace();
    let name = fields.nth(2)?;
    let sectors_read: u64 = fields.nth(2)?.parse().ok()?;
    let sectors_written: u64 = fields.nth(3)?.parse().ok()?;
    Some((
        name,
        sectors_read.saturating_mul(SECTOR_BYTES),
        sectors_written.saturating_mul(SECTOR_BYTES),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diskstats_line_gives_bytes() {
        let line = " 253       0 vda 9113 2 488922 3021 41529 32107 1811498 52187 0 40528 55208";
        assert_eq!(
            parse_diskstats_line(line),
            Some(("vda", 488_922 * 512, 1_811_498 * 512))
        );
        assert_eq!(parse_diskstats_line("   7 0 loop0"), None);
    }
}
