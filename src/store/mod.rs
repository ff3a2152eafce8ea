//! The only code that runs SQL. Queries are `const` text with `$n` placeholders and values bound
//! as arguments, never spliced in. Every table name is schema-qualified: API functions run with
//! `search_path = pg_catalog, pg_temp`, so nothing a user creates elsewhere can be picked up.

pub mod events;
pub mod ledger;
pub mod liens;
pub mod maintenance;
pub mod run;
pub mod steps;
pub mod subtransaction;

use pgrx::spi::SpiResult;

/// An SPI result that can fail only by a bug here (a wrong type or column in our own query):
/// errors the database raises for the data itself (constraints, locks) do not come this way,
/// they abort the statement with their own SQLSTATE.
pub(crate) fn spi<T>(result: SpiResult<T>, query: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("internal SPI error in {query:?}: {error}"),
    }
}

/// The first column of the first row of a read-only query; `None` when there is no row or the
/// value is NULL.
pub(crate) fn select_one<T: pgrx::FromDatum + pgrx::IntoDatum>(
    query: &str,
    args: &[pgrx::datum::DatumWithOid],
) -> Option<T> {
    pgrx::Spi::connect(|client| {
        let table = spi(client.select(query, Some(1), args), query);
        first_value(table, query)
    })
}

/// The first column of the first row a writing query returned, as `select_one`.
pub(crate) fn update_one<T: pgrx::FromDatum + pgrx::IntoDatum>(
    client: &mut pgrx::spi::SpiClient<'_>,
    query: &str,
    args: &[pgrx::datum::DatumWithOid],
) -> Option<T> {
    let table = spi(client.update(query, None, args), query);
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

const NOW_MS: &str = "SELECT (extract(epoch FROM now()) * 1000)::bigint";

/// The transaction's start time in milliseconds since the epoch: the engine's one clock
/// reading per call, passed to the pure core.
pub(crate) fn now_ms() -> i64 {
    let now: Option<i64> = select_one(NOW_MS, &[]);
    assert!(now.is_some(), "now() is never NULL");
    now.unwrap_or(0)
}
