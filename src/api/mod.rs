//! SQL entry points: one-screen `#[pg_extern]` wrappers that convert arguments, call `store`
//! and the core, and turn a `CteError` into a PostgreSQL error with the reason's own SQLSTATE.

pub mod accounts;
pub mod bulk;
pub mod catalog;
pub mod chains;
pub mod engine;
pub mod executors;
pub mod feed;
pub mod journal;
pub mod json_text;
pub mod ledger;
pub mod liens;
pub mod security;

use cte_ctel_core::CteError;

/// Raises a refusal as an ERROR (see [`crate::raise::refusal`]), what it names withheld from a
/// tenant first. Called only from [`refused`] and the journal guard, as `refusal` requires.
pub(crate) fn raise(function: &'static str, error: CteError) -> ! {
    crate::raise::refusal(function, security::withheld_from_tenant(error))
}

/// Runs an entry point's work and returns its value, or raises its refusal. The work is a `move`
/// closure owning the entry point's arguments: calling it consumes it, so by the time a refusal
/// is raised every argument has been dropped (see [`raise`]). The body of every `#[pg_extern]`
/// is one call of this.
pub(crate) fn refused<T>(function: &'static str, work: impl FnOnce() -> Result<T, CteError>) -> T {
    let outcome = work();
    match outcome {
        Ok(value) => value,
        Err(error) => raise(function, error),
    }
}

/// A required argument: SQL NULL is refused with `null_argument`.
pub(crate) fn required<T>(value: Option<T>, argument: &'static str) -> Result<T, CteError> {
    value.ok_or(CteError::NullArgument { argument })
}

/// A page size: the `limit` argument of a paged function, given and between 1 and `max`.
pub(crate) fn page_limit(limit: Option<i32>, max: i64) -> Result<i64, CteError> {
    let limit = i64::from(required(limit, "limit")?);
    if !(1..=max).contains(&limit) {
        return Err(CteError::out_of_range("limit", limit, 1, max));
    }
    Ok(limit)
}
