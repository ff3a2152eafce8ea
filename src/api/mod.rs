//! SQL entry points: one-screen `#[pg_extern]` wrappers that convert arguments, call `store`
//! and the core, and turn a `CteError` into a PostgreSQL error with the reason's own SQLSTATE.

pub mod accounts;
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

use std::ffi::{c_char, c_int, CString};

use cte_ctel_core::CteError;
use pgrx::pg_sys;

/// Packs a five-character SQLSTATE the way PostgreSQL's `MAKE_SQLSTATE` does.
pub(crate) fn sqlstate_code(sqlstate: &str) -> i32 {
    assert_eq!(sqlstate.len(), 5);
    sqlstate
        .bytes()
        .enumerate()
        .map(|(position, byte)| ((i32::from(byte) - i32::from(b'0')) & 0x3F) << (6 * position))
        .sum()
}

// PostgreSQL's error reporting, declared here because pgrx keeps its own declarations private:
// its `ErrorReport` can only carry PostgreSQL's own SQLSTATEs, and refusals have a class of their
// own (`CteError::sqlstate`).
unsafe extern "C-unwind" {
    fn errstart(elevel: c_int, domain: *const c_char) -> bool;
    fn errcode(sqlerrcode: c_int) -> c_int;
    fn errmsg(fmt: *const c_char, ...) -> c_int;
    fn errdetail(fmt: *const c_char, ...) -> c_int;
    fn errhint(fmt: *const c_char, ...) -> c_int;
    fn errfinish(filename: *const c_char, lineno: c_int, funcname: *const c_char);
}

/// `text` copied into the current memory context, which PostgreSQL frees with the error.
fn palloc_text(text: &str) -> *mut c_char {
    // PostgreSQL text cannot hold NUL, so no message of ours does; replaced if one ever did.
    let text = CString::new(text.replace('\0', "\u{FFFD}")).unwrap_or_default();
    // SAFETY: pstrdup copies a NUL-terminated string into the current memory context.
    unsafe { pg_sys::pstrdup(text.as_ptr()) }
}

/// Raises a refusal as an ERROR: the reason's SQLSTATE, a message naming the offending value,
/// `DETAIL: reason: <reason>`, and a HINT where there is one. The one path every refusal takes.
///
/// It does not return: PostgreSQL's `errfinish` jumps to the caller's error handler. Every Rust
/// value is dropped first (the texts live in PostgreSQL memory), and it is called only from the
/// top of a `#[pg_extern]` body (through [`refused`]) whose arguments were moved away, so the
/// frames it jumps over hold nothing to drop, as `longjmp` over Rust frames requires.
pub(crate) fn raise(function: &'static str, error: CteError) -> ! {
    let error = security::withheld_from_tenant(error);
    let code = sqlstate_code(error.sqlstate());
    let message = palloc_text(&error.to_string());
    let detail = palloc_text(&format!("reason: {}", error.reason()));
    let hint = error.hint().map(|hint| palloc_text(&hint));
    let function = palloc_text(function);
    drop(error);
    // SAFETY: the documented ereport(ERROR, ...) sequence; each text is a valid C string and
    // "%s" keeps any '%' in it from being read as a format.
    unsafe {
        if errstart(pgrx::PgLogLevel::ERROR as c_int, std::ptr::null()) {
            errcode(code);
            errmsg(c"%s".as_ptr(), message);
            errdetail(c"%s".as_ptr(), detail);
            if let Some(hint) = hint {
                errhint(c"%s".as_ptr(), hint);
            }
            errfinish(c"src/api/mod.rs".as_ptr(), line!() as c_int, function);
        }
    }
    unreachable!("errstart(ERROR) always reports and errfinish(ERROR) never returns")
}

/// Raises an error that is not a refusal with its own SQLSTATE and message (one caught inside a
/// subtransaction, as `cte_dry_run` returns it). Called as [`raise`] is.
pub(crate) fn raise_failure(
    function: &'static str,
    failure: crate::store::subtransaction::Failure,
) -> ! {
    let code = sqlstate_code(&failure.sqlstate);
    let message = palloc_text(&failure.message);
    let function = palloc_text(function);
    drop(failure);
    // SAFETY: as in `raise`.
    unsafe {
        if errstart(pgrx::PgLogLevel::ERROR as c_int, std::ptr::null()) {
            errcode(code);
            errmsg(c"%s".as_ptr(), message);
            errfinish(c"src/api/mod.rs".as_ptr(), line!() as c_int, function);
        }
    }
    unreachable!("errstart(ERROR) always reports and errfinish(ERROR) never returns")
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
