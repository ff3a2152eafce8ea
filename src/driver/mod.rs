//! The driver: loads an event under its row lock, feeds the saga (`cte_ctel_core::engine::Saga`)
//! one input, performs the effects it returns in order, feeds back each step's outcome, and
//! writes the states and changes. It decides nothing itself: what runs next, what is held,
//! captured or released, what a report means, all come from the saga. Everything happens in
//! the caller's transaction.
//!
//! Lock order, the one every writer follows: the event's row, then its liens' rows (by id), then
//! wallet rows in the global order. A drive takes them in that order before any step runs.

pub mod accounts;
pub mod build;
pub mod bulk;
pub mod dry_run;
pub mod fast;
pub mod holds;
pub mod maintenance;
pub mod reentry;
pub mod refunds;
pub mod schedule;
pub mod security;
pub mod step_holds;
pub mod steps;

use crate::raise;
use cte_ctel_core::engine::executors::StepKind;
use cte_ctel_core::engine::retry::is_retryable_sqlstate;
use cte_ctel_core::engine::{
    Change as SagaChange, CompensationOutcome, Effect, ErrorCause, EventStatus, Input, Saga,
    SagaConfig, StepOutcome, StepReport, StepStatus,
};
use cte_ctel_core::limits::{ACTIONS_PER_RUN_MAX, ERROR_TEXT_BYTES_MAX};
use cte_ctel_core::CteError;
use pgrx::Uuid;

use self::steps::Plans;
use crate::store::changes::{self, Batch, Change, Kind};
use crate::store::events::{self, EventRow, EventSave, StepRow};
use crate::store::{liens, postings, LockWait};

/// What a drive needs from its caller: the clock, the settings, how to take locks, who acts.
#[derive(Debug, Clone)]
pub struct Context {
    pub now_ms: i64,
    pub config: SagaConfig,
    pub wait: LockWait,
    /// Recorded as each change's actor; `None` is the session's user.
    pub actor: Option<String>,
}

/// What to do to an event.
pub enum Command {
    Start,
    Cancel {
        reason: Option<String>,
    },
    Deadline,
    RetryDue,
    CompensationOverdue,
    /// The application reports on an `external` step: completed with a result (JSON text), or
    /// failed with an error.
    Report {
        step_id: Uuid,
        report: StepReport,
        result: Option<String>,
        error: Option<String>,
    },
    /// The application reports the compensation of an `external` step.
    CompensationReport {
        step_id: Uuid,
        outcome: CompensationOutcome,
        error: Option<String>,
    },
    RetryCompensation {
        note: Option<String>,
    },
    Resolve {
        note: String,
    },
}

impl Command {
    /// What the command does to an event, as a refusal names it.
    fn input_name(&self) -> &'static str {
        match self {
            Command::Start => "start",
            Command::Cancel { .. } => "cancel",
            Command::Deadline => "time out",
            Command::RetryDue => "retry",
            Command::CompensationOverdue => "time out the compensation of",
            Command::Report { .. } => "report on",
            Command::CompensationReport { .. } => "report the compensation of",
            Command::RetryCompensation { .. } => "retry the compensation of",
            Command::Resolve { .. } => "resolve",
        }
    }

    /// The reason recorded with the drive's changes.
    fn reason(&self) -> Option<String> {
        match self {
            Command::Cancel { reason } => {
                Some(format!("cancelled: {}", reason.as_deref().unwrap_or("no reason given")))
            }
            Command::Deadline => Some("deadline passed".into()),
            Command::CompensationOverdue => Some("compensation not reported in time".into()),
            Command::RetryCompensation { note } => {
                Some(format!("compensation retried: {}", note.as_deref().unwrap_or("no note")))
            }
            Command::Resolve { note } => Some(format!("resolved: {note}")),
            Command::Start
            | Command::RetryDue
            | Command::Report { .. }
            | Command::CompensationReport { .. } => None,
        }
    }

    fn input(&self, steps: &[StepRow]) -> Result<Input, CteError> {
        let index_of = |step_id: Uuid| {
            steps
                .iter()
                .position(|step| step.id == step_id)
                .ok_or(CteError::TransactionUnknown { transaction_id: step_id.to_string() })
        };
        Ok(match self {
            Command::Start => Input::Start,
            Command::Cancel { .. } => Input::Cancel,
            Command::Deadline => Input::Deadline,
            Command::RetryDue => Input::RetryDue,
            Command::CompensationOverdue => Input::CompensationOverdue,
            Command::Report { step_id, report, .. } => {
                Input::StepReported { index: index_of(*step_id)?, report: *report }
            }
            Command::CompensationReport { step_id, outcome, .. } => {
                Input::CompensationReported { index: index_of(*step_id)?, report: *outcome }
            }
            Command::RetryCompensation { .. } => Input::RetryCompensation,
            Command::Resolve { .. } => Input::Resolve,
        })
    }
}

/// One drive of one event: the loaded rows and what the drive has done to them.
struct Drive {
    event: EventRow,
    steps: Vec<StepRow>,
    plans: Plans,
    lien_changes: Vec<Change>,
    /// The error that decided the event's fate in this drive: SQLSTATE (if any) and text.
    error: Option<(Option<String>, String)>,
    /// The last failure message of each step in this drive, for the event's error.
    failures: Vec<Option<String>>,
    /// Why this drive happens, when the command says (a cancel's reason, a deadline).
    reason: Option<String>,
    /// A step made to fail when it runs (`cte_dry_run`'s `fail_at`).
    fail_at: Option<usize>,
}

/// Drives an event as far as it can go now; returns its status, or `None` when the event is
/// locked by another session and `ctx.wait` says to skip it.
pub fn drive(
    event_id: Uuid,
    command: Command,
    ctx: &Context,
) -> Result<Option<EventStatus>, CteError> {
    drive_failing(event_id, command, ctx, None)
}

/// As [`drive`], with step `fail_at` (its index) made to fail when it runs, as if its type
/// refused it: what `cte_dry_run` shows.
pub fn drive_failing(
    event_id: Uuid,
    command: Command,
    ctx: &Context,
    fail_at: Option<usize>,
) -> Result<Option<EventStatus>, CteError> {
    let _driving = reentry::enter(event_id, command.input_name())?;
    let event = match ctx.wait {
        LockWait::Wait => events::lock_event(event_id)?,
        LockWait::Skip => match events::try_lock_event(event_id) {
            Some(event) => event,
            None => return Ok(None), // another session holds it: the worker skips it
        },
    };
    let steps = events::steps(event_id);
    let input = command.input(&steps)?;
    let states = steps.iter().map(|step| step.state.clone()).collect();
    let mut saga = Saga::new(event.status, states, event.deadline_ms, event.timeout_ms, ctx.config);
    let count = steps.len();
    let mut drive = Drive {
        event,
        steps,
        plans: Plans::new(count),
        lien_changes: Vec::new(),
        error: None,
        failures: vec![None; count],
        reason: command.reason(),
        fail_at,
    };
    // The saga judges the command first (it is pure): a transition it does not allow is refused
    // as such, before any step is planned (a refund's step, which only cte_reverse_event
    // plans, answered a second start with payload_invalid).
    let effects = saga.handle(input, ctx.now_ms)?;
    drive.lock_in_order(ctx)?;
    drive.apply_report(&saga, &command);
    drive.perform(&mut saga, effects, ctx)?;
    assert!(saga.status != EventStatus::Running, "a drive never leaves an event running");
    drive.persist(&saga, ctx);
    Ok(Some(saga.status))
}

impl Drive {
    /// Locks the event's liens, then every wallet its built-in steps and liens touch, in the
    /// global order, before any step runs or is compensated: whatever order its steps then
    /// touch them in, two drives cannot deadlock.
    fn lock_in_order(&mut self, ctx: &Context) -> Result<(), CteError> {
        let held = liens::lock_of_event(self.event.id, ctx.wait);
        let mut wallets: Vec<(String, String)> =
            held.iter().map(|lien| (lien.account_id.clone(), lien.currency.clone())).collect();
        for (index, step) in self.steps.iter().enumerate() {
            let unfinished =
                !matches!(step.state.status, StepStatus::Failed | StepStatus::Compensated);
            if !matches!(step.step_type.kind(), StepKind::Posting | StepKind::Held) || !unfinished {
                continue;
            }
            let plan = self.plans.of(index, step)?;
            for posting in &plan.postings {
                let entries = posting.entries.iter().filter(|entry| !entry.is_system());
                wallets.extend(entries.map(|e| (e.account_id.clone(), posting.currency.clone())));
            }
        }
        wallets.sort();
        wallets.dedup();
        if wallets.len() > 1 {
            postings::lock_wallets(wallets, ctx.wait)?;
        }
        Ok(())
    }

    /// An application's report, when the saga took it: the step's result or error.
    fn apply_report(&mut self, saga: &Saga, command: &Command) {
        if saga.changes.iter().any(|change| matches!(change, SagaChange::LateReport { .. })) {
            return;
        }
        match command {
            Command::Report { step_id, result, error, .. } => {
                if let Some(step) = self.steps.iter_mut().find(|step| step.id == *step_id) {
                    step.result = result.clone().map(Some);
                    step.error = error.as_deref().map(|error| (None, bounded(error)));
                }
            }
            Command::CompensationReport { step_id, error: Some(error), .. } => {
                if let Some(step) = self.steps.iter_mut().find(|step| step.id == *step_id) {
                    step.error = Some((None, bounded(error)));
                }
            }
            Command::Start
            | Command::Cancel { .. }
            | Command::Deadline
            | Command::RetryDue
            | Command::CompensationOverdue
            | Command::CompensationReport { error: None, .. }
            | Command::RetryCompensation { .. }
            | Command::Resolve { .. } => {}
        }
    }

    /// Performs effects in order, feeding each step outcome back to the saga.
    fn perform(
        &mut self,
        saga: &mut Saga,
        effects: Vec<Effect>,
        ctx: &Context,
    ) -> Result<(), CteError> {
        let mut queue = std::collections::VecDeque::from(effects);
        let mut performed = 0;
        while let Some(effect) = queue.pop_front() {
            performed += 1;
            assert!(
                performed <= 4 * ACTIONS_PER_RUN_MAX,
                "a drive performs a bounded number of effects"
            );
            let next = match effect {
                Effect::ActivatePendingLiens => {
                    let activated = liens::activate_pending(self.event.id, ctx.wait)?;
                    self.lien_changes.extend(activated);
                    None
                }
                Effect::Execute(index) => Some(self.execute(index, ctx)),
                Effect::Compensate(index) => Some(self.compensate(index, ctx)),
                Effect::CaptureHeld(index) => {
                    let step = &self.steps[index];
                    let plan = self.plans.of(index, step)?;
                    let captured = step_holds::capture_step(
                        step.id,
                        plan,
                        step.reference.as_deref(),
                        ctx.wait,
                    )?;
                    self.lien_changes.extend(captured);
                    None
                }
                Effect::ReleaseLiens => {
                    let reason = released_because(saga.status);
                    let released = liens::release_of_event(self.event.id, reason, ctx.wait)?;
                    self.lien_changes.extend(released);
                    None
                }
                Effect::RecordError(cause) => {
                    self.record_error(cause);
                    None
                }
            };
            if let Some(input) = next {
                queue.extend(saga.handle(input, ctx.now_ms)?);
            }
        }
        Ok(())
    }

    fn execute(&mut self, index: usize, ctx: &Context) -> Input {
        let needs_plan =
            matches!(self.steps[index].step_type.kind(), StepKind::Posting | StepKind::Held);
        let plan = match needs_plan {
            true => self.plans.of(index, &self.steps[index]).map(Some),
            false => Ok(None),
        };
        let outcome = match plan {
            _ if self.fail_at == Some(index) => Err(crate::store::subtransaction::Failure {
                sqlstate: "P0001".into(),
                message: "made to fail by cte_dry_run".into(),
            }),
            Ok(plan) => steps::execute(self.event.id, &self.steps[index], plan, ctx.wait),
            Err(error) => Err(error.into()),
        };
        let step = &mut self.steps[index];
        match outcome {
            Ok((result, changes)) => {
                step.result = Some(result);
                step.error = None;
                self.lien_changes.extend(changes);
                Input::Executed { index, outcome: StepOutcome::Done }
            }
            Err(failure) => {
                let retryable = is_retryable_sqlstate(&failure.sqlstate);
                step.error = Some((Some(failure.sqlstate.clone()), bounded(&failure.message)));
                self.failures[index] = Some(failure.message);
                Input::Executed { index, outcome: StepOutcome::Failed { retryable } }
            }
        }
    }

    fn compensate(&mut self, index: usize, ctx: &Context) -> Input {
        match steps::compensate(&self.steps[index], ctx.wait) {
            Ok(changes) => {
                self.lien_changes.extend(changes);
                Input::CompensationRan { index, outcome: CompensationOutcome::Done }
            }
            // A compensation that failed for a "try again" reason (a deadlock, a serialization
            // failure, a lock not available, a statement cancelled) did not fail: the whole drive
            // is refused with that code and nothing of it is kept, so the caller (or the
            // worker's next pass) tries again, rather than the event being left `failed` for an
            // operator.
            Err(failure) if is_retryable_sqlstate(&failure.sqlstate) && self.may_try_again(ctx) => {
                // Reported as a Rust panic, which unwinds: every guard of the drive (the event
                // marked as driven here, above all) is dropped on the way out. Each of these
                // codes is PostgreSQL's own, so the report keeps it.
                raise::unwinding(raise::Unwinding {
                    code: raise::postgres_code(&failure.sqlstate),
                    message: failure.message,
                    detail: None,
                    hint: None,
                    function: "cte_ctel compensation",
                })
            }
            Err(failure) => {
                let step = &mut self.steps[index];
                step.error = Some((Some(failure.sqlstate.clone()), bounded(&failure.message)));
                self.failures[index] = Some(failure.message);
                Input::CompensationRan { index, outcome: CompensationOutcome::Failed }
            }
        }
    }

    /// Whether a compensation that failed for a "try again" reason may still be refused as such
    /// (the core's window after the event's deadline).
    fn may_try_again(&self, ctx: &Context) -> bool {
        let config = crate::gucs::saga_config();
        config.compensation_may_try_again(self.event.deadline_ms, ctx.now_ms)
    }

    /// Writes what decided the event's fate, as its error (and on the step it concerns).
    fn record_error(&mut self, cause: ErrorCause) {
        let step_error = |drive: &Drive, index: usize| {
            let failure = drive.failures[index].clone();
            let reported = drive.steps[index].error.as_ref().map(|(_, message)| message.clone());
            failure.or(reported).unwrap_or_else(|| "no detail".into())
        };
        let sqlstate_of = |drive: &Drive, index: usize| {
            drive.steps[index].error.as_ref().and_then(|(code, _)| code.clone())
        };
        let (sqlstate, message) = match cause {
            ErrorCause::StepFailed(index) => (
                sqlstate_of(self, index),
                format!(
                    "transaction {} failed: {}",
                    self.steps[index].name,
                    step_error(self, index)
                ),
            ),
            ErrorCause::CompensationFailed(index) => (
                sqlstate_of(self, index),
                format!(
                    "compensation of {} failed: {}",
                    self.steps[index].name,
                    step_error(self, index)
                ),
            ),
            ErrorCause::Cancelled { step } | ErrorCause::DeadlinePassed { step } => {
                let text = self.reason.clone().unwrap_or_else(|| "cancelled".to_string());
                if let Some(index) = step {
                    let asked = match self.steps[index].step_type.kind() {
                        StepKind::External => ": its outcome is unknown, compensation requested",
                        _ => "",
                    };
                    self.steps[index].error = Some((None, bounded(&format!("{text}{asked}"))));
                }
                (None, text)
            }
            ErrorCause::CompensationOverdue(index) => (
                None,
                format!(
                    "compensation of {} was not reported within cte_ctel.compensation_timeout",
                    self.steps[index].name
                ),
            ),
        };
        self.error = Some((sqlstate, bounded(&message)));
    }

    /// Writes the steps that changed, the event, and the drive's changes in one outbox row.
    fn persist(&mut self, saga: &Saga, ctx: &Context) {
        let mut changed = Vec::new();
        for (index, step) in self.steps.iter_mut().enumerate() {
            if step.state != saga.steps[index] || step.result.is_some() || step.error.is_some() {
                changed.push(index);
            }
            step.state = saga.steps[index].clone();
        }
        events::save_steps(&changed.iter().map(|index| &self.steps[*index]).collect::<Vec<_>>());
        self.release_references_of_failed(saga);
        let started = saga
            .changes
            .contains(&SagaChange::Event { from: EventStatus::Created, to: EventStatus::Running });
        let moved = saga.status != self.event.status || saga.deadline_ms != self.event.deadline_ms;
        if moved || self.error.is_some() {
            let error = self.error.as_ref().map(|(code, text)| (code.as_deref(), text.as_str()));
            let save = EventSave {
                status: saga.status,
                started,
                deadline_ms: saga.deadline_ms,
                error,
                now_ms: ctx.now_ms,
            };
            events::save_event(self.event.id, &save);
        }
        let reason =
            self.reason.clone().or_else(|| self.error.as_ref().map(|(_, text)| text.clone()));
        changes::record(&Batch {
            event_id: Some(self.event.id),
            account_id: None,
            actor: ctx.actor.clone(),
            reason,
            changes: self.changes_of(saga),
        });
    }

    /// A step that failed for good gives its references back (its own and its batch items'):
    /// a reference is unique among steps that did not fail.
    fn release_references_of_failed(&mut self, saga: &Saga) {
        let mut held = Vec::new();
        for change in &saga.changes {
            let SagaChange::Step { index, to: StepStatus::Failed, .. } = *change else {
                continue;
            };
            let step = &self.steps[index];
            if let Some(reference) = &step.reference {
                held.push((step.step_type.as_str().to_string(), reference.clone(), step.id));
            }
            if step.step_type == cte_ctel_core::engine::executors::StepType::Batch {
                if let Ok(plan) = self.plans.of(index, step) {
                    let items = plan.items.iter().filter_map(|item| {
                        let reference = item.reference.clone()?;
                        Some((item.step_type.clone(), reference, step.id))
                    });
                    held.extend(items);
                }
            }
        }
        crate::store::references::release(&held);
    }

    /// The saga's changes, then the liens' in the order they were made.
    fn changes_of(&self, saga: &Saga) -> Vec<Change> {
        let step_ids: Vec<Uuid> = self.steps.iter().map(|step| step.id).collect();
        let mut all: Vec<Change> =
            saga.changes.iter().map(|change| change_row(change, saga, &step_ids)).collect();
        all.extend(self.lien_changes.iter().cloned());
        all
    }
}

/// A saga's change as a row of the feed; `step_ids` are the event's steps in order.
pub(crate) fn change_row(change: &SagaChange, saga: &Saga, step_ids: &[Uuid]) -> Change {
    match *change {
        SagaChange::Event { from, to } => Change {
            kind: Kind::Event,
            transaction_id: None,
            lien_id: None,
            old_status: Some(from.as_str()),
            new_status: to.as_str(),
        },
        SagaChange::Step { index, from, to } => Change {
            kind: Kind::Transaction,
            transaction_id: Some(step_ids[index]),
            lien_id: None,
            old_status: Some(from.as_str()),
            new_status: to.as_str(),
        },
        // Nothing changed: the step's status stays, and the row says what was reported.
        SagaChange::LateReport { index, report } => Change {
            kind: Kind::LateReport,
            transaction_id: Some(step_ids[index]),
            lien_id: None,
            old_status: Some(saga.steps[index].status.as_str()),
            new_status: report.as_str(),
        },
    }
}

/// Why an event's liens are released, as each lien records it.
fn released_because(status: EventStatus) -> &'static str {
    match status {
        EventStatus::Completed => "its event completed",
        EventStatus::Compensated => "its event was compensated",
        EventStatus::Resolved => "its event was resolved",
        EventStatus::Created
        | EventStatus::Running
        | EventStatus::Waiting
        | EventStatus::Compensating
        | EventStatus::Failed => "its event ended",
    }
}

/// An error text cut to `ERROR_TEXT_BYTES_MAX`, on a character boundary.
pub fn bounded(text: &str) -> String {
    if text.len() <= ERROR_TEXT_BYTES_MAX {
        return text.to_string();
    }
    let mut end = ERROR_TEXT_BYTES_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
