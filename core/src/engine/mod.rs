//! The saga engine's rules: statuses, the state machine, the retry policy, and the built-in
//! step types (payload parsing and the postings each plans). Pure: the shell runs what these
//! decide.

pub mod checks;
pub mod executors;
pub mod graph;
pub mod retry;
pub mod saga;
pub mod status;
pub mod transfer;

pub use retry::RetryPolicy;
pub use saga::{
    event_allows, start_when, Change, CompensationOutcome, Effect, ErrorCause, EventAsk, Input,
    LateReport, Saga, SagaConfig, StartWhen, StepOutcome, StepReport, StepState,
};
pub use status::{EventStatus, StepStatus};
