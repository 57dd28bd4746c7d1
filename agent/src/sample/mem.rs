//! Memory and swap, in bytes, from `/proc/meminfo` through sysinfo.

use stacktop_proto::metrics;
use stacktop_proto::v1::Point;
use sysinfo::{MemoryRefreshKind, System};

use super::push;
use crate::series::SeriesTable;

/// The memory part of the sampler: interned ids of its five series.
#[derive(Debug)]
pub struct Memory {
    used: u32,
    available: u32,
    total: u32,
    swap_used: u32,
    swap_total: u32,
}

impl Memory {
    /// A memory sampler interning into `series`.
    pub fn new(series: &SeriesTable) -> Self {
        Self {
            used: series.intern(metrics::MEMORY_USED, &[]),
            available: series.intern(metrics::MEMORY_AVAILABLE, &[]),
            total: series.intern(metrics::MEMORY_TOTAL, &[]),
            swap_used: series.intern(metrics::SWAP_USED, &[]),
            swap_total: series.intern(metrics::SWAP_TOTAL, &[]),
        }
    }

    /// Refreshes RAM and swap and appends their points.
    pub fn sample(&mut self, sys: &mut System, out: &mut Vec<Point>) {
        sys.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        if sys.total_memory() == 0 {
            // Nothing could be read (no /proc): unknown, not zero.
            return;
        }
        push(out, self.used, sys.used_memory() as f64);
        push(out, self.available, sys.available_memory() as f64);
        push(out, self.total, sys.total_memory() as f64);
        push(out, self.swap_used, sys.used_swap() as f64);
        push(out, self.swap_total, sys.total_swap() as f64);
    }
}
