//! The maintenance pass's statements: its candidates, read without locks, and the worker's
//! state row (`cte_worker_state`), plus the worker's own two (is its version installed; its
//! transaction's settings). What a pass does with them is the driver's (`driver/maintenance.rs`).

use pgrx::prelude::*;
use pgrx::Uuid;

use super::{run_cached, select_one, spi};

// Candidates, read without locks. A created event's deadline is the time by which it must
// start; a waiting one's, the time by which it must end.
const OVERDUE_EVENTS: &str = "
    SELECT id FROM cte_ctel.cte_events
     WHERE status IN ('created', 'waiting') AND deadline <= pg_catalog.statement_timestamp()
     ORDER BY deadline LIMIT $1";

// Scheduled events whose time has come.
const SCHEDULED_EVENTS: &str = "
    SELECT id FROM cte_ctel.cte_events
     WHERE status = 'created' AND not_before <= pg_catalog.statement_timestamp()
     ORDER BY not_before LIMIT $1";

const OVERDUE_COMPENSATIONS: &str = "
    SELECT DISTINCT event_id FROM cte_ctel.cte_transactions
     WHERE compensation_requested_at
           <= pg_catalog.statement_timestamp() - $2 * interval '1 millisecond'
     LIMIT $1";

const DUE_RETRIES: &str = "
    SELECT DISTINCT event_id FROM cte_ctel.cte_transactions
     WHERE next_attempt_at <= pg_catalog.statement_timestamp()
     LIMIT $1";

/// What a pass looks for.
pub enum Candidates {
    /// Events past their deadline (to start, or to end).
    OverdueEvents,
    /// Scheduled events whose time has come.
    Scheduled,
    /// Events whose compensation has been asked longer than the compensation timeout.
    OverdueCompensations { timeout_ms: i64 },
    /// Events with a step whose retry is due.
    DueRetries,
}

/// Up to `limit` events of one kind of candidate.
pub fn candidates(kind: Candidates, limit: usize) -> Vec<Uuid> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (query, millis) = match kind {
        Candidates::OverdueEvents => (OVERDUE_EVENTS, None),
        Candidates::Scheduled => (SCHEDULED_EVENTS, None),
        Candidates::OverdueCompensations { timeout_ms } => {
            (OVERDUE_COMPENSATIONS, Some(timeout_ms))
        }
        Candidates::DueRetries => (DUE_RETRIES, None),
    };
    Spi::connect_mut(|client| {
        let table = match millis {
            Some(millis) => run_cached(client, query, &[limit.into(), millis.into()], false),
            None => run_cached(client, query, &[limit.into()], false),
        };
        table.filter_map(|row| spi(row.get::<Uuid>(1), query)).collect()
    })
}

const WORKER_STATE: &str = "
    INSERT INTO cte_ctel.cte_worker_state AS s
           (id, last_pass_at, last_pass_ms, last_pass_report, last_failure_at, last_failure)
    VALUES (1, pg_catalog.clock_timestamp(), $1, $2,
            CASE WHEN $3::text IS NOT NULL THEN pg_catalog.clock_timestamp() END, $3)
    ON CONFLICT (id) DO UPDATE
       SET last_pass_at = EXCLUDED.last_pass_at, last_pass_ms = EXCLUDED.last_pass_ms,
           last_pass_report = EXCLUDED.last_pass_report,
           last_failure_at = coalesce(EXCLUDED.last_failure_at, s.last_failure_at),
           last_failure = coalesce(EXCLUDED.last_failure, s.last_failure)";

// A pass that failed as a whole (rolled back): its failure is recorded, the last good pass
// kept. With no pass recorded before, the last pass is the epoch, so its age alerts.
const WORKER_FAILURE: &str = "
    INSERT INTO cte_ctel.cte_worker_state AS s
           (id, last_pass_at, last_pass_ms, last_pass_report, last_failure_at, last_failure)
    VALUES (1, 'epoch', 0, '{}', pg_catalog.clock_timestamp(), $1)
    ON CONFLICT (id) DO UPDATE
       SET last_failure_at = EXCLUDED.last_failure_at, last_failure = EXCLUDED.last_failure";

const STATE_HELD: &str = "
    SELECT NOT EXISTS (SELECT 1 FROM cte_ctel.cte_worker_state WHERE id = 1 FOR UPDATE SKIP LOCKED)
       AND EXISTS (SELECT 1 FROM cte_ctel.cte_worker_state WHERE id = 1)";

/// Whether another session holds the state row (a `cte_run_maintenance()` in an open
/// transaction): the worker then leaves this tick unrecorded rather than wait for it.
pub fn state_held() -> bool {
    select_one::<bool>(STATE_HELD, &[]) == Some(true)
}

/// Records a finished pass (or a worker's tick of several) for monitoring.
pub fn record_pass(duration_ms: i64, report: serde_json::Value, last_failure: Option<&str>) {
    let args = [duration_ms.into(), pgrx::JsonB(report).into(), last_failure.into()];
    Spi::connect_mut(|client| {
        run_cached(client, WORKER_STATE, &args, true);
    });
}

/// Records a pass that failed as a whole.
pub fn record_failure(text: &str) {
    Spi::connect_mut(|client| {
        run_cached(client, WORKER_FAILURE, &[text.into()], true);
    });
}

// The library serves whatever SQL version is installed, and between a package upgrade and
// `ALTER EXTENSION cte_ctel UPDATE` that is an older one, whose tables the worker's queries may
// not match: it does nothing until the installed version is its own.
const INSTALLED: &str = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension
                          WHERE extname = 'cte_ctel' AND extversion = $1)";

/// Whether this database has the extension installed at `version`.
pub fn installed(version: &str) -> bool {
    select_one::<bool>(INSTALLED, &[version.into()]) == Some(true)
}

const SETTINGS: &str = "SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true),
                               pg_catalog.set_config('lock_timeout', $1, true)";

/// The worker's settings for its current transaction: a fixed search_path, and a lock timeout
/// (`timeout`, e.g. `100ms`) so that it never waits long for a row a session holds.
pub fn worker_settings(timeout: &str) {
    spi(Spi::run_with_args(SETTINGS, &[timeout.into()]), SETTINGS);
}
