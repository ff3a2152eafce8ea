//! The saga state machine: an event and its ordered steps, fed inputs, emitting status changes.
//!
//! Pure and deterministic: the shell loads an event's state, calls these methods with what
//! happened (and the time, as milliseconds), performs the `Action` asked for (run a step,
//! compensate one), reports the outcome, and persists `changes`. Every allowed transition is
//! one arm of `event_transition` or `step_transition`; any other pair is
//! `CteError::TransitionNotAllowed`.

use super::retry::RetryPolicy;
use super::status::{EventStatus, StepStatus};
use crate::error::CteError;

/// What the machine knows of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepState {
    pub status: StepStatus,
    pub attempts: u32,
    pub attempts_max: u32,
    /// When a scheduled retry is due; `None` for a step waiting on the outside world.
    pub next_attempt_at_ms: Option<i64>,
}

/// A status change, in the order it happened: the shell records and notifies each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Event { from: EventStatus, to: EventStatus },
    Step { index: usize, from: StepStatus, to: StepStatus },
}

/// What the shell must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run step `index` (its attempt has been counted).
    Execute(usize),
    /// Compensate step `index`, the newest completed one.
    Compensate(usize),
    /// Nothing until the outside world reports or a retry falls due.
    Wait,
    /// The event has ended (or was at rest already).
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventInput {
    Start,
    StepsCompleted,
    MustWait,
    StepFailedForGood,
    Resume,
    Cancel,
    CompensationsDone,
    CompensationFailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepInput {
    Execute,
    Succeed,
    WaitExternal,
    RetryLater,
    FailForGood,
    Compensate,
    Compensated,
}

fn event_transition(from: EventStatus, input: EventInput) -> Result<EventStatus, CteError> {
    use EventInput as I;
    use EventStatus as S;
    match (from, input) {
        (S::Created, I::Start) => Ok(S::Running),
        (S::Created, I::Cancel) => Ok(S::Compensated),
        (S::Running, I::StepsCompleted) => Ok(S::Completed),
        (S::Running, I::MustWait) => Ok(S::Waiting),
        (S::Running, I::StepFailedForGood) => Ok(S::Compensating),
        (S::Waiting, I::Resume) => Ok(S::Running),
        (S::Waiting, I::Cancel) => Ok(S::Compensating),
        (S::Compensating, I::CompensationsDone) => Ok(S::Compensated),
        (S::Compensating, I::CompensationFailed) => Ok(S::Failed),
        (from, input) => Err(CteError::TransitionNotAllowed {
            what: "event",
            from: from.as_str(),
            input: event_input_name(input),
        }),
    }
}

fn event_input_name(input: EventInput) -> &'static str {
    match input {
        EventInput::Start => "start",
        EventInput::StepsCompleted => "complete",
        EventInput::MustWait => "wait",
        EventInput::StepFailedForGood => "fail a step",
        EventInput::Resume => "resume",
        EventInput::Cancel => "cancel",
        EventInput::CompensationsDone => "finish compensating",
        EventInput::CompensationFailed => "fail compensating",
    }
}

fn step_transition(from: StepStatus, input: StepInput) -> Result<StepStatus, CteError> {
    use StepInput as I;
    use StepStatus as S;
    match (from, input) {
        (S::Pending, I::Execute) => Ok(S::Running),
        (S::Waiting, I::Execute) => Ok(S::Running),
        (S::Running, I::Succeed) => Ok(S::Completed),
        (S::Running, I::WaitExternal) => Ok(S::Waiting),
        (S::Running, I::RetryLater) => Ok(S::Waiting),
        (S::Running, I::FailForGood) => Ok(S::Failed),
        (S::Waiting, I::Succeed) => Ok(S::Completed),
        (S::Waiting, I::RetryLater) => Ok(S::Waiting),
        (S::Waiting, I::FailForGood) => Ok(S::Failed),
        (S::Completed, I::Compensate) => Ok(S::Compensating),
        (S::Compensating, I::Compensated) => Ok(S::Compensated),
        (from, input) => Err(CteError::TransitionNotAllowed {
            what: "transaction",
            from: from.as_str(),
            input: step_input_name(input),
        }),
    }
}

fn step_input_name(input: StepInput) -> &'static str {
    match input {
        StepInput::Execute => "execute",
        StepInput::Succeed => "complete",
        StepInput::WaitExternal => "wait",
        StepInput::RetryLater => "retry",
        StepInput::FailForGood => "fail",
        StepInput::Compensate => "compensate",
        StepInput::Compensated => "finish compensating",
    }
}

/// An event and its steps, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saga {
    pub status: EventStatus,
    pub steps: Vec<StepState>,
    pub changes: Vec<Change>,
}

impl Saga {
    pub fn new(status: EventStatus, steps: Vec<StepState>) -> Saga {
        Saga { status, steps, changes: Vec::new() }
    }

    fn move_event(&mut self, input: EventInput) -> Result<(), CteError> {
        let to = event_transition(self.status, input)?;
        self.changes.push(Change::Event { from: self.status, to });
        self.status = to;
        Ok(())
    }

    fn move_step(&mut self, index: usize, input: StepInput) -> Result<(), CteError> {
        let from = self.steps[index].status;
        let to = step_transition(from, input)?;
        if to != from {
            self.changes.push(Change::Step { index, from, to });
        }
        self.steps[index].status = to;
        Ok(())
    }

    /// `cte_start_event`: created → running.
    pub fn start(&mut self) -> Result<(), CteError> {
        self.move_event(EventInput::Start)
    }

    /// Waiting → running, before a due retry or an external report is handled.
    pub fn resume(&mut self) -> Result<(), CteError> {
        self.move_event(EventInput::Resume)
    }

    /// The next thing to do. Running: execute the first unfinished step, wait, or complete.
    /// Compensating: compensate the newest completed step, wait on one, or finish.
    pub fn next_action(&mut self, now_ms: i64) -> Result<Action, CteError> {
        match self.status {
            EventStatus::Running => self.next_forward(now_ms),
            EventStatus::Compensating => self.next_backward(),
            EventStatus::Waiting => Ok(Action::Wait),
            EventStatus::Created
            | EventStatus::Completed
            | EventStatus::Compensated
            | EventStatus::Failed => Ok(Action::Finished),
        }
    }

    fn next_forward(&mut self, now_ms: i64) -> Result<Action, CteError> {
        let next = self.steps.iter().position(|step| step.status != StepStatus::Completed);
        let Some(index) = next else {
            self.move_event(EventInput::StepsCompleted)?;
            return Ok(Action::Finished);
        };
        let step = &self.steps[index];
        assert!(
            matches!(step.status, StepStatus::Pending | StepStatus::Waiting),
            "a running event's first unfinished step is pending or waiting, not {}",
            step.status
        );
        let due = step.next_attempt_at_ms.is_some_and(|at| at <= now_ms);
        if step.status == StepStatus::Pending || due {
            self.move_step(index, StepInput::Execute)?;
            let step = &mut self.steps[index];
            step.attempts += 1;
            step.next_attempt_at_ms = None;
            assert!(step.attempts <= step.attempts_max);
            return Ok(Action::Execute(index));
        }
        self.move_event(EventInput::MustWait)?;
        Ok(Action::Wait)
    }

    fn next_backward(&mut self) -> Result<Action, CteError> {
        if self.steps.iter().any(|step| step.status == StepStatus::Compensating) {
            return Ok(Action::Wait);
        }
        let newest = self.steps.iter().rposition(|step| step.status == StepStatus::Completed);
        let Some(index) = newest else {
            self.move_event(EventInput::CompensationsDone)?;
            return Ok(Action::Finished);
        };
        // Newest first: every later step has not completed (or is compensated already).
        assert!(self.steps[index + 1..].iter().all(|step| step.status != StepStatus::Completed));
        self.move_step(index, StepInput::Compensate)?;
        Ok(Action::Compensate(index))
    }

    /// The step ran (or the outside world reported it done).
    pub fn step_succeeded(&mut self, index: usize) -> Result<(), CteError> {
        self.move_step(index, StepInput::Succeed)
    }

    /// The step now waits on the outside world (an `external` step).
    pub fn step_waiting(&mut self, index: usize) -> Result<(), CteError> {
        self.move_step(index, StepInput::WaitExternal)?;
        self.steps[index].next_attempt_at_ms = None;
        Ok(())
    }

    /// The step failed. A retryable failure with attempts left (of the step's own
    /// `attempts_max`) is scheduled after the policy's backoff;
    /// any other failure is final and the event turns to compensating.
    pub fn step_failed(
        &mut self,
        index: usize,
        retryable: bool,
        now_ms: i64,
        policy: &RetryPolicy,
    ) -> Result<(), CteError> {
        let attempts = self.steps[index].attempts;
        // The step's own attempt limit decides; the policy gives only the backoff.
        if retryable && attempts < self.steps[index].attempts_max {
            self.move_step(index, StepInput::RetryLater)?;
            let backoff_ms = i64::try_from(policy.backoff_ms(attempts.max(1))).unwrap_or(i64::MAX);
            self.steps[index].next_attempt_at_ms = Some(now_ms.saturating_add(backoff_ms));
            return Ok(());
        }
        self.move_step(index, StepInput::FailForGood)?;
        self.move_event(EventInput::StepFailedForGood)
    }

    /// The compensation of a step is done.
    pub fn compensation_succeeded(&mut self, index: usize) -> Result<(), CteError> {
        self.move_step(index, StepInput::Compensated)
    }

    /// A compensation failed: nothing more is undone automatically; an operator must look.
    pub fn compensation_failed(&mut self, index: usize) -> Result<(), CteError> {
        assert_eq!(self.steps[index].status, StepStatus::Compensating);
        self.move_event(EventInput::CompensationFailed)
    }

    /// `cte_cancel_event` or a passed deadline. A created event ends compensated at once; a
    /// waiting one fails its waiting step and compensates what completed.
    pub fn cancel(&mut self) -> Result<(), CteError> {
        if self.status == EventStatus::Waiting {
            let waiting = self.steps.iter().position(|step| step.status == StepStatus::Waiting);
            if let Some(index) = waiting {
                self.move_step(index, StepInput::FailForGood)?;
                self.steps[index].next_attempt_at_ms = None;
            }
        }
        self.move_event(EventInput::Cancel)
    }
}

#[cfg(test)]
mod tests;
