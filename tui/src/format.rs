//! Human-readable numbers for the screens and `stacktop status`.
//!
//! Every formatter takes an `Option` because the collector reports unknown
//! values as absent; unknown is always shown as [`UNKNOWN`], never as 0.

/// What an unknown value looks like on screen.
pub const UNKNOWN: &str = "—";

/// A 0..1 ratio as a percentage, e.g. `12.3%`.
pub fn percent(ratio: Option<f64>) -> String {
    match ratio {
        Some(r) if r.is_finite() => {
            let p = r * 100.0;
            if p >= 99.95 {
                format!("{p:.0}%")
            } else {
                format!("{p:.1}%")
            }
        }
        _ => UNKNOWN.to_string(),
    }
}

/// A load average, e.g. `0.52`.
pub fn load(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => {
            if v >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        }
        _ => UNKNOWN.to_string(),
    }
}

/// Requests per second, e.g. `12.3` or `4.5k`.
pub fn rate(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => {
            if v >= 999_950.0 {
                format!("{:.1}M", v / 1e6)
            } else if v >= 9_999.5 {
                format!("{:.1}k", v / 1e3)
            } else if v >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        }
        _ => UNKNOWN.to_string(),
    }
}

/// A byte count in decimal units, e.g. `1.2 GB`.
pub fn bytes(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => scaled(v, "B"),
        _ => UNKNOWN.to_string(),
    }
}

/// A byte rate in decimal units, e.g. `1.2 MB/s`.
pub fn byte_rate(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => scaled(v, "B/s"),
        _ => UNKNOWN.to_string(),
    }
}

fn scaled(v: f64, unit: &str) -> String {
    const PREFIXES: [&str; 6] = ["", "k", "M", "G", "T", "P"];
    let mut v = v.max(0.0);
    let mut i = 0;
    while v >= 999.5 && i < PREFIXES.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {unit}")
    } else if v >= 99.95 {
        format!("{v:.0} {}{unit}", PREFIXES[i])
    } else {
        format!("{v:.1} {}{unit}", PREFIXES[i])
    }
}

/// A duration in whole seconds, compact: `42s`, `5m`, `3h`, `2d`.
pub fn ago(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7_199 => format!("{}m", s / 60),
        7_200..=172_799 => format!("{}h", s / 3_600),
        _ => format!("{}d", s / 86_400),
    }
}

/// A duration in whole seconds, two units at most, for ages that matter
/// to the second: `42s`, `3m12s`, `2h05m`, `3d04h`.
pub fn elapsed(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3_599 => format!("{}m{:02}s", s / 60, s % 60),
        3_600..=86_399 => format!("{}h{:02}m", s / 3_600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86_400, s / 3_600 % 24),
    }
}

/// How long ago `then_ms` was at `now_ms`, e.g. `3s ago`; `never` for 0.
pub fn seen(then_ms: i64, now_ms: i64) -> String {
    if then_ms <= 0 {
        "never".to_string()
    } else {
        format!("{} ago", ago((now_ms - then_ms) / 1000))
    }
}

/// An uptime, two units at most: `3d 4h`, `5h 12m`, `42s`.
pub fn uptime(seconds: Option<f64>) -> String {
    let Some(s) = seconds.filter(|s| s.is_finite() && *s >= 0.0) else {
        return UNKNOWN.to_string();
    };
    let s = s as u64;
    let (d, h, m) = (s / 86_400, s / 3_600 % 24, s / 60 % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

/// Ratios (0..1) as a text sparkline of block characters, newest last, at
/// most `width` characters wide.
pub fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let start = values.len().saturating_sub(width);
    values[start..]
        .iter()
        .map(|v| {
            let v = if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.0
            };
            BARS[(v * 7.0).round() as usize]
        })
        .collect()
}

/// `s` cut to `width` characters (with `…` when cut), padded on the right.
pub fn fit_left(s: &str, width: usize) -> String {
    let cut = truncate(s, width);
    let pad = width.saturating_sub(cut.chars().count());
    format!("{cut}{}", " ".repeat(pad))
}

/// `s` cut to `width` characters (with `…` when cut), padded on the left.
pub fn fit_right(s: &str, width: usize) -> String {
    let cut = truncate(s, width);
    let pad = width.saturating_sub(cut.chars().count());
    format!("{}{cut}", " ".repeat(pad))
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else if width == 0 {
        String::new()
    } else {
        let mut out: String = s.chars().take(width - 1).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_is_a_dash_never_zero() {
        assert_eq!(percent(None), "—");
        assert_eq!(byte_rate(None), "—");
        assert_eq!(load(None), "—");
        assert_eq!(rate(None), "—");
    }

    #[test]
    fn numbers_read_like_a_person_wrote_them() {
        assert_eq!(percent(Some(0.123)), "12.3%");
        assert_eq!(percent(Some(1.0)), "100%");
        assert_eq!(byte_rate(Some(1_234_567.0)), "1.2 MB/s");
        assert_eq!(byte_rate(Some(512.0)), "512 B/s");
        assert_eq!(bytes(Some(8.0e9)), "8.0 GB");
        assert_eq!(rate(Some(12_345.0)), "12.3k");
        assert_eq!(ago(42), "42s");
        assert_eq!(ago(600), "10m");
        assert_eq!(uptime(Some(90_061.0)), "1d 1h");
        assert_eq!(seen(0, 5), "never");
        assert_eq!(elapsed(192), "3m12s");
        assert_eq!(elapsed(7_500), "2h05m");
        assert_eq!(elapsed(3 * 86_400 + 4 * 3_600), "3d04h");
        assert_eq!(elapsed(-5), "0s");
    }

    #[test]
    fn fitting_truncates_with_an_ellipsis() {
        assert_eq!(fit_left("abcdef", 4), "abc…");
        assert_eq!(fit_right("ab", 4), "  ab");
        assert_eq!(sparkline(&[0.0, 0.5, 1.0], 2), "▅█");
    }
}
