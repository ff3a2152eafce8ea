//! Time-ordered ids: version-7 UUIDs (RFC 9562 §5.7), monotonic within one generator.
//!
//! Layout: 48 bits of Unix milliseconds, the version (7), 12 bits `rand_a`, the variant (0b10),
//! 62 bits `rand_b`. The 74 bits after the timestamp are one counter here (RFC 9562 §6.2,
//! method 2, "monotonic random"): a new millisecond starts it at a random value below half its
//! range (so that increments have room), and each further id in the same millisecond — or
//! after the clock stepped back — adds one to it. Ids of one generator therefore only grow,
//! which keeps inserts at the right edge of each primary-key index. The random bytes and the
//! clock come from the caller: this module reads neither.

/// Bits of the counter after the timestamp (`rand_a` 12 + `rand_b` 62).
const COUNTER_BITS: u32 = 74;
const COUNTER_MAX: u128 = (1 << COUNTER_BITS) - 1;
/// Largest timestamp 48 bits hold (year 10889).
const MILLIS_MAX: u64 = (1 << 48) - 1;

/// The state of one generator: the last id's millisecond and counter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IdClock {
    last: Option<(u64, u128)>,
}

impl IdClock {
    /// The next id: for `now_ms` (Unix milliseconds) and 10 fresh random bytes. Greater than
    /// every id this generator made before, whatever the clock did.
    pub fn next(&mut self, now_ms: u64, random: [u8; 10]) -> [u8; 16] {
        let fresh = fresh_counter(random);
        let (millis, counter) = match self.last {
            Some((last_ms, last_counter)) if now_ms <= last_ms => {
                if last_counter < COUNTER_MAX {
                    (last_ms, last_counter + 1)
                } else {
                    (last_ms + 1, fresh) // the counter ran out: borrow the next millisecond
                }
            }
            _ => (now_ms, fresh),
        };
        // `layout` asserts both fit their bits (borrowing a millisecond could pass 48 bits).
        let bytes = layout(millis, counter);
        if let Some((last_ms, last_counter)) = self.last {
            assert!(bytes > layout(last_ms, last_counter), "ids of one generator only grow");
        }
        self.last = Some((millis, counter));
        assert_eq!(bytes[6] >> 4, 7, "version 7");
        assert_eq!(bytes[8] >> 6, 0b10, "RFC 9562 variant");
        bytes
    }
}

/// A new millisecond's counter: 73 random bits (the top one clear leaves 2^73 increments).
fn fresh_counter(random: [u8; 10]) -> u128 {
    let mut wide = [0u8; 16];
    wide[6..].copy_from_slice(&random);
    let counter = u128::from_be_bytes(wide) & (COUNTER_MAX >> 1);
    assert!(counter < 1 << (COUNTER_BITS - 1), "a fresh counter leaves room to count");
    counter
}

/// The 16 bytes of a v7 UUID from its millisecond and 74-bit counter.
fn layout(millis: u64, counter: u128) -> [u8; 16] {
    // What does not fit is dropped below, not refused: an id would go back in time or repeat.
    assert!(millis <= MILLIS_MAX, "a v7 timestamp fits 48 bits: {millis}");
    assert!(counter <= COUNTER_MAX, "the counter fits 74 bits");
    let rand_a = (counter >> 62) as u16 & 0x0fff; // the counter's top 12 bits
    let rand_b = (counter & ((1 << 62) - 1)) as u64; // its low 62 bits
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..8].copy_from_slice(&(0x7000 | rand_a).to_be_bytes());
    bytes[8..].copy_from_slice(&((0b10 << 62) | rand_b).to_be_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis_of(id: [u8; 16]) -> u64 {
        let mut wide = [0u8; 8];
        wide[2..].copy_from_slice(&id[..6]);
        u64::from_be_bytes(wide)
    }

    #[test]
    fn an_id_carries_its_millisecond_version_and_variant() {
        let id = IdClock::default().next(1_765_000_000_123, [0xff; 10]);
        assert_eq!(millis_of(id), 1_765_000_000_123);
        assert_eq!(id[6] >> 4, 7);
        assert_eq!(id[8] >> 6, 0b10);
    }

    #[test]
    fn ids_in_one_millisecond_and_after_the_clock_steps_back_only_grow() {
        let mut clock = IdClock::default();
        let mut last = clock.next(5_000, [0x5a; 10]);
        for (i, now) in [5_000, 5_000, 4_000, 5_001, 5_001, 1, 6_000].into_iter().enumerate() {
            let random = [(i as u8).wrapping_mul(97); 10]; // a smaller random must not matter
            let id = clock.next(now, random);
            assert!(id > last, "id {i} at {now} ms is greater than the one before");
            assert!(millis_of(id) >= millis_of(last));
            last = id;
        }
        assert_eq!(millis_of(last), 6_000, "a later millisecond starts afresh");
    }

    #[test]
    fn a_counter_that_runs_out_borrows_the_next_millisecond() {
        let mut clock = IdClock { last: Some((7_000, COUNTER_MAX)) };
        let id = clock.next(7_000, [0; 10]);
        assert_eq!(millis_of(id), 7_001);
        assert!(id > layout(7_000, COUNTER_MAX));
    }

    #[test]
    fn a_fresh_counter_keeps_the_random_bits_below_its_top() {
        assert_eq!(fresh_counter([0xff; 10]), COUNTER_MAX >> 1);
        assert_eq!(fresh_counter([0; 10]), 0);
        let id = layout(1, COUNTER_MAX >> 1);
        assert_eq!(id[6] & 0x0f, 0x07, "rand_a's top bit is the counter's top bit, clear");
    }
}
