//! CPU usage, total and per core, as ratios in 0..=1.
//!
//! sysinfo computes usage from the `/proc/stat` jiffy counters between two
//! refreshes, so the first refresh only primes it and reports nothing.

use stacktop_proto::metrics::{CPU_USAGE, label};
use stacktop_proto::v1::Point;
use sysinfo::{CpuRefreshKind, System};

use super::push;
use crate::series::SeriesTable;

/// The CPU part of the sampler.
#[derive(Debug)]
pub struct Cpu {
    series: SeriesTable,
    total_id: u32,
    /// Interned per-core ids, by core index; grows when cores appear.
    core_ids: Vec<u32>,
    primed: bool,
}

impl Cpu {
    /// A CPU sampler interning into `series`.
    pub fn new(series: SeriesTable) -> Self {
        let total_id = series.intern(CPU_USAGE, &[]);
        Self {
            series,
            total_id,
            core_ids: Vec::new(),
            primed: false,
        }
    }

    /// Refreshes usage and appends total and per-core points.
    pub fn sample(&mut self, sys: &mut System, out: &mut Vec<Point>) {
        sys.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
        if !std::mem::replace(&mut self.primed, true) {
            return;
        }
        push(out, self.total_id, ratio(sys.global_cpu_usage()));
        for (index, cpu) in sys.cpus().iter().enumerate() {
            while self.core_ids.len() <= index {
                let core = self.core_ids.len().to_string();
                self.core_ids
                    .push(self.series.intern(CPU_USAGE, &[(label::CPU, &core)]));
            }
            push(out, self.core_ids[index], ratio(cpu.usage()));
        }
    }
}

/// sysinfo's percent (0..=100) as a ratio, clamped against rounding noise.
fn ratio(percent: f32) -> f64 {
    (f64::from(percent) / 100.0).clamp(0.0, 1.0)
}
