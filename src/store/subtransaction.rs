//! Running a piece of work in a subtransaction, as PL/pgSQL's EXCEPTION blocks do: on any
//! error the subtransaction is rolled back, so the work leaves none of its writes, and the
//! error's SQLSTATE and message are returned instead of aborting the caller's transaction.

use std::cell::Cell;
use std::ffi::c_void;
use std::panic::AssertUnwindSafe;

use cte_ctel_core::CteError;
use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::{pg_guard, PgTryBuilder};

/// Why work in a subtransaction did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub sqlstate: String,
    pub message: String,
}

impl Failure {
    pub fn from_refusal(error: &CteError) -> Failure {
        Failure { sqlstate: error.sqlstate().to_string(), message: error.to_string() }
    }
}

impl From<CteError> for Failure {
    fn from(error: CteError) -> Failure {
        Failure::from_refusal(&error)
    }
}

/// An error context callback (PostgreSQL calls each one while it reports an error, before it
/// jumps to a handler) that keeps the SQLSTATE being reported. pgrx turns a caught PostgreSQL
/// error into its own report, whose code can only be one of PostgreSQL's: a refusal's `L0` code,
/// or a code of a custom executor's own, would arrive as XX000. The last code kept is the
/// error's: nothing is reported between it and the handler.
#[pg_guard]
unsafe extern "C-unwind" fn remember_sqlstate(arg: *mut c_void) {
    // SAFETY: `arg` is the `Cell` that `run` linked with this callback and unlinks before it
    // goes out of scope.
    let kept = unsafe { &*(arg as *const Cell<i32>) };
    // SAFETY: called while an error is being reported, as geterrcode requires.
    kept.set(unsafe { pg_sys::geterrcode() });
}

/// Unlinks `run`'s error context callback on every way out, panics included.
struct ContextUnlink(*mut pg_sys::ErrorContextCallback);

impl Drop for ContextUnlink {
    fn drop(&mut self) {
        // SAFETY: restores the stack as it was before `run` linked its callback.
        unsafe { pg_sys::error_context_stack = self.0 };
    }
}

/// What a subtransaction does with a Rust panic in its work (a broken invariant).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Panics {
    /// Roll back and raise it again: it is a bug, not a step failure.
    Rethrow,
    /// Roll back and return it as a failure (XX000): the worker's items, where one broken item
    /// must not stop the others.
    Contain,
}

/// Runs `work` in a subtransaction: committed into the caller's transaction if it returns
/// `Ok`, rolled back if it returns `Err` or raises any PostgreSQL error. A Rust panic (a broken
/// invariant) is rolled back too and then raised again: it is a bug, not a step failure.
pub fn run<T>(work: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    run_in(work, Panics::Rethrow, Keep::IfOk)
}

/// As [`run`], but a Rust panic is rolled back and returned as a failure (XX000, its message).
pub fn run_isolated<T>(work: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    run_in(work, Panics::Contain, Keep::IfOk)
}

/// As [`run`], but the subtransaction is rolled back whatever happens: the work's result is
/// returned and none of its writes are kept (`cte_dry_run`).
pub fn run_rolled_back<T>(work: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    run_in(work, Panics::Rethrow, Keep::Never)
}

/// Whether a subtransaction's writes are kept when its work succeeds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    IfOk,
    Never,
}

fn run_in<T>(
    work: impl FnOnce() -> Result<T, Failure>,
    panics: Panics,
    keep: Keep,
) -> Result<T, Failure> {
    let reported = Cell::new(0);
    // SAFETY: the callback lives in this frame, is linked at the head of the stack (as
    // PostgreSQL's own callers do) and unlinked by `_unlink` before the frame ends.
    let mut callback = pg_sys::ErrorContextCallback {
        previous: unsafe { pg_sys::error_context_stack },
        callback: Some(remember_sqlstate),
        arg: (&reported as *const Cell<i32>).cast_mut().cast(),
    };
    let _unlink = ContextUnlink(callback.previous);
    // SAFETY: as above.
    unsafe { pg_sys::error_context_stack = &mut callback };
    let reported = AssertUnwindSafe(&reported);
    // SAFETY: reading the backend's current memory context and resource owner; both are valid
    // for the whole call, and restored below exactly as PL/pgSQL's exception blocks do.
    let (context, owner) = unsafe { (pg_sys::CurrentMemoryContext, pg_sys::CurrentResourceOwner) };
    begin(context);
    let mut work = Some(work);
    let mut rolled_back = false;
    // The closures run once each and every path below restores the state they touch, so
    // unwinding through them cannot leave anything half-changed.
    let mut work_slot = AssertUnwindSafe(&mut work);
    let mut rolled_back_flag = AssertUnwindSafe(&mut rolled_back);
    let outcome = PgTryBuilder::new(move || {
        let work = work_slot.take();
        assert!(work.is_some(), "the work runs once");
        work.map_or(Err(Failure { sqlstate: "XX000".into(), message: String::new() }), |work| {
            work()
        })
    })
    .catch_others(move |caught| {
        rollback(context, owner);
        **rolled_back_flag = true;
        failure_of(caught, reported.get(), panics)
    })
    .execute();
    match (&outcome, rolled_back, keep) {
        (Ok(_), _, Keep::IfOk) => release(context, owner),
        (Ok(_), _, Keep::Never) | (Err(_), false, _) => rollback(context, owner),
        (Err(_), true, _) => {}
    }
    outcome
}

fn begin(context: pg_sys::MemoryContext) {
    // SAFETY: we are inside a transaction (called from a SQL function or the worker's); the
    // subtransaction is released or rolled back on every path of `run_in` before it returns.
    unsafe {
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
        // pgrx runs SPI queries read-only (on the statement's old snapshot, blind to this
        // call's own writes) until the current subtransaction has an xid. Steps write anyway;
        // assigning it first makes their first read see everything written before it.
        pg_sys::GetCurrentTransactionId();
    }
}

/// The failure a caught error means, with the SQLSTATE the error context callback kept when
/// pgrx's report could not carry it.
fn failure_of<T>(caught: CaughtError, reported: i32, panics: Panics) -> Result<T, Failure> {
    match caught {
        CaughtError::PostgresError(report) => {
            let code = match reported {
                0 => report.sql_error_code() as i32,
                code => code,
            };
            Err(Failure { sqlstate: sqlstate_text(code), message: report.message().to_string() })
        }
        CaughtError::ErrorReport(report) => Err(Failure {
            sqlstate: sqlstate_text(report.sql_error_code() as i32),
            message: report.message().to_string(),
        }),
        CaughtError::RustPanic { ereport, .. } if panics == Panics::Contain => Err(Failure {
            sqlstate: "XX000".into(),
            message: format!("internal error: {}", ereport.message()),
        }),
        CaughtError::RustPanic { .. } => caught.rethrow(),
    }
}

fn release(context: pg_sys::MemoryContext, owner: pg_sys::ResourceOwner) {
    // SAFETY: our subtransaction is the current one and ended well.
    unsafe {
        pg_sys::ReleaseCurrentSubTransaction();
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
    }
}

fn rollback(context: pg_sys::MemoryContext, owner: pg_sys::ResourceOwner) {
    // SAFETY: our subtransaction is the current one; rolling it back returns to the caller's.
    unsafe {
        pg_sys::RollbackAndReleaseCurrentSubTransaction();
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
    }
}

/// The five-character SQLSTATE of a packed error code (the inverse of `MAKE_SQLSTATE`).
pub fn sqlstate_text(code: i32) -> String {
    (0..5).map(|position| char::from((((code >> (6 * position)) & 0x3F) as u8) + b'0')).collect()
}
