//! Every setting of `cte_ctel`, documented where it is defined. The shell reads them and passes
//! plain values to the core (`RetryPolicy`); nothing deeper reads a setting.

use std::ffi::{CStr, CString};
use std::time::Duration;

use cte_ctel_core::engine::{RetryPolicy, SagaConfig};
use cte_ctel_core::limits::{STEP_ATTEMPTS_DEFAULT, STEP_ATTEMPTS_MAX};
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// `cte_ctel.retry_max_attempts`: attempts a step gets when `cte_add_transaction` does not say
/// (`max_attempts`). Default 3: one try and two retries ride out a deadlock or a serialization
/// failure without letting a step that keeps failing hold its event for long. Range 1–100;
/// 1 means no retry.
static RETRY_MAX_ATTEMPTS: GucSetting<i32> = GucSetting::<i32>::new(STEP_ATTEMPTS_DEFAULT as i32);

/// `cte_ctel.retry_backoff_ms`: wait before the first retry, in milliseconds; each later retry
/// waits twice as long as the one before, up to `retry_backoff_max_ms`. Default 1000 ms: long
/// enough for the lock holder that made the step fail to commit. 0 retries at the next
/// maintenance pass.
static RETRY_BACKOFF_MS: GucSetting<i32> = GucSetting::<i32>::new(1_000);

/// `cte_ctel.retry_backoff_max_ms`: ceiling of the wait between two attempts, in milliseconds.
/// Default 60000 ms (one minute), so a retried step is never parked for long.
static RETRY_BACKOFF_MAX_MS: GucSetting<i32> = GucSetting::<i32>::new(60_000);

/// `cte_ctel.database`: the database the background worker serves (one worker, one database).
/// Default `postgres`. Where the extension is not installed the worker does nothing, quietly.
/// Changing it takes effect on reload: the worker exits and the postmaster starts it again on
/// the new database.
static WORKER_DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));

/// `cte_ctel.worker_interval`: time between two maintenance ticks, in milliseconds. Default
/// 1000 ms: liens expire and overdue events are compensated within about a second of their
/// time, at the cost of one short transaction a second. Range 10 ms – 1 hour.
static WORKER_INTERVAL_MS: GucSetting<i32> = GucSetting::<i32>::new(1_000);

/// `cte_ctel.worker_enabled`: whether the worker's ticks do anything. Default on; off pauses
/// automatic expiry, timeouts and retries (`cte_run_maintenance()` still runs them on demand)
/// without restarting the server.
static WORKER_ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);

/// `cte_ctel.compensation_timeout`: how long an `external` step asked to compensate (its event
/// was cancelled or timed out while it waited, or a later step failed) may go unreported, in
/// milliseconds, before its event is left `failed` (its liens still held) for an operator.
/// Default one hour: long enough for a bank's reversal to be confirmed by a person, short
/// enough that stuck events surface the same day. Server-wide (the worker applies it).
static COMPENSATION_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(HOUR_MS);

/// `cte_ctel.executor_timeout`: the longest a custom executor's function may run, in
/// milliseconds, armed as a statement timeout around each call (in the workers and in
/// sessions). Expiry cancels the call with 57014, a try-again failure: the step is retried with
/// backoff like a deadlock. Default 30000 ms: an executor calling a slow service still
/// finishes, while a stuck one frees the events worker within half a minute. 0 means no limit.
/// In a session whose own `statement_timeout` is already running, that one governs instead.
/// Superuser-only (ALTER SYSTEM or the configuration file), so no caller can lift it.
static EXECUTOR_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(30_000);

const DAY_MS: i32 = 24 * 60 * 60 * 1_000;
const HOUR_MS: i32 = 60 * 60 * 1_000;

fn define_int(
    name: &'static CStr,
    about: &'static CStr,
    setting: &'static GucSetting<i32>,
    min: i32,
    max: i32,
    unit: GucFlags,
    context: GucContext,
) {
    GucRegistry::define_int_guc(name, about, about, setting, min, max, context, unit);
}

/// Registers the settings; called from `_PG_init`.
pub fn init() {
    GucRegistry::define_string_guc(
        c"cte_ctel.database",
        c"The database the cte_ctel background worker serves.",
        c"The database the cte_ctel background worker serves.",
        &WORKER_DATABASE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    define_int(
        c"cte_ctel.worker_interval",
        c"Time between two ticks of the cte_ctel maintenance worker.",
        &WORKER_INTERVAL_MS,
        10,
        HOUR_MS,
        GucFlags::UNIT_MS,
        GucContext::Sighup,
    );
    GucRegistry::define_bool_guc(
        c"cte_ctel.worker_enabled",
        c"Whether the cte_ctel maintenance worker's ticks do anything.",
        c"Whether the cte_ctel maintenance worker's ticks do anything.",
        &WORKER_ENABLED,
        GucContext::Sighup,
        GucFlags::default(),
    );
    define_int(
        c"cte_ctel.compensation_timeout",
        c"How long an external step's compensation may go unreported before its event fails.",
        &COMPENSATION_TIMEOUT_MS,
        10,
        DAY_MS,
        GucFlags::UNIT_MS,
        GucContext::Sighup,
    );
    define_int(
        c"cte_ctel.executor_timeout",
        c"The longest a custom executor's function may run (0: no limit).",
        &EXECUTOR_TIMEOUT_MS,
        0,
        DAY_MS,
        GucFlags::UNIT_MS,
        GucContext::Suset,
    );
    define_int(
        c"cte_ctel.retry_max_attempts",
        c"Attempts a step gets when cte_add_transaction does not say.",
        &RETRY_MAX_ATTEMPTS,
        1,
        STEP_ATTEMPTS_MAX as i32,
        GucFlags::default(),
        GucContext::Userset,
    );
    define_int(
        c"cte_ctel.retry_backoff_ms",
        c"Wait before a step's first retry; doubled for each later one.",
        &RETRY_BACKOFF_MS,
        0,
        DAY_MS,
        GucFlags::UNIT_MS,
        GucContext::Userset,
    );
    define_int(
        c"cte_ctel.retry_backoff_max_ms",
        c"Longest wait between two attempts of a step.",
        &RETRY_BACKOFF_MAX_MS,
        0,
        DAY_MS,
        GucFlags::UNIT_MS,
        GucContext::Userset,
    );
}

/// The retry policy the settings describe, for steps that take the default attempts.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        attempts_max: u32::try_from(RETRY_MAX_ATTEMPTS.get()).unwrap_or(STEP_ATTEMPTS_DEFAULT),
        backoff_ms_base: u64::try_from(RETRY_BACKOFF_MS.get()).unwrap_or(0),
        backoff_ms_max: u64::try_from(RETRY_BACKOFF_MAX_MS.get()).unwrap_or(0),
    }
}

/// The database the worker serves.
pub fn worker_database() -> String {
    WORKER_DATABASE.get().map_or_else(String::new, |name| name.to_string_lossy().into_owned())
}

/// Time between two ticks of the worker.
pub fn worker_interval() -> Duration {
    Duration::from_millis(u64::try_from(WORKER_INTERVAL_MS.get()).unwrap_or(1_000))
}

/// Whether the worker's ticks do anything.
pub fn worker_enabled() -> bool {
    WORKER_ENABLED.get()
}

/// The longest a custom executor may run, in milliseconds; 0 for no limit.
pub fn executor_timeout_ms() -> i32 {
    EXECUTOR_TIMEOUT_MS.get().max(0)
}

/// What a saga needs from the settings.
pub fn saga_config() -> SagaConfig {
    SagaConfig {
        retry: retry_policy(),
        compensation_timeout_ms: i64::from(COMPENSATION_TIMEOUT_MS.get()),
    }
}
