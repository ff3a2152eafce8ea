//! The driver: loads an event under its row lock, feeds the saga a command, performs each
//! action the saga asks for (run or compensate a step, in a subtransaction), feeds back the
//! outcome, and writes states, history and notifications. All in the caller's transaction.

use cte_ctel_core::engine::executors::StepType;
use cte_ctel_core::engine::retry::is_retryable_sqlstate;
use cte_ctel_core::engine::{Action, Change, EventStatus, RetryPolicy, Saga, StepStatus};
use cte_ctel_core::limits::{ACTIONS_PER_RUN_MAX, ERROR_TEXT_BYTES_MAX};
use cte_ctel_core::CteError;
use pgrx::Uuid;
use serde_json::Value;

use super::events::{self, StepRow};
use super::steps::{self, Outcome};
use super::subtransaction::Failure;
use super::{ledger, liens};

/// What to do to an event.
pub enum Command {
    Start,
    Cancel {
        reason: Option<String>,
    },
    /// Its deadline passed (maintenance).
    Timeout,
    /// A scheduled retry is due (maintenance).
    Resume,
    /// The application reports on a step that waits on it.
    Report {
        step_id: Uuid,
        report: Report,
    },
}

pub enum Report {
    Completed(Option<Value>),
    Failed { error: String, retryable: bool },
}

/// The event's error: the SQLSTATE (when one applies) and text of what decided its fate.
type EventError = Option<(Option<String>, String)>;

/// Drives an event as far as it can go now; returns its status.
pub fn drive(
    event_id: Uuid,
    command: Command,
    now_ms: i64,
    policy: &RetryPolicy,
) -> Result<EventStatus, CteError> {
    let event = events::lock(event_id)?;
    let mut steps = events::steps(event_id);
    let mut saga = Saga::new(event.status, steps.iter().map(|s| s.state.clone()).collect());
    let mut event_error: EventError = None;
    lock_wallets_in_order(event_id, &steps);
    let starting = matches!(command, Command::Start);
    let reason = apply(&mut saga, &mut steps, command, now_ms, policy, &mut event_error)?;
    if starting {
        // An event's liens take their funds as it starts; one that cannot refuses the start.
        liens::activate_pending(event_id)?;
    }
    for _ in 0..ACTIONS_PER_RUN_MAX {
        let action = saga.next_action(now_ms)?;
        match action {
            Action::Execute(index) => {
                sync(&saga, &mut steps, index);
                let outcome = steps::execute(&steps[index]);
                let retryable = outcome.as_ref().err().map(|f| is_retryable_sqlstate(&f.sqlstate));
                executed(
                    &mut saga,
                    &mut steps,
                    index,
                    outcome,
                    retryable,
                    now_ms,
                    policy,
                    &mut event_error,
                )?;
            }
            Action::Compensate(index) => {
                sync(&saga, &mut steps, index);
                match steps::compensate(&steps[index]) {
                    Ok(Outcome::Done(_)) => saga.compensation_succeeded(index)?,
                    Ok(Outcome::Waiting) => {}
                    Err(failure) => {
                        let message = format!(
                            "compensation of {} failed: {}",
                            steps[index].name, failure.message
                        );
                        steps[index].error =
                            Some((Some(failure.sqlstate.clone()), bounded(&failure.message)));
                        event_error = Some((Some(failure.sqlstate), bounded(&message)));
                        saga.compensation_failed(index)?;
                    }
                }
            }
            Action::Wait | Action::Finished => break,
        }
    }
    assert!(!matches!(saga.status, EventStatus::Running), "a drive never leaves an event running");
    if saga.status != event.status {
        settle_liens(event_id, saga.status, &steps)?;
    }
    persist(&event, &saga, &mut steps, &event_error, reason.as_deref());
    Ok(saga.status)
}

/// Locks, in the global order, every wallet row this event may touch (its built-in steps' and
/// liens'), before any step runs or is compensated: whatever order its steps then touch them
/// in, two events cannot deadlock. A lone posting locks its rows in order itself: skipped.
fn lock_wallets_in_order(event_id: Uuid, steps: &[StepRow]) {
    let (postings, wallets) = wallets_of(event_id, steps);
    if postings <= 1 && wallets.len() <= 2 {
        return;
    }
    ledger::lock_wallets(wallets);
}

/// Every wallet an event's built-in steps and liens touch, and how many postings its steps plan.
fn wallets_of(event_id: Uuid, steps: &[StepRow]) -> (usize, Vec<(String, String)>) {
    let (mut wallets, postings) = steps::wallets_touched(steps);
    wallets.extend(liens::wallets_of_event(event_id));
    (postings, wallets)
}

/// Every wallet the given events may touch (maintenance locks them all before driving any).
pub fn wallets_of_events(event_ids: &[Uuid]) -> Vec<(String, String)> {
    let mut wallets = Vec::new();
    for event_id in event_ids {
        wallets.extend(wallets_of(*event_id, &events::steps(*event_id)).1);
    }
    wallets
}

/// When an event ends: a completed one makes the postings its withdrawals and exchanges held
/// funds for; then every lien it still holds is released, so none outlives it.
fn settle_liens(event_id: Uuid, status: EventStatus, steps: &[StepRow]) -> Result<(), CteError> {
    let reason = match status {
        EventStatus::Completed => {
            steps::capture_held(steps)?;
            "its event completed"
        }
        EventStatus::Compensated => "its event was compensated",
        EventStatus::Failed => "its event failed",
        EventStatus::Created
        | EventStatus::Running
        | EventStatus::Waiting
        | EventStatus::Compensating => return Ok(()),
    };
    liens::release_of_event(event_id, reason)
}

fn apply(
    saga: &mut Saga,
    steps: &mut [StepRow],
    command: Command,
    now_ms: i64,
    policy: &RetryPolicy,
    event_error: &mut EventError,
) -> Result<Option<String>, CteError> {
    match command {
        Command::Start => saga.start().map(|()| None),
        Command::Resume => saga.resume().map(|()| None),
        Command::Cancel { reason } => {
            let text = format!("cancelled: {}", reason.as_deref().unwrap_or("no reason given"));
            cancel(saga, steps, &text, event_error)?;
            Ok(Some(text))
        }
        Command::Timeout => {
            cancel(saga, steps, "deadline passed", event_error)?;
            Ok(Some("deadline passed".into()))
        }
        Command::Report { step_id, report } => {
            let index = steps.iter().position(|step| step.id == step_id);
            let index = index
                .ok_or(CteError::TransactionUnknown { transaction_id: step_id.to_string() })?;
            reported(saga, steps, index, report, now_ms, policy, event_error)
        }
    }
}

/// Cancels the event; the step it was waiting on fails with the reason as its error.
fn cancel(
    saga: &mut Saga,
    steps: &mut [StepRow],
    reason: &str,
    event_error: &mut EventError,
) -> Result<(), CteError> {
    let waiting = saga.steps.iter().position(|step| step.status == StepStatus::Waiting);
    saga.cancel()?;
    if let Some(index) = waiting {
        steps[index].error = Some((None, bounded(reason)));
    }
    *event_error = Some((None, bounded(reason)));
    Ok(())
}

/// The application reports on an `external` step that waits on it, or on its compensation.
#[allow(clippy::too_many_arguments)]
fn reported(
    saga: &mut Saga,
    steps: &mut [StepRow],
    index: usize,
    report: Report,
    now_ms: i64,
    policy: &RetryPolicy,
    event_error: &mut EventError,
) -> Result<Option<String>, CteError> {
    let state = &saga.steps[index];
    let is_external = StepType::parse(&steps[index].step_type).ok() == Some(StepType::External);
    let waits_on_report = state.status == StepStatus::Waiting && state.next_attempt_at_ms.is_none();
    let refused = CteError::TransitionNotAllowed {
        what: "transaction",
        from: state.status.as_str(),
        input: "report on",
    };
    match (is_external, state.status, report) {
        (true, StepStatus::Waiting, Report::Completed(result)) if waits_on_report => {
            saga.resume()?;
            steps[index].result = result;
            saga.step_succeeded(index)?;
            Ok(None)
        }
        (true, StepStatus::Waiting, Report::Failed { error, retryable }) if waits_on_report => {
            saga.resume()?;
            let failure = Failure { sqlstate: String::new(), message: error };
            executed(
                saga,
                steps,
                index,
                Err(failure),
                Some(retryable),
                now_ms,
                policy,
                event_error,
            )?;
            Ok(None)
        }
        (true, StepStatus::Compensating, Report::Completed(_)) => {
            saga.compensation_succeeded(index)?;
            Ok(None)
        }
        (true, StepStatus::Compensating, Report::Failed { error, .. }) => {
            let message = format!("compensation of {} failed: {error}", steps[index].name);
            steps[index].error = Some((None, bounded(&error)));
            *event_error = Some((None, bounded(&message)));
            saga.compensation_failed(index)?;
            Ok(Some(message))
        }
        _ => Err(refused),
    }
}

/// Feeds a step's outcome to the saga and keeps its result or error on the step. A failure is
/// retried if `retryable` says so: from its SQLSTATE when the engine caught it, from the
/// application's word when reported. An empty SQLSTATE means the application reported it.
#[allow(clippy::too_many_arguments)]
fn executed(
    saga: &mut Saga,
    steps: &mut [StepRow],
    index: usize,
    outcome: Result<Outcome, Failure>,
    retryable: Option<bool>,
    now_ms: i64,
    policy: &RetryPolicy,
    event_error: &mut EventError,
) -> Result<(), CteError> {
    match outcome {
        Ok(Outcome::Done(result)) => {
            steps[index].result = result;
            steps[index].error = None;
            saga.step_succeeded(index)
        }
        Ok(Outcome::Waiting) => saga.step_waiting(index),
        Err(failure) => {
            let sqlstate = Some(failure.sqlstate).filter(|code| !code.is_empty());
            steps[index].error = Some((sqlstate.clone(), bounded(&failure.message)));
            saga.step_failed(index, retryable.unwrap_or(false), now_ms, policy)?;
            if saga.steps[index].status == StepStatus::Failed {
                let message =
                    format!("transaction {} failed: {}", steps[index].name, failure.message);
                *event_error = Some((sqlstate, bounded(&message)));
            }
            Ok(())
        }
    }
}

/// Copies the saga's view of a step (status, attempts, retry time) onto its row.
fn sync(saga: &Saga, steps: &mut [StepRow], index: usize) {
    steps[index].state = saga.steps[index].clone();
}

fn persist(
    event: &events::EventRow,
    saga: &Saga,
    steps: &mut [StepRow],
    error: &EventError,
    reason: Option<&str>,
) {
    let mut changed = Vec::new();
    for (index, step) in steps.iter_mut().enumerate() {
        if step.state != saga.steps[index] || step.result.is_some() || step.error.is_some() {
            changed.push(index);
        }
        step.state = saga.steps[index].clone();
    }
    events::save_steps(&changed.iter().map(|index| &steps[*index]).collect::<Vec<_>>());
    let (sqlstate, message) = match error {
        Some((sqlstate, message)) => (sqlstate.as_deref(), Some(message.as_str())),
        None => (None, None),
    };
    let started = saga
        .changes
        .contains(&Change::Event { from: EventStatus::Created, to: EventStatus::Running });
    if saga.status != event.status || message.is_some() {
        events::save_event(event.id, saga.status, started, sqlstate, message);
    }
    events::record(event.id, steps, &saga.changes, reason.or(message));
}

fn bounded(text: &str) -> String {
    if text.len() <= ERROR_TEXT_BYTES_MAX {
        return text.to_string();
    }
    let mut end = ERROR_TEXT_BYTES_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
