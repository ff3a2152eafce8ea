//! SQL entry points: one-screen `#[pg_extern]` wrappers that convert arguments, call `store`
//! and the core, and turn a `CteError` into a PostgreSQL error with the reason's own SQLSTATE.

pub mod catalog;
pub mod engine;
pub mod journal;
pub mod json_text;
pub mod ledger;
pub mod liens;

use cte_ctel_core::CteError;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::PgSqlErrorCode;

/// Packs a five-character SQLSTATE the way PostgreSQL's `MAKE_SQLSTATE` does.
pub(crate) fn sqlstate_code(sqlstate: &str) -> i32 {
    assert_eq!(sqlstate.len(), 5);
    sqlstate
        .bytes()
        .enumerate()
        .map(|(position, byte)| ((i32::from(byte) - i32::from(b'0')) & 0x3F) << (6 * position))
        .sum()
}

/// The PostgreSQL error for a refusal: the reason's SQLSTATE, its message naming the offending
/// value, the reason's catalog name as DETAIL, and a HINT where there is one.
pub(crate) fn report(function: &'static str) -> impl FnOnce(CteError) -> ErrorReport {
    move |error| {
        let code = PgSqlErrorCode::from(sqlstate_code(error.sqlstate()));
        let report = ErrorReport::new(code, error.to_string(), function)
            .set_detail(format!("reason: {}", error.reason()));
        match error.hint() {
            Some(hint) => report.set_hint(hint),
            None => report,
        }
    }
}

/// Raises the refusal as an ERROR at once (for callers that cannot return a `Result`).
pub(crate) fn raise(function: &'static str, error: CteError) -> ! {
    report(function)(error).report(pgrx::PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}

/// A required argument: SQL NULL is refused with `null_argument`.
pub(crate) fn required<T>(value: Option<T>, argument: &'static str) -> Result<T, CteError> {
    value.ok_or(CteError::NullArgument { argument })
}
