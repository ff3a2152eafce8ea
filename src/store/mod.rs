//! The only code that runs SQL. Queries are `const` text with `$n` placeholders and values bound
//! as arguments, never spliced in. Every table name is schema-qualified: API functions run with
//! `search_path = pg_catalog, pg_temp`, so nothing a user creates elsewhere can be picked up.

#![deny(clippy::disallowed_methods)]

pub mod bulk;
pub mod chains;
pub mod changes;
pub mod events;
pub mod executors;
pub mod leases;
pub mod ledger;
pub mod liens;
pub mod maintenance;
pub mod pictures;
pub mod postings;
pub mod references;
mod row;
pub mod statements;
pub mod subtransaction;
pub mod tenancy;

pub(crate) use row::Row;

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::pg_sys::panic::CaughtError;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult, SpiTupleTable};
use pgrx::{PgOid, PgSqlErrorCode, PgTryBuilder, Spi};

/// Whether a row lock waits for its holder (callers of the API) or gives up at once (the
/// worker, which must never queue behind a session that holds a row and does nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockWait {
    /// Wait, as any client does.
    Wait,
    /// Skip a row another session holds (`SKIP LOCKED`), or fail at once with 55P03 (`NOWAIT`)
    /// where skipping is not possible: the worker's item is then retried on a later pass.
    Skip,
}

/// An SPI result that can fail only by a bug here (a wrong type or column in our own query):
/// errors the database raises for the data itself (constraints, locks) do not come this way,
/// they abort the statement with their own SQLSTATE.
pub(crate) fn spi<T>(result: SpiResult<T>, query: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("internal SPI error in {query:?}: {error}"),
    }
}

/// A value a query guarantees (a column that is never NULL, a row that must be there): the
/// value, or an internal error naming the query and what was missing. Never a default in its
/// place: a row the store cannot read is a bug to stop at, not money to read as zero.
#[track_caller]
pub(crate) fn required<T>(value: Option<T>, query: &str, what: &str) -> T {
    match value {
        Some(value) => value,
        None => panic!("{what} missing in a row of {query:?}, where the query guarantees it"),
    }
}

/// A decimal the ledger stored as text (an amount, a sum of amounts, all bounded): exact, or
/// an internal error naming the query. Never rounded, never read as zero.
#[track_caller]
pub(crate) fn stored_decimal(text: &str, query: &str) -> rust_decimal::Decimal {
    match rust_decimal::Decimal::from_str_exact(text) {
        Ok(value) => value,
        Err(error) => panic!("{text:?} from {query:?} is not an exact decimal: {error}"),
    }
}

thread_local! {
    /// Plans of the store's constant queries, prepared once per backend and kept
    /// (`SPI_keepplan`), as parsing and planning each statement on every call was most of a
    /// transfer's cost. PostgreSQL re-plans a kept plan itself when the schema changes. Keyed by
    /// the query text's address and whether it writes: every query is a `const &'static str`.
    /// Each kept plan, and whether it runs generic (see `GenericPlans`).
    static PLANS: RefCell<HashMap<(usize, bool), (OwnedPreparedStatement, bool)>> = RefCell::new(HashMap::new());
}

/// Plans a constant query. An object it names that does not exist means the database still has
/// an older version's SQL than this library's (between a package upgrade and `ALTER EXTENSION
/// cte_ctel UPDATE`): that is said as such, rather than as an internal error.
fn prepare<'conn>(
    client: &mut SpiClient<'conn>,
    query: &'static str,
    types: &[PgOid],
    writes: bool,
) -> OwnedPreparedStatement {
    let client = std::panic::AssertUnwindSafe(client);
    let plan = PgTryBuilder::new(move || {
        if writes {
            spi(client.prepare_mut(query, types), query).keep()
        } else {
            spi(client.prepare(query, types), query).keep()
        }
    })
    .catch_others(|caught| match caught {
        CaughtError::PostgresError(report)
            if matches!(
                report.sql_error_code(),
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE
                    | PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN
                    | PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION
            ) =>
        {
            refuse_older_sql(report.message())
        }
        other => other.rethrow(),
    })
    .execute();
    plan
}

/// Raises the error for a database whose installed SQL is an older version's than this
/// library's (between a package upgrade and `ALTER EXTENSION cte_ctel UPDATE`): `55000`, with
/// the hint to update. `what` says what did not match.
pub fn refuse_older_sql(what: &str) -> ! {
    let message = format!(
        "the cte_ctel library is version {}, but this database has an older version's SQL ({what})",
        env!("CARGO_PKG_VERSION"),
    );
    crate::raise::unwinding(crate::raise::Unwinding {
        code: PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        message,
        detail: None,
        hint: Some("run ALTER EXTENSION cte_ctel UPDATE"),
        function: "cte_ctel",
    })
}

const CURRENT_DATABASE: &str = "SELECT pg_catalog.current_database()::text";

/// The name of the database this session is connected to.
pub(crate) fn current_database() -> String {
    required(select_one::<String>(CURRENT_DATABASE, &[]), CURRENT_DATABASE, "a database")
}

/// A `timestamptz` in milliseconds since the Unix epoch (the engine's clock); the infinities
/// are the far ends of `i64`.
pub(crate) fn ms_of(at: TimestampWithTimeZone) -> i64 {
    let since_2000_us = pgrx::pg_sys::TimestampTz::from(at);
    since_2000_us.saturating_add(POSTGRES_EPOCH_UNIX_US).div_euclid(1000)
}

/// A statement-clock reading in milliseconds as a `timestamptz`.
pub(crate) fn timestamp(ms: i64) -> TimestampWithTimeZone {
    timestamp_us(ms.saturating_mul(1_000))
}

/// A clock reading in microseconds since the Unix epoch as a `timestamptz` (PostgreSQL counts
/// microseconds from 2000-01-01).
pub(crate) fn timestamp_us(unix_us: i64) -> TimestampWithTimeZone {
    let value = TimestampWithTimeZone::try_from(unix_us.saturating_sub(POSTGRES_EPOCH_UNIX_US));
    assert!(value.is_ok(), "a clock reading is a valid timestamp");
    value.unwrap_or(TimestampWithTimeZone::try_from(0).unwrap_or_else(|_| unreachable!()))
}

/// The clock now (not the statement's start), in microseconds since the Unix epoch: what
/// journal entries are stamped with, read when their wallets are locked.
pub(crate) fn clock_us() -> i64 {
    // SAFETY: reads the system clock, what clock_timestamp() returns.
    let since_2000_us = unsafe { pgrx::pg_sys::GetCurrentTimestamp() };
    since_2000_us.saturating_add(POSTGRES_EPOCH_UNIX_US)
}

/// Our kept writing plans run as generic plans: PostgreSQL's default (`plan_cache_mode =
/// auto`) plans a statement again for its arguments whenever it judges the generic plan
/// dearer, and for statements over `unnest($1::text[], …)` it always does, which was a third of
/// a transfer's CPU (perf, issue 13). Those statements are lookups by key or joins on the
/// arrays they are given, whose generic plan is the one wanted. Reads, and any statement with a
/// `LIMIT $n`, keep PostgreSQL's choice: a generic plan cannot know the limit, and for the
/// change feed's read it chose a scan of the whole log (80 ms instead of under one). The
/// setting is the planner's C variable, set for the length of our own statement only (user
/// code, which never runs inside one, keeps its own); a PostgreSQL error unwinds through
/// `Drop`, which puts it back.
struct GenericPlans(std::ffi::c_int);

impl GenericPlans {
    fn force() -> GenericPlans {
        // SAFETY: a backend-local planner setting, read and written on this backend's thread.
        unsafe {
            let before = pgrx::pg_sys::plan_cache_mode;
            pgrx::pg_sys::plan_cache_mode =
                pgrx::pg_sys::PlanCacheMode::PLAN_CACHE_MODE_FORCE_GENERIC_PLAN as std::ffi::c_int;
            GenericPlans(before)
        }
    }
}

impl Drop for GenericPlans {
    fn drop(&mut self) {
        // SAFETY: as above; restores what `force` found.
        unsafe { pgrx::pg_sys::plan_cache_mode = self.0 };
    }
}

/// Runs a constant query through its kept plan: read-only (`writes` false, no xid needed, as
/// on a standby) or writing.
pub(crate) fn run_cached<'conn>(
    client: &mut SpiClient<'conn>,
    query: &'static str,
    args: &[DatumWithOid],
    writes: bool,
) -> SpiTupleTable<'conn> {
    let key = (query.as_ptr() as usize, writes);
    // The plan is taken out of the cache while its query runs and put back after: the query may
    // call back into this library (a column default, a trigger, an executor reached through
    // SQL), whose own queries then use the cache too. (A plan whose query raised is dropped with
    // the error, and prepared again next time.)
    let cached = PLANS.with(|plans| plans.borrow_mut().remove(&key));
    let (plan, generic) = cached.unwrap_or_else(|| {
        let types: Vec<PgOid> = args.iter().map(|arg| PgOid::from(arg.oid())).collect();
        // Decided once per plan, not on every call.
        (prepare(client, query, &types, writes), writes && !query.contains("LIMIT $"))
    });
    let table = {
        let _generic = generic.then(GenericPlans::force);
        if writes {
            spi(client.update(&plan, None, args), query)
        } else {
            spi(client.select(&plan, None, args), query)
        }
    };
    PLANS.with(|plans| plans.borrow_mut().insert(key, (plan, generic)));
    table
}

/// The first column of the first row of a read-only query; `None` when there is no row or the
/// value is NULL.
pub(crate) fn select_one<T: pgrx::FromDatum + pgrx::IntoDatum>(
    query: &'static str,
    args: &[DatumWithOid],
) -> Option<T> {
    Spi::connect_mut(|client| {
        let table = run_cached(client, query, args, false);
        first_value(table, query)
    })
}

/// The first column of the first row a writing query returned, as `select_one`.
pub(crate) fn update_one<T: pgrx::FromDatum + pgrx::IntoDatum>(
    client: &mut SpiClient<'_>,
    query: &'static str,
    args: &[DatumWithOid],
) -> Option<T> {
    let table = run_cached(client, query, args, true);
    first_value(table, query)
}

fn first_value<T: pgrx::FromDatum + pgrx::IntoDatum>(
    table: pgrx::spi::SpiTupleTable<'_>,
    query: &str,
) -> Option<T> {
    if table.is_empty() {
        return None;
    }
    spi(table.first().get_one(), query)
}

thread_local! {
    /// This backend's id generator (a backend is one thread: ids of one backend only grow).
    static ID_CLOCK: std::cell::Cell<cte_ctel_core::ids::IdClock> =
        std::cell::Cell::new(cte_ctel_core::ids::IdClock::default());
    /// Strong random bytes drawn ahead for ids, and how many of them are used: one draw from
    /// PostgreSQL's strong random source serves 64 ids (a bulk call makes thousands; a draw
    /// each took 6 % of its time, mostly the source's locking). Drawn in the backend that uses
    /// them, never before a fork.
    static ID_RANDOM: std::cell::RefCell<([u8; ID_RANDOM_BYTES], usize)> =
        const { std::cell::RefCell::new(([0; ID_RANDOM_BYTES], ID_RANDOM_BYTES)) };
}

/// The random bytes of one id, and how many are drawn at once.
const ID_RANDOM_LEN: usize = 10;
const ID_RANDOM_BYTES: usize = ID_RANDOM_LEN * 64;

/// The random part of a new id, from bytes drawn ahead (each byte used once).
fn id_random() -> [u8; ID_RANDOM_LEN] {
    ID_RANDOM.with(|cell| {
        let mut drawn = cell.borrow_mut();
        let (buffer, used) = &mut *drawn;
        if *used + ID_RANDOM_LEN > buffer.len() {
            // SAFETY: writes exactly `buffer.len()` bytes into the buffer.
            let filled =
                unsafe { pgrx::pg_sys::pg_strong_random(buffer.as_mut_ptr().cast(), buffer.len()) };
            assert!(filled, "pg_strong_random fills the buffer");
            *used = 0;
        }
        let mut random = [0u8; ID_RANDOM_LEN];
        random.copy_from_slice(&buffer[*used..*used + ID_RANDOM_LEN]);
        // Used bytes are wiped: none is ever given twice, even if this code changes.
        buffer[*used..*used + ID_RANDOM_LEN].fill(0);
        *used += ID_RANDOM_LEN;
        random
    })
}

/// A new id for an event, step, lien or posting: a time-ordered (version 7) UUID, so that
/// inserts land at the right edge of each primary-key index rather than on a random leaf. Its
/// random part comes from PostgreSQL's strong random source; its time from the wall clock
/// (ids stay opaque: nothing reads a time from them, and a clock stepping back keeps them
/// growing within the backend).
pub(crate) fn new_id() -> pgrx::Uuid {
    let random = id_random();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
    let bytes = ID_CLOCK.with(|cell| {
        let mut clock = cell.get();
        let bytes = clock.next(now_ms, random);
        cell.set(clock);
        bytes
    });
    pgrx::Uuid::from_bytes(bytes)
}

// The statement's clock, not the transaction's: a transaction may sit open for minutes before it
// starts an event, whose deadline must then count from the start, not from BEGIN.
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
pub(crate) const POSTGRES_EPOCH_UNIX_US: i64 = 946_684_800_000_000;

/// The statement's start time in milliseconds since the epoch: the engine's one clock reading
/// per call, passed to the pure core. (The worker advances it for each batch it commits.)
pub(crate) fn now_ms() -> i64 {
    // SAFETY: a read of the backend's statement start time, what statement_timestamp() returns.
    let since_2000_us = unsafe { pgrx::pg_sys::GetCurrentStatementStartTimestamp() };
    since_2000_us.saturating_add(POSTGRES_EPOCH_UNIX_US).div_euclid(1000)
}

/// The text of a `jsonb` datum, as PostgreSQL prints it; `None` when it is longer than
/// `bytes_max` (measured before it is detoasted or printed).
pub(crate) fn jsonb_text(datum: pgrx::pg_sys::Datum, bytes_max: usize) -> Option<String> {
    // SAFETY: a non-null jsonb datum; its stored size is read without detoasting it, then it is
    // detoasted and printed by PostgreSQL's own jsonb_out, and both copies are freed.
    unsafe {
        let varlena = datum.cast_mut_ptr();
        // The binary size bounds the work before anything is detoasted: a document's binary
        // form is at most about four times its text (an array of one-digit numbers), so one
        // six times the bound certainly prints longer. The printed length is checked exactly.
        if pgrx::pg_sys::toast_raw_datum_size(datum) > bytes_max.saturating_mul(6) {
            return None;
        }
        let detoasted = pgrx::pg_sys::pg_detoast_datum_packed(varlena);
        let text = pgrx::direct_function_call::<&std::ffi::CStr>(
            pgrx::pg_sys::jsonb_out,
            &[Some(detoasted.into())],
        );
        assert!(text.is_some(), "jsonb_out returns text for a jsonb");
        let owned = text.map(|text| text.to_string_lossy().into_owned());
        if let Some(text) = text {
            pgrx::pg_sys::pfree(text.as_ptr().cast_mut().cast());
        }
        if detoasted != varlena {
            pgrx::pg_sys::pfree(detoasted.cast());
        }
        owned.filter(|text| text.len() <= bytes_max)
    }
}

/// The size of a `jsonb` datum as stored, uncompressed (read without detoasting it).
pub(crate) fn jsonb_bytes(datum: pgrx::pg_sys::Datum) -> usize {
    // SAFETY: a non-null varlena datum.
    unsafe { pgrx::pg_sys::toast_raw_datum_size(datum) }
}
