//! The client's one error type, and the one place that sorts a driver error into it.
//!
//! A refusal of the ledger (SQLSTATE class `L0`, `DETAIL: reason: <reason>`) changed nothing and
//! becomes [`Error::Refused`], matchable by its [`Reason`] (generated from the server's catalog
//! into `reason.rs`). `42501` is a refusal outside the catalog ([`Reason::PermissionDenied`]).
//! `40001`, `40P01` and `55P03` are not refusals but "send it again" ([`Error::TryAgain`]).
//! Any other server error stays a [`Error::Database`]; an error with no SQLSTATE (a lost
//! connection, a row that did not convert) is an [`Error::Connection`]. Nothing here runs SQL.

use std::fmt;

use tokio_postgres::error::DbError;

use crate::reason::{Reason, CATALOG};

/// Errors that mean "send the same call again": a serialization failure, a deadlock, a lock
/// that could not be taken now. Every keyed call of the ledger is safe to send again.
pub const TRY_AGAIN_SQLSTATES: [&str; 3] = ["40001", "40P01", "55P03"];

/// What a call of this client can fail with.
#[derive(Debug)]
pub enum Error {
    /// The ledger refused the call and changed nothing.
    Refused(Refused),
    /// The call lost a race (40001, 40P01, 55P03): sending it again is safe and may succeed.
    TryAgain(tokio_postgres::Error),
    /// Any other error the server raised, with its SQLSTATE (`.code()`).
    Database(tokio_postgres::Error),
    /// No answer from the server: the connection, the protocol or a row's conversion failed.
    Connection(tokio_postgres::Error),
    /// An answer this client cannot read (a phase it does not know, an amount that is not a
    /// decimal): a client older or newer than the server, or a bug.
    Unexpected(String),
}

/// A refusal: what the server said, and the catalog's reason it named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The catalog's reason; [`Reason::Unknown`] for one this client does not know yet.
    pub reason: Reason,
    /// The five-character SQLSTATE (`L0020`, or `42501`).
    pub sqlstate: String,
    /// The server's message, naming the offending value.
    pub message: String,
    /// The DETAIL: `reason: <reason>` and nothing else.
    pub detail: Option<String>,
    /// The HINT: further facts for the caller (the event a key already names, a fix).
    pub hint: Option<String>,
}

/// The client's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The refusal, when the ledger refused.
    pub fn refused(&self) -> Option<&Refused> {
        match self {
            Error::Refused(refused) => Some(refused),
            Error::TryAgain(_)
            | Error::Database(_)
            | Error::Connection(_)
            | Error::Unexpected(_) => None,
        }
    }

    /// True when the refusal's reason is `reason`.
    pub fn is_refused(&self, reason: &Reason) -> bool {
        self.refused().is_some_and(|refused| &refused.reason == reason)
    }
}

/// The reason a DETAIL names (`reason: insufficient_funds`), or None.
pub fn reason_of(detail: Option<&str>) -> Option<&str> {
    let name = detail?.strip_prefix("reason: ")?;
    let valid =
        !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_lowercase() || byte == b'_');
    if valid {
        Some(name)
    } else {
        None
    }
}

/// The refusal a server error is, or None when it is not one (see [`refusal_from`]).
pub fn refusal_of(error: &DbError) -> Option<Refused> {
    refusal_from(error.code().code(), error.message(), error.detail(), error.hint())
}

/// The refusal an error's fields make, or None when they are not one: the catalog's reason for
/// a class `L0` code whose DETAIL names the reason the catalog gives that code,
/// [`Reason::Unknown`] for any other `L0` refusal (a newer server), [`Reason::PermissionDenied`]
/// for `42501`.
pub fn refusal_from(
    sqlstate: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) -> Option<Refused> {
    let named = reason_of(detail);
    let reason = if sqlstate.starts_with("L0") {
        let known = CATALOG.iter().find(|(_, code, _)| *code == sqlstate);
        match (known, named) {
            (Some((reason, _, name)), Some(named)) if *name == named => reason.clone(),
            (_, named) => Reason::Unknown(named.unwrap_or_default().to_owned()),
        }
    } else if sqlstate == "42501" {
        Reason::PermissionDenied
    } else {
        return None;
    };
    Some(Refused {
        reason,
        sqlstate: sqlstate.to_owned(),
        message: message.to_owned(),
        detail: detail.map(str::to_owned),
        hint: hint.map(str::to_owned),
    })
}

impl From<tokio_postgres::Error> for Error {
    fn from(error: tokio_postgres::Error) -> Self {
        let Some(database) = error.as_db_error() else {
            return Error::Connection(error);
        };
        if let Some(refused) = refusal_of(database) {
            return Error::Refused(refused);
        }
        if TRY_AGAIN_SQLSTATES.contains(&database.code().code()) {
            Error::TryAgain(error)
        } else {
            Error::Database(error)
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.sqlstate, self.message)?;
        if let Some(hint) = &self.hint {
            write!(formatter, " (HINT: {hint})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused(refused) => write!(formatter, "refused: {refused}"),
            Error::TryAgain(error) => write!(formatter, "try again: {error}"),
            Error::Database(error) => write!(formatter, "database: {error}"),
            Error::Connection(error) => write!(formatter, "connection: {error}"),
            Error::Unexpected(what) => write!(formatter, "unexpected: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::TryAgain(error) | Error::Database(error) | Error::Connection(error) => {
                Some(error)
            }
            Error::Refused(_) | Error::Unexpected(_) => None,
        }
    }
}
