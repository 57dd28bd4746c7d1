//! Gorilla-style compression of `(timestamp ms, f32)` points, the way
//! Facebook's Gorilla and Prometheus keep recent samples in memory
//! (Pelkonen et al., VLDB 2015, section 4.1).
//!
//! A [`Chunk`] is a bit stream: its first timestamp in the header and the
//! first value raw, then for each further point the *delta of the delta*
//! of its timestamp and the XOR of its value with the previous one, each
//! with a prefix code that makes the common cases a few bits:
//!
//! - An agent samples every second with a few ms of jitter, and log-derived
//!   rates sit exactly on the second: the delta of delta is 0 (1 bit) or a
//!   few ms (6 bits). Gorilla's buckets start at 7 bits of payload, sized for
//!   second-resolution stamps; ours start at 4 because we store ms.
//! - Values are `f32` (the precision the history has always kept): an
//!   unchanged value is 1 bit; a changed one costs its meaningful XOR bits
//!   plus 2 bits when they fit the previous window, or 12 when not.
//!
//! Appending is O(1) ([`Chunk::push`], points in time order); reading
//! decodes from the start of a chunk ([`Chunk::iter`]). Anything else (an
//! out-of-order point) is a decode and re-encode of one chunk, which the
//! caller ([`crate::series`]) does rarely.

/// Timestamp delta-of-delta buckets: `(prefix, prefix length, payload bits)`.
/// The last bucket holds any `i64`.
const DOD_BUCKETS: [(u64, u32, u32); 5] = [
    (0b10, 2, 4),
    (0b110, 3, 8),
    (0b1110, 4, 13),
    (0b11110, 5, 20),
    (0b11111, 5, 64),
];

/// One compressed run of points, oldest first, with the state to append.
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    bits: Vec<u8>,
    /// Bits used in `bits`.
    bit_len: u32,
    count: u32,
    first_ms: i64,
    last_ms: i64,
    last_delta: i64,
    last_value: u32,
    /// The previous XOR window as `(leading zeros, meaningful bits)`;
    /// `meaningful == 0` while there is none.
    window: (u32, u32),
}

impl Chunk {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when no point was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The oldest point's timestamp (ms); meaningless while empty.
    pub fn first_ms(&self) -> i64 {
        self.first_ms
    }

    /// The newest point's timestamp (ms); meaningless while empty.
    pub fn last_ms(&self) -> i64 {
        self.last_ms
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.bits.capacity()
    }

    /// Gives back spare capacity: for a chunk that will not grow again.
    pub fn shrink(&mut self) {
        self.bits.shrink_to_fit();
    }

    /// Appends a point. `ts_ms` must be later than the newest point's (the
    /// caller keeps order; an equal or earlier stamp is a caller bug, and is
    /// encoded anyway so nothing is lost, out of order).
    pub fn push(&mut self, ts_ms: i64, value: f32) {
        let value = value.to_bits();
        if self.count == 0 {
            self.first_ms = ts_ms;
            self.last_ms = ts_ms;
            self.last_delta = 0;
            self.last_value = value;
            self.window = (0, 0);
            self.write(u64::from(value), 32);
            self.count = 1;
            return;
        }
        let delta = ts_ms.wrapping_sub(self.last_ms);
        let dod = delta.wrapping_sub(self.last_delta);
        self.write_dod(dod);
        self.write_xor(value ^ self.last_value);
        self.last_ms = ts_ms;
        self.last_delta = delta;
        self.last_value = value;
        self.count += 1;
    }

    /// Appends the chunk to `out` as bytes: its point count, first
    /// timestamp and stream length (little-endian), then the stream.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.first_ms.to_le_bytes());
        out.extend_from_slice(&(self.bits.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.bits);
    }

    /// A chunk written by [`Chunk::write_to`] at the start of `bytes`, and
    /// the bytes after it; `None` when they cannot be one. A damaged stream
    /// that passes these checks decodes to wrong points, never a panic.
    /// The chunk can be read, not appended to.
    pub fn read_from(bytes: &[u8]) -> Option<(Self, &[u8])> {
        let count = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
        let first_ms = i64::from_le_bytes(bytes.get(4..12)?.try_into().ok()?);
        let len = u32::from_le_bytes(bytes.get(12..16)?.try_into().ok()?) as usize;
        let bits = bytes.get(16..16usize.checked_add(len)?)?;
        // The first point takes 32 bits and every later one at least 2.
        let least = if count == 0 {
            0
        } else {
            32 + 2 * (u64::from(count) - 1)
        };
        if (len as u64) * 8 < least {
            return None;
        }
        let chunk = Self {
            bits: bits.to_vec(),
            bit_len: (len * 8) as u32,
            count,
            first_ms,
            ..Self::default()
        };
        Some((chunk, &bytes[16 + len..]))
    }

    /// Every point, oldest first.
    pub fn iter(&self) -> ChunkIter<'_> {
        ChunkIter {
            chunk: self,
            pos: 0,
            left: self.count,
            ts: self.first_ms,
            delta: 0,
            value: 0,
            window: (0, 0),
            first: true,
        }
    }

    fn write_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.write(0, 1);
            return;
        }
        for (prefix, prefix_len, payload) in DOD_BUCKETS {
            let fits = payload == 64 || {
                let half = 1i64 << (payload - 1);
                (-half..half).contains(&dod)
            };
            if fits {
                self.write(prefix, prefix_len);
                let mask = if payload == 64 {
                    u64::MAX
                } else {
                    (1u64 << payload) - 1
                };
                self.write(dod as u64 & mask, payload);
                return;
            }
        }
    }

    fn write_xor(&mut self, xor: u32) {
        if xor == 0 {
            self.write(0, 1);
            return;
        }
        let leading = xor.leading_zeros();
        let trailing = xor.trailing_zeros();
        let (prev_leading, prev_meaningful) = self.window;
        if prev_meaningful > 0
            && leading >= prev_leading
            && trailing >= 32 - prev_leading - prev_meaningful
        {
            self.write(0b10, 2);
            let shift = 32 - prev_leading - prev_meaningful;
            self.write(u64::from(xor >> shift), prev_meaningful);
            return;
        }
        let meaningful = 32 - leading - trailing;
        self.write(0b11, 2);
        self.write(u64::from(leading), 5);
        self.write(u64::from(meaningful - 1), 5);
        self.write(u64::from(xor >> trailing), meaningful);
        self.window = (leading, meaningful);
    }

    /// Appends the low `n` bits of `value`, most significant first.
    fn write(&mut self, value: u64, n: u32) {
        let mut left = n;
        while left > 0 {
            let used = self.bit_len % 8;
            if used == 0 {
                self.bits.push(0);
            }
            let room = 8 - used;
            let take = room.min(left);
            let part = ((value >> (left - take)) & ((1u64 << take) - 1)) as u8;
            let last = self.bits.len() - 1;
            self.bits[last] |= part << (room - take);
            self.bit_len += take;
            left -= take;
        }
    }
}

/// Decodes a [`Chunk`], oldest point first.
pub struct ChunkIter<'a> {
    chunk: &'a Chunk,
    pos: u32,
    left: u32,
    ts: i64,
    delta: i64,
    value: u32,
    window: (u32, u32),
    first: bool,
}

impl ChunkIter<'_> {
    fn read(&mut self, n: u32) -> u64 {
        let mut out = 0u64;
        let mut left = n;
        while left > 0 {
            // Past the end only in a damaged chunk: zeros, not a panic.
            let byte = self
                .chunk
                .bits
                .get((self.pos / 8) as usize)
                .copied()
                .unwrap_or(0);
            let used = self.pos % 8;
            let room = 8 - used;
            let take = room.min(left);
            let part = (byte >> (room - take)) & (((1u16 << take) - 1) as u8);
            out = (out << take) | u64::from(part);
            self.pos += take;
            left -= take;
        }
        out
    }

    fn read_dod(&mut self) -> i64 {
        if self.read(1) == 0 {
            return 0;
        }
        let mut ones = 1;
        while ones < 5 && self.read(1) == 1 {
            ones += 1;
        }
        let payload = DOD_BUCKETS[(ones - 1) as usize].2;
        let raw = self.read(payload);
        if payload == 64 {
            raw as i64
        } else {
            // Sign-extend the payload.
            let shift = 64 - payload;
            ((raw << shift) as i64) >> shift
        }
    }

    fn read_xor(&mut self) -> u32 {
        if self.read(1) == 0 {
            return 0;
        }
        if self.read(1) == 0 {
            let (leading, meaningful) = self.window;
            if meaningful == 0 {
                return 0; // damaged: no window yet
            }
            let shift = 32u32.saturating_sub(leading + meaningful);
            return (self.read(meaningful) as u32) << shift;
        }
        let leading = self.read(5) as u32;
        let meaningful = self.read(5) as u32 + 1;
        self.window = (leading, meaningful);
        let shift = 32u32.saturating_sub(leading + meaningful);
        (self.read(meaningful) as u32) << shift
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = (i64, f32);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if self.first {
            self.first = false;
            self.value = self.read(32) as u32;
            return Some((self.ts, f32::from_bits(self.value)));
        }
        self.delta = self.delta.wrapping_add(self.read_dod());
        self.ts = self.ts.wrapping_add(self.delta);
        self.value ^= self.read_xor();
        Some((self.ts, f32::from_bits(self.value)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for ChunkIter<'_> {}

/// A chunk holding `points` (in the given order).
pub fn encode(points: impl IntoIterator<Item = (i64, f32)>) -> Chunk {
    let mut chunk = Chunk::default();
    for (ts, v) in points {
        chunk.push(ts, v);
    }
    chunk
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const T0: i64 = 1_795_608_000_123;

    fn round_trip(points: &[(i64, f32)]) {
        let chunk = encode(points.iter().copied());
        let back: Vec<(i64, u32)> = chunk.iter().map(|(t, v)| (t, v.to_bits())).collect();
        let want: Vec<(i64, u32)> = points.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(back, want);
        assert_eq!(chunk.len(), points.len());
    }

    #[test]
    fn regular_constant_series_cost_about_two_bits_a_point() {
        let points: Vec<_> = (0..240).map(|i| (T0 + i * 1_000, 42.0)).collect();
        let chunk = encode(points.iter().copied());
        round_trip(&points);
        // 32 bits for the first value, 2 bits per later point (dod 0, xor 0)
        // except the second point's delta.
        assert!(chunk.bit_len < 32 + 2 * 240 + 20, "{} bits", chunk.bit_len);
    }

    #[test]
    fn jittery_noisy_points_round_trip() {
        let mut x = 0.123f32;
        let points: Vec<_> = (0..500)
            .map(|i: i64| {
                x = (x * 3.7 * (1.0 - x)).clamp(0.0, 1.0);
                (T0 + i * 1_000 + (i * 7919) % 13 - 6, x)
            })
            .collect();
        round_trip(&points);
    }

    #[test]
    fn extremes_round_trip() {
        round_trip(&[
            (i64::MIN, f32::MAX),
            (0, f32::MIN_POSITIVE),
            (i64::MAX, -0.0),
            (-5, f32::NAN),
            (-5, 0.0),
            (1 << 40, 1e-30),
        ]);
        round_trip(&[]);
        round_trip(&[(T0, 1.0)]);
    }

    #[test]
    fn chunks_round_trip_through_bytes() {
        let points: Vec<_> = (0..100)
            .map(|i| (T0 + i * 1_000, i as f32 * 0.25))
            .collect();
        let mut bytes = Vec::new();
        encode(points.iter().copied()).write_to(&mut bytes);
        bytes.push(7);
        let (chunk, rest) = Chunk::read_from(&bytes).unwrap();
        assert_eq!(chunk.iter().collect::<Vec<_>>(), points);
        assert_eq!(rest, [7]);
        assert!(Chunk::read_from(&bytes[..20]).is_none());
    }

    proptest! {
        #[test]
        fn damaged_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Some((chunk, _)) = Chunk::read_from(&bytes) {
                let _ = chunk.iter().count();
            }
        }

        #[test]
        fn any_points_round_trip(points in proptest::collection::vec((any::<i64>(), any::<u32>()), 0..300)) {
            let points: Vec<(i64, f32)> = points.into_iter().map(|(t, v)| (t, f32::from_bits(v))).collect();
            round_trip(&points);
        }

        #[test]
        fn near_regular_points_round_trip(
            start in any::<i32>(),
            steps in proptest::collection::vec((0i64..5_000, -1_000i32..1_000), 0..300),
        ) {
            let mut t = i64::from(start);
            let mut v = 0.0f32;
            let points: Vec<(i64, f32)> = steps.into_iter().map(|(dt, dv)| {
                t += dt;
                v += dv as f32 / 7.0;
                (t, v)
            }).collect();
            round_trip(&points);
        }
    }
}
