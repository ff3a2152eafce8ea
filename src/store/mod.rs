//! The only code that runs SQL. Queries are `const` text with `$n` placeholders and values bound
//! as arguments, never spliced in. Every table name is schema-qualified: API functions run with
//! `search_path = pg_catalog, pg_temp`, so nothing a user creates elsewhere can be picked up.

/// The `NOTIFY cte_events` of each status change a query's rows describe (columns `event_id`,
/// `transaction_id`, `old_status`, `new_status`), counted: SPEC's payload, written once for the
/// three statements that send it (a drive's history, the fast path, the notify queue's sender).
macro_rules! notify_changes {
    () => {
        "SELECT count(pg_catalog.pg_notify('cte_events', pg_catalog.json_build_object(
               'event_id', event_id, 'transaction_id', transaction_id,
               'old_status', old_status, 'new_status', new_status)::text))"
    };
}

pub mod bulk;
pub mod events;
pub mod fast;

pub mod ledger;
pub mod liens;
pub mod maintenance;
pub mod notifications;
pub mod run;
pub mod steps;
pub mod subtransaction;

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::datum::DatumWithOid;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult, SpiTupleTable};
use pgrx::{PgOid, Spi};

/// An SPI result that can fail only by a bug here (a wrong type or column in our own query):
/// errors the database raises for the data itself (constraints, locks) do not come this way,
/// they abort the statement with their own SQLSTATE.
pub(crate) fn spi<T>(result: SpiResult<T>, query: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("internal SPI error in {query:?}: {error}"),
    }
}

thread_local! {
    /// Plans of the store's constant queries, prepared once per backend and kept
    /// (`SPI_keepplan`), as parsing and planning each statement on every call was most of a
    /// transfer's cost. PostgreSQL re-plans a kept plan itself when the schema changes. Keyed by
    /// the query text's address and whether it writes: every query is a `const &'static str`.
    static PLANS: RefCell<HashMap<(usize, bool), OwnedPreparedStatement>> = RefCell::new(HashMap::new());
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
    PLANS.with(|plans| {
        let mut plans = plans.borrow_mut();
        let plan = plans.entry(key).or_insert_with(|| {
            let types: Vec<PgOid> = args.iter().map(|arg| PgOid::from(arg.oid())).collect();
            let plan = if writes {
                spi(client.prepare_mut(query, &types), query)
            } else {
                spi(client.prepare(query, &types), query)
            };
            plan.keep()
        });
        if writes {
            spi(client.update(&*plan, None, args), query)
        } else {
            spi(client.select(&*plan, None, args), query)
        }
    })
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

/// A random (version 4) UUID from PostgreSQL's strong random source, as `gen_random_uuid()`
/// makes, without a statement to ask for it.
pub(crate) fn new_id() -> pgrx::Uuid {
    let mut bytes = [0u8; 16];
    // SAFETY: writes exactly `bytes.len()` bytes into the buffer.
    let filled = unsafe { pgrx::pg_sys::pg_strong_random(bytes.as_mut_ptr().cast(), bytes.len()) };
    assert!(filled, "pg_strong_random fills the buffer");
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    pgrx::Uuid::from_bytes(bytes)
}

const NOW_MS: &str = "SELECT (extract(epoch FROM now()) * 1000)::bigint";

/// The transaction's start time in milliseconds since the epoch: the engine's one clock
/// reading per call, passed to the pure core.
pub(crate) fn now_ms() -> i64 {
    let now: Option<i64> = select_one(NOW_MS, &[]);
    assert!(now.is_some(), "now() is never NULL");
    now.unwrap_or(0)
}
