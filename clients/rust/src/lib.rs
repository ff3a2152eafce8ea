//! Rust client of `cte_ctel`, a wallet ledger with a saga engine inside PostgreSQL: the twin
//! of `clients/python`, on tokio-postgres.
//!
//! - [`Ledger`]: deposits, transfers, balances, events, refunds, liens; `Decimal` only.
//! - [`Worker`], [`Executor`], [`Step`]: steps of types the application hosts, claimed under
//!   leases, kept by a heartbeat, reported with the lease token.
//! - [`Consumer`]: a named consumer of the change feed, acknowledged in the handler's
//!   transaction.
//! - [`Error`]: [`Error::Refused`] with a [`Reason`] generated from the server's catalog,
//!   [`Error::TryAgain`] for 40001, 40P01, 55P03, and database and connection errors.
//!
//! Each call is one SQL function of schema `cte_ctel`; this crate holds no state of the ledger.
//!
//! An executor, idempotent by the step's `transaction_id` (steps run at least once):
//!
//! ```no_run
//! use cte_ctel_client::{money, Executor, Step, StepError, StepResult, Worker};
//! use serde_json::json;
//!
//! struct ChargeCard;
//!
//! impl Executor for ChargeCard {
//!     async fn execute(&self, step: &Step) -> StepResult {
//!         let amount = money::field(&step.payload, "amount")?; // exact, never a float
//!         if amount > money::parse("1000")? {
//!             return Err(StepError::permanent("over the card's limit")); // compensates
//!         }
//!         // Charge `amount` at the PSP, `step.transaction_id` as its idempotency key.
//!         Ok(json!({"charge_id": format!("ch_{}", step.transaction_id)}))
//!     }
//! }
//!
//! # async fn run(dsn: &str) -> cte_ctel_client::Result<()> {
//! let mut worker = Worker::new(dsn, "web-1")?.host("psp.charge", ChargeCard);
//! worker.run_once().await?;
//! # Ok(())
//! # }
//! ```
#![deny(clippy::float_arithmetic)]
#![warn(missing_docs)]

pub mod catalog;
mod connection;
mod consumer;
mod error;
mod executor;
mod heartbeat;
mod ledger;
pub mod money;
mod reason;
mod worker;

pub use connection::{connect, connect_listening, Wakeups};
pub use consumer::{Change, Consumer, CHANNEL};
pub use error::{reason_of, refusal_from, refusal_of, Error, Refused, Result, TRY_AGAIN_SQLSTATES};
pub use executor::{Executor, Phase, Step, StepError, StepResult};
pub use ledger::{
    EventRun, HoldOptions, Ledger, NewStep, RefundLeg, RunOptions, TransferItem, TransferOutcome,
    TransferStatus,
};
pub use reason::{Reason, CATALOG};
pub use worker::{Report, Worker, LEASE_MIN};
