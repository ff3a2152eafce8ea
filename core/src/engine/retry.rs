//! Which failures are retried, and when.
//!
//! A step failure is retryable when its SQLSTATE says "the same work may succeed if tried
//! again" — a serialization failure (40001), a deadlock (40P01), a lock not available (55P03),
//! or a statement cancelled by a timeout (57014) — or when the application reports it so with
//! `cte_fail_transaction(..., retryable => true)`. Every other failure is final.

/// The retry policy of a step: how many attempts in all, and the backoff between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts_max: u32,
    pub backoff_ms_base: u64,
    pub backoff_ms_max: u64,
}

const RETRYABLE_SQLSTATES: [&str; 4] = ["40001", "40P01", "55P03", "57014"];

/// Whether a failure with this SQLSTATE may succeed on another attempt.
pub fn is_retryable_sqlstate(sqlstate: &str) -> bool {
    // PostgreSQL's own code of the error (`sqlstate_text` unpacks its five characters) or a
    // refusal's (`CteError::sqlstate`, checked well formed by the catalog's tests).
    assert_eq!(sqlstate.len(), 5, "a SQLSTATE has five characters: {sqlstate:?}");
    RETRYABLE_SQLSTATES.contains(&sqlstate)
}

impl RetryPolicy {
    /// Milliseconds to wait after failed attempt number `attempt` (1-based): the base doubled
    /// for each earlier attempt, capped at the maximum. Deterministic: no jitter here.
    pub fn backoff_ms(&self, attempt: u32) -> u64 {
        assert!(attempt >= 1);
        let doublings = (attempt - 1).min(32);
        let backoff = self.backoff_ms_base.saturating_mul(1u64 << doublings);
        assert!(backoff >= self.backoff_ms_base, "a wait never shrinks as attempts fail");
        let backoff = backoff.min(self.backoff_ms_max);
        assert!(backoff <= self.backoff_ms_max, "no wait passes the ceiling");
        backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let policy = RetryPolicy { attempts_max: 10, backoff_ms_base: 100, backoff_ms_max: 1_000 };
        let waits: Vec<u64> = (1..=6).map(|attempt| policy.backoff_ms(attempt)).collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(policy.backoff_ms(u32::MAX), 1_000);
    }

    #[test]
    fn only_transient_sqlstates_are_retryable() {
        for code in ["40001", "40P01", "55P03", "57014"] {
            assert!(is_retryable_sqlstate(code), "{code}");
        }
        for code in ["23514", "22023", "P0001", "XX000", "42883"] {
            assert!(!is_retryable_sqlstate(code), "{code}");
        }
    }
}
