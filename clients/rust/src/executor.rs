//! What the application writes: an [`Executor`] per hosted step type, and the [`Step`] it is
//! handed. Nothing here runs SQL; the [`crate::Worker`] claims, calls and reports.
//!
//! At-least-once: a step can be executed more than once (a worker killed after the outside work
//! and before its report; a lease that ran out). Executors must be idempotent, keyed by the
//! step's `transaction_id` (the same for every attempt), e.g. as the idempotency key of a PSP
//! call.
//!
//! What an executor's error means:
//!   - [`StepError::Retryable`]: the attempt failed and may succeed later
//!     (`cte_fail_transaction(retryable => true)`); for a compensation, nothing is reported and
//!     the step is claimed again once its lease runs out.
//!   - [`StepError::Permanent`]: the work cannot succeed (a declined card): the step fails for
//!     good and its event compensates (`retryable => false`), or the compensation is reported
//!     failed and the event is left `failed` for an operator.
//!   - [`StepError::Unknown`], which any other error becomes through `?` (and a panic too): the
//!     outcome is unknown (a timeout after the PSP may have acted), so it is treated as
//!     `Retryable`: the next attempt, idempotent by `transaction_id`, finds out.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

/// Which work a claimed step asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Execute the step.
    Execute,
    /// Undo what its execution did: its event is compensating.
    Compensate,
}

/// One claimed step, as `cte_claim_steps` hands it out.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The step's id: the idempotency key of the work, the same for every attempt.
    pub transaction_id: Uuid,
    /// Its event.
    pub event_id: Uuid,
    /// Its (hosted) type.
    pub step_type: String,
    /// Execute or compensate.
    pub phase: Phase,
    /// The payload the event gave it (amounts as the event wrote them: read them with
    /// [`crate::money::field`]).
    pub payload: Value,
    /// What its execution returned (for a compensation), or None.
    pub result: Option<Value>,
    /// The step's attempts so far (for `execute`, this one's number).
    pub attempt: i32,
    /// What the reports carry: the lease this worker holds.
    pub lease_token: Uuid,
}

/// Why an executor's work did not succeed (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// This attempt failed; a later one may succeed.
    Retryable(String),
    /// The work cannot succeed: fail the step for good.
    Permanent(String),
    /// The outcome is not known: treated as `Retryable`.
    Unknown(String),
}

/// What an executor returns: the result to keep (a JSON object, amounts as decimal strings, or
/// `Value::Null` for none), or why the work did not succeed.
pub type StepResult = Result<Value, StepError>;

impl StepError {
    /// `Retryable` with `message`.
    pub fn retryable(message: impl Into<String>) -> StepError {
        StepError::Retryable(message.into())
    }

    /// `Permanent` with `message`.
    pub fn permanent(message: impl Into<String>) -> StepError {
        StepError::Permanent(message.into())
    }

    /// True unless `Permanent`: a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            StepError::Retryable(_) | StepError::Unknown(_) => true,
            StepError::Permanent(_) => false,
        }
    }
}

/// Any error raised with `?` in an executor is an unknown outcome.
impl<E: std::error::Error> From<E> for StepError {
    fn from(error: E) -> Self {
        StepError::Unknown(error.to_string())
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Retryable(message) => write!(formatter, "retryable: {message}"),
            StepError::Permanent(message) => write!(formatter, "permanent: {message}"),
            StepError::Unknown(message) => write!(formatter, "unknown outcome: {message}"),
        }
    }
}

/// The work of one step type, run by the application. Both methods must be idempotent by
/// `step.transaction_id`.
pub trait Executor: Send + Sync + 'static {
    /// Does the step's work; returns the result to keep.
    fn execute(&self, step: &Step) -> impl Future<Output = StepResult> + Send;

    /// Undoes what `execute` did; the default has nothing to undo.
    fn compensate(&self, _step: &Step) -> impl Future<Output = StepResult> + Send {
        async { Ok(Value::Null) }
    }
}

/// One executor shared by several workers.
impl<T: Executor> Executor for Arc<T> {
    fn execute(&self, step: &Step) -> impl Future<Output = StepResult> + Send {
        T::execute(self, step)
    }

    fn compensate(&self, step: &Step) -> impl Future<Output = StepResult> + Send {
        T::compensate(self, step)
    }
}

type BoxedWork<'a> = Pin<Box<dyn Future<Output = StepResult> + Send + 'a>>;

/// An [`Executor`] behind a pointer, so one worker can host several types.
pub(crate) trait DynExecutor: Send + Sync {
    fn work<'a>(&'a self, step: &'a Step) -> BoxedWork<'a>;
}

impl<T: Executor> DynExecutor for T {
    fn work<'a>(&'a self, step: &'a Step) -> BoxedWork<'a> {
        match step.phase {
            Phase::Execute => Box::pin(self.execute(step)),
            Phase::Compensate => Box::pin(self.compensate(step)),
        }
    }
}
