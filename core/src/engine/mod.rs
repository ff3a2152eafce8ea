//! The saga engine's rules: statuses, the state machine, the retry policy, and the built-in
//! step types (payload parsing and the postings each plans). Pure: the shell runs what these
//! decide.

pub mod executors;
pub mod retry;
pub mod saga;
pub mod status;

pub use retry::RetryPolicy;
pub use saga::{Action, Change, Saga, StepState};
pub use status::{EventStatus, StepStatus};
