//! The pure core of `cte_ctel`: money, ledger rules, the error catalog and every limit.
//!
//! Nothing here touches PostgreSQL, a clock, a setting or any I/O: this crate does not depend on
//! pgrx at all, so the compiler keeps it pure. The extension crate (`src/`) is the imperative
//! shell that reads arguments, runs SQL and maps [`error::CteError`] to a PostgreSQL error.

pub mod engine;
pub mod error;
pub mod ids;
pub mod json;
pub mod ledger;
pub mod limits;
pub mod money;

pub use error::CteError;
