//! Timestamp parsing for access-log lines, on bytes.
//!
//! Access logs carry one of three clocks:
//!
//! - Nginx `$time_local` / HAProxy accept date: `25/Nov/2026:12:00:01 +0530` (HAProxy writes
//!   `25/Nov/2026:12:00:01.123` with milliseconds and no zone: it is the balancer's local time,
//!   so the caller supplies the offset);
//! - Nginx `$time_iso8601`: `2026-11-25T12:00:01+05:30` (or `Z`);
//! - Nginx `$msec`: `1732573071.123`, seconds since the epoch.
//!
//! Turning a calendar date into epoch seconds is the expensive part, and consecutive lines
//! almost always share the same minute, so [`MinuteCache`] remembers the last minute prefix
//! (date, hour, minute and zone bytes) and its epoch value: a hit costs one short byte
//! comparison plus two digits for the seconds.

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
///
/// Exact for every year an access log can carry, without tables or a date crate.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses exactly two ASCII digits.
#[inline]
fn two(b: &[u8]) -> Option<u32> {
    let (a, c) = (b[0].wrapping_sub(b'0'), b[1].wrapping_sub(b'0'));
    (a < 10 && c < 10).then_some(u32::from(a) * 10 + u32::from(c))
}

/// Parses exactly four ASCII digits.
#[inline]
fn four(b: &[u8]) -> Option<u32> {
    Some(two(&b[0..2])? * 100 + two(&b[2..4])?)
}

/// Maps an English three-letter month abbreviation (as `strftime("%b")` writes it) to 1..=12.
#[inline]
fn month_abbrev(b: &[u8]) -> Option<u32> {
    // Case-sensitive on purpose: Nginx and HAProxy always write "Nov", never "nov".
    Some(match b {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

/// Days in `month` of `year`, so that `31/Feb` is rejected instead of silently rolling over.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Epoch seconds of a validated calendar minute in UTC.
fn minute_epoch(year: u32, month: u32, day: u32, hour: u32, minute: u32) -> Option<i64> {
    let year = i64::from(year);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * DAY + i64::from(hour) * 3600 + i64::from(minute) * 60)
}

/// Parses a `+hhmm` / `-hhmm` zone offset (as in `$time_local`) into seconds east of UTC.
pub fn parse_offset_hhmm(b: &[u8]) -> Option<i32> {
    if b.len() != 5 {
        return None;
    }
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = (two(&b[1..3])?, two(&b[3..5])?);
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60) as i32)
}

/// Parses a user-written offset: `+0530`, `-07:00`, `+00:00`, `Z` or `UTC`.
pub fn parse_offset_text(s: &str) -> Option<i32> {
    match s {
        "Z" | "UTC" | "utc" => return Some(0),
        _ => {}
    }
    let b = s.as_bytes();
    if b.len() == 6 && b[3] == b':' {
        let joined = [b[0], b[1], b[2], b[4], b[5]];
        return parse_offset_hhmm(&joined);
    }
    parse_offset_hhmm(b)
}

/// A one-entry cache from "which minute" bytes to that minute's epoch seconds.
///
/// Keyed by the raw bytes of the date-hour-minute prefix plus the zone, so a hit needs no
/// parsing at all. One entry is enough: logs are written in time order, so the minute changes
/// at most once a minute (plus the odd late line).
#[derive(Debug, Clone, Default)]
pub struct MinuteCache {
    /// The bytes that identify the cached minute (prefix then zone), zero-padded.
    key: [u8; 24],
    /// How many bytes of `key` are in use; 0 means empty.
    key_len: u8,
    /// Epoch seconds (UTC) of second 0 of the cached minute.
    epoch: i64,
}

impl MinuteCache {
    /// Creates an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks up the minute for `prefix` + `zone`, computing and remembering it on a miss.
    #[inline(always)]
    fn get(
        &mut self,
        prefix: &[u8],
        zone: &[u8],
        compute: impl FnOnce() -> Option<i64>,
    ) -> Option<i64> {
        let n = prefix.len() + zone.len();
        debug_assert!(n <= self.key.len());
        if usize::from(self.key_len) == n
            && &self.key[..prefix.len()] == prefix
            && &self.key[prefix.len()..n] == zone
        {
            return Some(self.epoch);
        }
        let epoch = compute()?;
        self.key[..prefix.len()].copy_from_slice(prefix);
        self.key[prefix.len()..n].copy_from_slice(zone);
        self.key_len = n as u8;
        self.epoch = epoch;
        Some(epoch)
    }

    /// Parses Nginx `$time_local` (`25/Nov/2026:12:00:01 +0530`, exactly 26 bytes) into unix
    /// seconds, honouring the zone offset.
    #[inline(always)]
    pub fn clf(&mut self, b: &[u8]) -> Option<i64> {
        if b.len() < 26 || b[20] != b' ' {
            return None;
        }
        let sec = seconds(&b[17..20])?;
        let base = self.get(&b[..17], &b[21..26], || {
            let off = parse_offset_hhmm(&b[21..26])?;
            Some(clf_minute(&b[..17])? - i64::from(off))
        })?;
        Some(base + sec)
    }

    /// Parses a HAProxy accept date (`25/Nov/2026:12:00:01.123` or without `.123`) that is in
    /// local time at `offset` seconds east of UTC. Returns unix seconds (milliseconds dropped).
    #[inline]
    pub fn clf_no_zone(&mut self, b: &[u8], offset: i32) -> Option<i64> {
        if b.len() < 20 {
            return None;
        }
        let sec = seconds(&b[17..20])?;
        let zone = offset.to_le_bytes();
        let base = self.get(&b[..17], &zone, || {
            Some(clf_minute(&b[..17])? - i64::from(offset))
        })?;
        Some(base + sec)
    }

    /// Parses Nginx `$time_iso8601` (`2026-11-25T12:00:01+05:30`, or `Z` for the zone).
    /// Returns the unix seconds and how many bytes the timestamp took.
    #[inline]
    pub fn iso8601(&mut self, b: &[u8]) -> Option<(i64, usize)> {
        if b.len() < 20 {
            return None;
        }
        let sec = seconds(&b[16..19])?;
        let mut i = 19;
        // Fractional seconds are not written by Nginx but are legal ISO 8601; skip them.
        if b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        let zone_len = match b.get(i) {
            Some(b'Z') => 1,
            Some(b'+' | b'-') if b.len() >= i + 6 && b[i + 3] == b':' => 6,
            _ => return None,
        };
        let zone = &b[i..i + zone_len];
        let base = self.get(&b[..16], zone, || {
            if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
                return None;
            }
            let off = if zone_len == 1 {
                0
            } else {
                parse_offset_hhmm(&[zone[0], zone[1], zone[2], zone[4], zone[5]])?
            };
            let m = minute_epoch(
                four(&b[0..4])?,
                two(&b[5..7])?,
                two(&b[8..10])?,
                two(&b[11..13])?,
                two(&b[14..16])?,
            )?;
            Some(m - i64::from(off))
        })?;
        Some((base + sec, i + zone_len))
    }
}

/// Parses `:SS` (the colon and two digits) into seconds, allowing a leap second 60.
#[inline]
fn seconds(b: &[u8]) -> Option<i64> {
    if b[0] != b':' {
        return None;
    }
    let s = two(&b[1..3])?;
    (s <= 60).then_some(i64::from(s))
}

/// Epoch seconds (as if UTC) of the minute in `25/Nov/2026:12:00`.
fn clf_minute(b: &[u8]) -> Option<i64> {
    if b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[14] != b':' {
        return None;
    }
    minute_epoch(
        four(&b[7..11])?,
        month_abbrev(&b[3..6])?,
        two(&b[0..2])?,
        two(&b[12..14])?,
        two(&b[15..17])?,
    )
}

/// Parses Nginx `$msec` (`1732573071.123`): returns unix seconds and the bytes consumed.
///
/// The milliseconds are dropped because buckets are whole seconds.
#[inline]
pub fn msec(b: &[u8]) -> Option<(i64, usize)> {
    let mut i = 0;
    let mut v: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        // Ten digits cover every date until 2286; more than 12 is garbage, not a time.
        if i >= 12 {
            return None;
        }
        v = v * 10 + i64::from(b[i] - b'0');
        i += 1;
    }
    if i == 0 {
        return None;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    Some((v, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_known_values() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn clf_with_zones() {
        let mut c = MinuteCache::new();
        // 2026-11-25T12:00:01Z
        let utc = 1_795_608_001;
        assert_eq!(c.clf(b"25/Nov/2026:12:00:01 +0000"), Some(utc));
        assert_eq!(c.clf(b"25/Nov/2026:17:30:01 +0530"), Some(utc));
        assert_eq!(c.clf(b"25/Nov/2026:05:00:01 -0700"), Some(utc));
        // A cache hit with a different second.
        assert_eq!(c.clf(b"25/Nov/2026:05:00:59 -0700"), Some(utc + 58));
        // Same minute bytes but a different zone must not reuse the cached value.
        assert_eq!(c.clf(b"25/Nov/2026:05:00:01 +0000"), Some(utc - 7 * 3600));
    }

    #[test]
    fn clf_rejects_garbage() {
        let mut c = MinuteCache::new();
        for bad in [
            &b"25/Nov/2026:12:00:01"[..],
            b"25/Nox/2026:12:00:01 +0000",
            b"31/Feb/2026:12:00:01 +0000",
            b"25/Nov/2026:24:00:01 +0000",
            b"25/Nov/2026:12:00:61 +0000",
            b"25/Nov/2026:12:00:01 +2400",
            b"25/Nov/2026:12:00:01 0000 ",
            b"2x/Nov/2026:12:00:01 +0000",
        ] {
            assert_eq!(c.clf(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn iso_and_msec() {
        let mut c = MinuteCache::new();
        let utc = 1_795_608_001;
        assert_eq!(c.iso8601(b"2026-11-25T12:00:01+00:00"), Some((utc, 25)));
        assert_eq!(c.iso8601(b"2026-11-25T17:30:01+05:30 x"), Some((utc, 25)));
        assert_eq!(c.iso8601(b"2026-11-25T12:00:01Z"), Some((utc, 20)));
        assert_eq!(c.iso8601(b"2026-11-25T12:00:01.5Z"), Some((utc, 22)));
        assert_eq!(c.iso8601(b"2026-11-25 12:00:01+00:00"), None);
        assert_eq!(msec(b"1795608001.123 200"), Some((utc, 14)));
        assert_eq!(msec(b"1795608001 200"), Some((utc, 10)));
        assert_eq!(msec(b"x"), None);
    }

    #[test]
    fn haproxy_local_time() {
        let mut c = MinuteCache::new();
        let utc = 1_795_608_001;
        assert_eq!(c.clf_no_zone(b"25/Nov/2026:12:00:01.123", 0), Some(utc));
        assert_eq!(c.clf_no_zone(b"25/Nov/2026:13:00:01.123", 3600), Some(utc));
    }

    #[test]
    fn offsets_from_text() {
        assert_eq!(parse_offset_text("Z"), Some(0));
        assert_eq!(parse_offset_text("+0530"), Some(19_800));
        assert_eq!(parse_offset_text("-07:00"), Some(-25_200));
        assert_eq!(parse_offset_text("0700"), None);
    }
}
