//! Network: receive and transmit rates per interface, from one read of
//! `/proc/net/dev` per tick (sysinfo would open about ten sysfs files per
//! interface). Loopback is reported too; the collector leaves it out of
//! its summary. Interfaces that disappear are forgotten, so one that comes
//! back starts over without a bogus rate.

use std::time::Instant;

use stacktop_proto::metrics::{self, label};
use stacktop_proto::v1::Point;

use super::{Rate, push, read_into};
use crate::series::SeriesTable;

#[derive(Debug)]
struct Interface {
    name: String,
    rx_id: u32,
    tx_id: u32,
    rx: Rate,
    tx: Rate,
    seen: bool,
}

/// The network part of the sampler.
#[derive(Debug)]
pub struct Network {
    series: SeriesTable,
    interfaces: Vec<Interface>,
    buf: String,
}

impl Network {
    /// A network sampler interning into `series`.
    pub fn new(series: SeriesTable) -> Self {
        Self {
            series,
            interfaces: Vec::new(),
            buf: String::with_capacity(2048),
        }
    }

    /// Appends rate points for every interface read before.
    pub fn sample(&mut self, now: Instant, out: &mut Vec<Point>) {
        if read_into("/proc/net/dev", &mut self.buf).is_err() {
            return;
        }
        for interface in &mut self.interfaces {
            interface.seen = false;
        }
        for line in self.buf.lines() {
            let Some((name, rx, tx)) = parse_net_dev_line(line) else {
                continue;
            };
            let index = match self.interfaces.iter().position(|i| i.name == name) {
                Some(index) => index,
                None => {
                    self.interfaces.push(Interface {
                        name: name.to_string(),
                        rx_id: self
                            .series
                            .intern(metrics::NETWORK_RECEIVE, &[(label::DEVICE, name)]),
                        tx_id: self
                            .series
                            .intern(metrics::NETWORK_TRANSMIT, &[(label::DEVICE, name)]),
                        rx: Rate::default(),
                        tx: Rate::default(),
                        seen: false,
                    });
                    self.interfaces.len() - 1
                }
            };
            let interface = &mut self.interfaces[index];
            interface.seen = true;
            if let Some(rate) = interface.rx.update(rx, now) {
                push(out, interface.rx_id, rate);
            }
            if let Some(rate) = interface.tx.update(tx, now) {
                push(out, interface.tx_id, rate);
            }
        }
        self.interfaces.retain(|i| i.seen);
    }
}

/// Interface name and receive/transmit byte counters from one line of
/// `/proc/net/dev` (`name: rx_bytes rx_packets ... (8 rx fields) tx_bytes ...`).
fn parse_net_dev_line(line: &str) -> Option<(&str, u64, u64)> {
    let (name, counters) = line.split_once(':')?;
    let mut fields = counters.split_ascii_whitespace();
    let rx = fields.next()?.parse().ok()?;
    let tx = fields.nth(7)?.parse().ok()?;
    Some((name.trim(), rx, tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_line_gives_byte_counters() {
        let line = "  eth0: 253508297   10416    0    0    0     0          0         0   664256    5476    0    0    0     0       0          0";
        assert_eq!(
            parse_net_dev_line(line),
            Some(("eth0", 253_508_297, 664_256))
        );
        assert_eq!(parse_net_dev_line(" face |bytes    packets errs"), None);
    }
}
