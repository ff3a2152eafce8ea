//! Every way the extension raises an ERROR, in one place below `api`, `driver` and `store`.
//!
//! Two mechanisms, each for where it is safe:
//! - [`refusal`] and [`failure`] call PostgreSQL's `errstart`/`errfinish` directly, which jump
//!   (longjmp) to the caller's error handler: only from the top of a `#[pg_extern]` body whose
//!   Rust values were dropped first. They can carry any SQLSTATE, the extension's class `L0`
//!   included, which pgrx's `ErrorReport` cannot.
//! - [`unwinding`] reports through pgrx's `ErrorReport`, a Rust panic that unwinds: for errors
//!   raised deep in a call (mid-drive, in a guard), where every Rust frame must drop its values
//!   on the way out. PostgreSQL's own SQLSTATEs only.

use std::ffi::{c_char, c_int, CString};

use cte_ctel_core::CteError;
use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// Packs a five-character SQLSTATE the way PostgreSQL's `MAKE_SQLSTATE` does.
pub(crate) fn sqlstate_code(sqlstate: &str) -> i32 {
    assert_eq!(sqlstate.len(), 5, "a SQLSTATE has five characters: {sqlstate:?}");
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
/// top of a `#[pg_extern]` body (through `api::refused`) whose arguments were moved away, so the
/// frames it jumps over hold nothing to drop, as `longjmp` over Rust frames requires.
pub(crate) fn refusal(function: &'static str, error: CteError) -> ! {
    let texts = {
        let detail = format!("reason: {}", error.reason());
        let hint = error.hint();
        Texts::new(function, error.sqlstate(), &error.to_string(), Some(&detail), hint.as_deref())
    }; // every Rust string is dropped here: the texts are in PostgreSQL memory
    drop(error);
    texts.raise()
}

/// Raises an error that is not a refusal with its own SQLSTATE and message (one caught inside a
/// subtransaction, as `cte_dry_run` returns it). Called as [`refusal`] is.
pub(crate) fn failure(function: &'static str, failure: crate::store::subtransaction::Failure) -> ! {
    let texts = Texts::new(function, &failure.sqlstate, &failure.message, None, None);
    drop(failure);
    texts.raise()
}

/// An error's texts, copied into PostgreSQL memory: nothing in it needs dropping, so the jump
/// out of `raise` leaves no Rust value behind.
#[derive(Clone, Copy)]
struct Texts {
    code: c_int,
    message: *mut c_char,
    detail: Option<*mut c_char>,
    hint: Option<*mut c_char>,
    function: *mut c_char,
}

impl Texts {
    fn new(
        function: &str,
        sqlstate: &str,
        message: &str,
        detail: Option<&str>,
        hint: Option<&str>,
    ) -> Texts {
        Texts {
            code: sqlstate_code(sqlstate),
            message: palloc_text(message),
            detail: detail.map(palloc_text),
            hint: hint.map(palloc_text),
            function: palloc_text(function),
        }
    }

    fn raise(self) -> ! {
        // SAFETY: the documented ereport(ERROR, ...) sequence; each text is a valid C string and
        // "%s" keeps any '%' in it from being read as a format.
        unsafe {
            if errstart(PgLogLevel::ERROR as c_int, std::ptr::null()) {
                errcode(self.code);
                errmsg(c"%s".as_ptr(), self.message);
                if let Some(detail) = self.detail {
                    errdetail(c"%s".as_ptr(), detail);
                }
                if let Some(hint) = self.hint {
                    errhint(c"%s".as_ptr(), hint);
                }
                errfinish(c"src/raise.rs".as_ptr(), line!() as c_int, self.function);
            }
        }
        unreachable!("errstart(ERROR) always reports and errfinish(ERROR) never returns")
    }
}

/// An error raised deep in a call, with one of PostgreSQL's own SQLSTATEs.
pub(crate) struct Unwinding<'a> {
    pub code: PgSqlErrorCode,
    pub message: String,
    pub detail: Option<&'a str>,
    pub hint: Option<&'a str>,
    /// What raised it (the SQL function, or the part of the engine).
    pub function: &'static str,
}

/// Raises `error` as a Rust panic carrying PostgreSQL's error: every frame between here and the
/// `#[pg_guard]` boundary drops its values on the way out (see the module's text).
pub(crate) fn unwinding(error: Unwinding) -> ! {
    let mut report = ErrorReport::new(error.code, error.message, error.function);
    if let Some(detail) = error.detail {
        report = report.set_detail(detail);
    }
    if let Some(hint) = error.hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}

/// A SQLSTATE of PostgreSQL's own (five characters), as pgrx's code type.
pub(crate) fn postgres_code(sqlstate: &str) -> PgSqlErrorCode {
    PgSqlErrorCode::from(sqlstate_code(sqlstate))
}
