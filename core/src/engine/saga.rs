//! The saga: an event and its ordered steps as a state machine that decides everything and
//! performs nothing (sans-I/O, as quinn-proto's connection state machine).
//!
//! The shell loads an event's state, feeds [`Saga::handle`] one [`Input`] with the time, and
//! performs the [`Effect`]s it returns, in order. Only `Execute` and `Compensate` have outcomes,
//! and each is the last effect of its batch: the shell performs it and feeds the outcome back
//! as the next input. Every status change is appended to `changes`, which the shell records.
//!
//! Rules that live here and nowhere else: steps run in order and are compensated newest first,
//! each compensation at most once; a retry is scheduled with backoff and never runs in the drive
//! that scheduled it; an `external` step waits on the application, and one that is waiting when
//! the event is cancelled or passes its deadline is in doubt (the bank may have paid): it is
//! asked to compensate and the steps before it are compensated only after that is reported; a
//! report on a step that no longer awaits it changes nothing and is recorded as a late report;
//! held funds (withdrawals, exchanges) are captured when the event completes; an event's liens
//! are released when it ends, but stay held while it is `failed`, for an operator.
//!
//! Transitions are two tables, `event_transition` and `step_transition`, listing every allowed
//! (status, input) pair; any other pair is `CteError::TransitionNotAllowed`.

use super::executors::StepKind;
use super::retry::RetryPolicy;
use super::status::{EventStatus, StepStatus};
use crate::error::CteError;
use crate::limits::{EVENT_STEPS_MAX, STEP_ATTEMPTS_MAX};

/// What the machine knows of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepState {
    pub kind: StepKind,
    pub status: StepStatus,
    pub attempts: u32,
    pub attempts_max: u32,
    /// When a scheduled retry is due; `None` for a step waiting on the outside world.
    pub next_attempt_at_ms: Option<i64>,
    /// When the application was asked to compensate this `external` step (it is then
    /// `compensating` until it reports).
    pub compensation_requested_at_ms: Option<i64>,
}

impl StepState {
    /// A step as added to an event: pending, no attempt yet.
    pub fn new(kind: StepKind, attempts_max: u32) -> StepState {
        // The step's checks refuse any other count, and the table's CHECK holds it to the same.
        assert!(attempts_max >= 1, "a step may run at least once");
        assert!(attempts_max <= STEP_ATTEMPTS_MAX, "a step runs at most STEP_ATTEMPTS_MAX times");
        StepState {
            kind,
            status: StepStatus::Pending,
            attempts: 0,
            attempts_max,
            next_attempt_at_ms: None,
            compensation_requested_at_ms: None,
        }
    }

    /// Whether this step waits for the application to report its own outcome.
    pub fn awaits_report(&self) -> bool {
        self.kind == StepKind::External
            && self.status == StepStatus::Waiting
            && self.next_attempt_at_ms.is_none()
    }

    /// Whether this step waits for the application to report its compensation.
    pub fn awaits_compensation_report(&self) -> bool {
        self.kind == StepKind::External && self.status == StepStatus::Compensating
    }
}

/// A status change, in the order it happened: the shell records each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Event {
        from: EventStatus,
        to: EventStatus,
    },
    Step {
        index: usize,
        from: StepStatus,
        to: StepStatus,
    },
    /// The application reported on a step that no longer awaited that report; nothing changed.
    LateReport {
        index: usize,
        report: LateReport,
    },
}

/// Which report arrived late.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateReport {
    StepCompleted,
    StepFailed,
    CompensationCompleted,
    CompensationFailed,
}

impl LateReport {
    pub fn as_str(self) -> &'static str {
        match self {
            LateReport::StepCompleted => "transaction completed",
            LateReport::StepFailed => "transaction failed",
            LateReport::CompensationCompleted => "compensation completed",
            LateReport::CompensationFailed => "compensation failed",
        }
    }
}

/// What happened, fed to [`Saga::handle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `cte_start_event`, or the worker starting a scheduled event.
    Start,
    /// `cte_cancel_event`.
    Cancel,
    /// The worker: the event's deadline (or, never started, its start-by time) may have passed.
    Deadline,
    /// The worker: a scheduled retry may be due.
    RetryDue,
    /// The worker: an `external` step's compensation may have been awaited too long.
    CompensationOverdue,
    /// The outcome of an `Execute` effect.
    Executed { index: usize, outcome: StepOutcome },
    /// The outcome of a `Compensate` effect.
    CompensationRan { index: usize, outcome: CompensationOutcome },
    /// `cte_complete_transaction` / `cte_fail_transaction` on an `external` step.
    StepReported { index: usize, report: StepReport },
    /// `cte_complete_compensation` / `cte_fail_compensation` on an `external` step.
    CompensationReported { index: usize, report: CompensationOutcome },
    /// `cte_retry_compensation`: an operator runs the refused compensations again.
    RetryCompensation,
    /// `cte_resolve_event`: an operator settled a failed event by hand.
    Resolve,
}

/// How a step that ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    Done,
    /// It failed; `retryable` from its SQLSTATE, or from the application's word.
    Failed {
        retryable: bool,
    },
}

/// How a step reported by the application ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepReport {
    Completed,
    Failed { retryable: bool },
}

/// How a compensation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompensationOutcome {
    Done,
    Failed,
}

/// What decided an event's fate, for the shell to write as its error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCause {
    /// Step `index` failed for good.
    StepFailed(usize),
    /// The compensation of step `index` failed.
    CompensationFailed(usize),
    /// Cancelled; `step` is the one it was waiting on, if any.
    Cancelled { step: Option<usize> },
    /// The deadline passed; `step` is the one it was waiting on, if any.
    DeadlinePassed { step: Option<usize> },
    /// The compensation of step `index` was not reported within the compensation timeout.
    CompensationOverdue(usize),
}

/// What the shell must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The event starts: its pending liens take their funds (refused if they cannot).
    ActivatePendingLiens,
    /// Run step `index` (its attempt is counted); feed back `Input::Executed`.
    Execute(usize),
    /// Compensate step `index`; feed back `Input::CompensationRan`.
    Compensate(usize),
    /// The event completed: make the postings step `index` held funds for.
    CaptureHeld(usize),
    /// The event ended: release every lien it still holds.
    ReleaseLiens,
    /// Write what decided the event's fate.
    RecordError(ErrorCause),
}

/// The numbers a saga needs from the settings, passed in by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SagaConfig {
    pub retry: RetryPolicy,
    /// How long an `external` step's compensation may go unreported before the event fails,
    /// and how long after an event's deadline a compensation that failed for a "try again"
    /// reason is still refused as such rather than counted as failed.
    pub compensation_timeout_ms: i64,
}

impl SagaConfig {
    /// Whether a compensation that failed for a "try again" reason (a deadlock, a serialization
    /// failure, a lock not available, a statement cancelled) may still be refused as such, so
    /// the caller or the worker's next pass tries again: until `compensation_timeout_ms` after
    /// the event's deadline. One that keeps failing so (a custom compensation that always
    /// raises 40001) then counts as failed, leaving the event `failed` for an operator.
    pub fn compensation_may_try_again(&self, deadline_ms: Option<i64>, now_ms: i64) -> bool {
        assert!(self.compensation_timeout_ms > 0, "the setting's minimum is positive");
        let Some(deadline) = deadline_ms else {
            // Every started event has a deadline (its start sets one); none: no window.
            return false;
        };
        let window_ends = deadline.saturating_add(self.compensation_timeout_ms);
        assert!(window_ends >= deadline);
        now_ms < window_ends
    }
}

/// What is asked of an event that leaves its status as it is, each allowed only while the
/// event is `created`: adding a step, booking its start for later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAsk {
    AddStep,
    Schedule,
}

/// Whether an event in `status` allows `ask` (refused as `transition_not_allowed`).
pub fn event_allows(status: EventStatus, ask: EventAsk) -> Result<(), CteError> {
    let input = match ask {
        EventAsk::AddStep => EventInput::AddStep,
        EventAsk::Schedule => EventInput::Schedule,
    };
    let to = event_transition(status, input)?;
    assert_eq!(to, status, "adding a step or a start time leaves the event where it is");
    assert_eq!(status, EventStatus::Created);
    Ok(())
}

/// When an event asked to start at `not_before` (milliseconds; `None`: now) starts: now, when
/// that time has come, or later (scheduled), at most `SCHEDULE_AHEAD_DAYS_MAX` days ahead (its
/// start-by deadline counts from then and must stay a time). `asked` names the time asked for
/// in a refusal, never a day count that changes every day.
pub fn start_when(
    not_before_ms: Option<i64>,
    now_ms: i64,
    asked: &dyn Fn() -> String,
) -> Result<StartWhen, CteError> {
    const DAY_MS: i64 = 86_400_000;
    let Some(at) = not_before_ms.filter(|at| *at > now_ms) else {
        return Ok(StartWhen::Now);
    };
    // Compared in milliseconds: counted in whole days, 3653 days and 23 hours passed (0.3.0
    // before, found by a red team).
    let ahead_ms = at.saturating_sub(now_ms);
    if ahead_ms > crate::limits::SCHEDULE_AHEAD_DAYS_MAX.saturating_mul(DAY_MS) {
        return Err(CteError::ArgumentOutOfRange {
            argument: "not_before",
            value: asked(),
            bounds: format!("at most {} days from now", crate::limits::SCHEDULE_AHEAD_DAYS_MAX),
        });
    }
    assert!(at > now_ms && ahead_ms > 0);
    Ok(StartWhen::Later)
}

/// When an event starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartWhen {
    Now,
    /// Scheduled: it stays `created` and the worker starts it at the time asked.
    Later,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventInput {
    Start,
    Cancel,
    StepsCompleted,
    MustWait,
    StepFailedForGood,
    Resume,
    CompensationsDone,
    CompensationFailed,
    RetryCompensation,
    Resolve,
    AddStep,
    Schedule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepInput {
    Execute,
    Succeed,
    Wait,
    FailForGood,
    InDoubt,
    Compensate,
    Compensated,
}

fn event_transition(from: EventStatus, input: EventInput) -> Result<EventStatus, CteError> {
    use EventInput as I;
    use EventStatus as S;
    let to = match (from, input) {
        (S::Created, I::Start) => Ok(S::Running),
        (S::Created, I::Cancel) => Ok(S::Compensated),
        (S::Running, I::StepsCompleted) => Ok(S::Completed),
        (S::Running, I::MustWait) => Ok(S::Waiting),
        (S::Running, I::StepFailedForGood) => Ok(S::Compensating),
        (S::Waiting, I::Resume) => Ok(S::Running),
        (S::Waiting, I::Cancel) => Ok(S::Compensating),
        (S::Compensating, I::CompensationsDone) => Ok(S::Compensated),
        (S::Compensating, I::CompensationFailed) => Ok(S::Failed),
        (S::Failed, I::RetryCompensation) => Ok(S::Compensating),
        (S::Failed, I::Resolve) => Ok(S::Resolved),
        (S::Created, I::AddStep) => Ok(S::Created),
        (S::Created, I::Schedule) => Ok(S::Created),
        (from, input) => Err(CteError::TransitionNotAllowed {
            what: "event",
            from: from.as_str(),
            input: event_input_name(input),
        }),
    };
    if let Ok(to) = to {
        // The table's shape: an ended event has no way out, and none leads back to created
        // from elsewhere (the start is counted once, and with it the pending liens' activation).
        assert!(!from.is_final(), "a final event never changes again");
        assert!(to != S::Created || from == S::Created, "no event goes back to created");
    }
    to
}

fn event_input_name(input: EventInput) -> &'static str {
    match input {
        EventInput::Start => "start",
        EventInput::Cancel => "cancel",
        EventInput::StepsCompleted => "complete",
        EventInput::MustWait => "wait",
        EventInput::StepFailedForGood => "fail a step",
        EventInput::Resume => "resume",
        EventInput::CompensationsDone => "finish compensating",
        EventInput::CompensationFailed => "fail compensating",
        EventInput::RetryCompensation => "retry the compensation of",
        EventInput::Resolve => "resolve",
        EventInput::AddStep => "add a transaction to",
        EventInput::Schedule => "schedule",
    }
}

fn step_transition(from: StepStatus, input: StepInput) -> Result<StepStatus, CteError> {
    use StepInput as I;
    use StepStatus as S;
    let to = match (from, input) {
        (S::Pending, I::Execute) => Ok(S::Running),
        (S::Waiting, I::Execute) => Ok(S::Running),
        (S::Running, I::Succeed) => Ok(S::Completed),
        (S::Running, I::Wait) => Ok(S::Waiting),
        (S::Running, I::FailForGood) => Ok(S::Failed),
        (S::Waiting, I::Succeed) => Ok(S::Completed),
        (S::Waiting, I::Wait) => Ok(S::Waiting),
        (S::Waiting, I::FailForGood) => Ok(S::Failed),
        (S::Waiting, I::InDoubt) => Ok(S::Compensating),
        (S::Completed, I::Compensate) => Ok(S::Compensating),
        (S::Compensating, I::Compensated) => Ok(S::Compensated),
        (from, input) => Err(CteError::TransitionNotAllowed {
            what: "transaction",
            from: from.as_str(),
            input: step_input_name(input),
        }),
    };
    if let Ok(to) = to {
        // An ended step never moves: a failure is final and a compensation runs once. Nothing
        // goes back to pending, which `assert_steps_in_order` reads as "never ran".
        assert_ne!(from, S::Failed, "a failed step stays failed");
        assert_ne!(from, S::Compensated, "a step is compensated at most once");
        assert_ne!(to, S::Pending, "no step goes back to pending");
    }
    to
}

fn step_input_name(input: StepInput) -> &'static str {
    match input {
        StepInput::Execute => "execute",
        StepInput::Succeed => "complete",
        StepInput::Wait => "wait",
        StepInput::FailForGood => "fail",
        StepInput::InDoubt => "ask to compensate",
        StepInput::Compensate => "compensate",
        StepInput::Compensated => "finish compensating",
    }
}

/// An event and its steps, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saga {
    pub status: EventStatus,
    pub steps: Vec<StepState>,
    /// When the event times out: for a started event its deadline; for one not started, the
    /// time by which it must start (its timeout after creation, or after its `not_before`).
    pub deadline_ms: Option<i64>,
    /// The event's timeout: a start sets the deadline this far ahead.
    pub timeout_ms: i64,
    pub changes: Vec<Change>,
    config: SagaConfig,
}

impl Saga {
    pub fn new(
        status: EventStatus,
        steps: Vec<StepState>,
        deadline_ms: Option<i64>,
        timeout_ms: i64,
        config: SagaConfig,
    ) -> Saga {
        assert!(timeout_ms > 0, "an event's timeout is positive");
        // Adding a step refuses the one past the limit (driver/build.rs).
        assert!(steps.len() <= EVENT_STEPS_MAX, "an event has at most EVENT_STEPS_MAX steps");
        Saga { status, steps, deadline_ms, timeout_ms, changes: Vec::new(), config }
    }

    /// Feeds one input; returns the effects to perform, in order. An `Execute` or `Compensate`
    /// is always the last one: its outcome is the next input.
    pub fn handle(&mut self, input: Input, now_ms: i64) -> Result<Vec<Effect>, CteError> {
        let changes_before = self.changes.len();
        let mut effects = Vec::new();
        match input {
            Input::Start => {
                self.move_event(EventInput::Start)?;
                self.deadline_ms = Some(now_ms.saturating_add(self.timeout_ms));
                // The timeout is positive (`Saga::new`): a started event's deadline is ahead.
                assert!(self.deadline_ms > Some(now_ms), "a deadline lies ahead of its start");
                effects.push(Effect::ActivatePendingLiens);
                self.advance(now_ms, &mut effects);
            }
            Input::Cancel => self.cancel(now_ms, false, &mut effects)?,
            Input::Deadline => {
                if self.deadline_ms.is_some_and(|deadline| deadline <= now_ms)
                    && matches!(self.status, EventStatus::Created | EventStatus::Waiting)
                {
                    self.cancel(now_ms, true, &mut effects)?;
                }
            }
            Input::RetryDue => self.retry_due(now_ms, &mut effects)?,
            Input::CompensationOverdue => self.compensation_overdue(now_ms, &mut effects),
            Input::Executed { index, outcome } => {
                self.executed(index, outcome, now_ms, &mut effects)?;
            }
            Input::CompensationRan { index, outcome } => {
                self.compensation_ended(index, outcome, now_ms, &mut effects)?;
            }
            Input::StepReported { index, report } => {
                self.step_reported(index, report, now_ms, &mut effects)?;
            }
            Input::CompensationReported { index, report } => {
                self.compensation_reported(index, report, now_ms, &mut effects)?;
            }
            Input::RetryCompensation => {
                self.move_event(EventInput::RetryCompensation)?;
                for step in self.steps.iter_mut().filter(|step| step.awaits_compensation_report()) {
                    step.compensation_requested_at_ms = Some(now_ms);
                }
                self.advance(now_ms, &mut effects);
            }
            Input::Resolve => {
                self.move_event(EventInput::Resolve)?;
                effects.push(Effect::ReleaseLiens);
            }
        }
        // Every effect follows a change the shell records: nothing is done unannounced.
        assert!(
            effects.is_empty() || self.changes.len() > changes_before,
            "effects come of changes"
        );
        self.assert_at_most_one_blocking(&effects);
        self.assert_steps_in_order();
        self.assert_steps_fit_event();
        self.assert_effects_fit_state(&effects);
        self.assert_effects_fit_changes(&effects, &self.changes[changes_before..]);
        Ok(effects)
    }

    fn assert_at_most_one_blocking(&self, effects: &[Effect]) {
        let blocking =
            |effect: &Effect| matches!(effect, Effect::Execute(_) | Effect::Compensate(_));
        let count = effects.iter().filter(|effect| blocking(effect)).count();
        assert!(count <= 1, "one step runs at a time");
        assert!(count == 0 || effects.last().is_some_and(blocking), "a step runs last");
    }

    /// Steps run in order and are undone newest first, so their statuses, read from the first
    /// step, only go one way: completed, the one being compensated, compensated, the one that
    /// failed, the one in flight, pending. A status out of that order is a step run out of turn
    /// or compensated before a newer one. The table's CHECKs hold the per-step rules too.
    fn assert_steps_in_order(&self) {
        let rank = |status: StepStatus| match status {
            StepStatus::Completed => 0,
            StepStatus::Compensating => 1,
            StepStatus::Compensated => 2,
            StepStatus::Failed => 3,
            StepStatus::Running | StepStatus::Waiting => 4,
            StepStatus::Pending => 5,
        };
        let in_order =
            self.steps.windows(2).all(|pair| rank(pair[0].status) <= rank(pair[1].status));
        assert!(in_order, "steps run in order and are compensated newest first: {:?}", self.steps);
        for step in &self.steps {
            assert!(step.attempts <= step.attempts_max, "a step runs at most attempts_max times");
            // Only `execute` moves a step out of pending, and it counts the attempt.
            assert_eq!(
                step.attempts == 0,
                step.status == StepStatus::Pending,
                "ran unless pending"
            );
            let waiting = step.status == StepStatus::Waiting;
            assert!(step.next_attempt_at_ms.is_none() || waiting, "a retry is of a waiting step");
            assert!(
                !waiting || step.next_attempt_at_ms.is_some() || step.kind == StepKind::External,
                "a waiting step waits on a retry or on the application"
            );
            let compensating = step.status == StepStatus::Compensating;
            assert!(
                step.compensation_requested_at_ms.is_none() || compensating,
                "only a compensating step is asked to compensate"
            );
            assert!(
                !step.awaits_compensation_report() || step.compensation_requested_at_ms.is_some(),
                "an external step compensating was asked to, at a known time"
            );
        }
    }

    /// What each event status says of its steps: one step in flight while running or waiting,
    /// none once compensation began, and one being compensated (or refused) until it ends.
    fn assert_steps_fit_event(&self) {
        let count = |status: StepStatus| self.steps.iter().filter(|s| s.status == status).count();
        let in_flight = count(StepStatus::Running) + count(StepStatus::Waiting);
        assert!(in_flight <= 1, "one step runs at a time");
        assert!(count(StepStatus::Failed) <= 1, "one failure decides an event's fate");
        match self.status {
            EventStatus::Created => {
                assert_eq!(count(StepStatus::Pending), self.steps.len(), "nothing ran yet");
            }
            EventStatus::Running => assert_eq!(count(StepStatus::Running), 1, "one step runs"),
            EventStatus::Waiting => assert_eq!(count(StepStatus::Waiting), 1, "one step waits"),
            EventStatus::Completed => {
                assert_eq!(count(StepStatus::Completed), self.steps.len(), "every step completed");
            }
            EventStatus::Compensating | EventStatus::Failed | EventStatus::Resolved => {
                assert_eq!(in_flight, 0, "nothing runs once compensation began");
                assert_eq!(count(StepStatus::Compensating), 1, "one step is being compensated");
            }
            EventStatus::Compensated => {
                assert_eq!(in_flight, 0, "nothing runs once compensation began");
                assert_eq!(count(StepStatus::Completed), 0, "everything that completed is undone");
                assert_eq!(count(StepStatus::Compensating), 0, "every compensation ended");
            }
        }
    }

    /// Each effect fits the state it leaves: a step run is running, a compensation compensating,
    /// neither of an `external` step (the application runs those); captures, releases and
    /// errors only where the event ended or turned back.
    fn assert_effects_fit_state(&self, effects: &[Effect]) {
        for effect in effects {
            match *effect {
                Effect::ActivatePendingLiens => {
                    assert_eq!(effects[0], *effect, "liens are activated before anything runs");
                }
                Effect::Execute(index) => {
                    assert_eq!(self.steps[index].status, StepStatus::Running, "a run step runs");
                    assert_ne!(self.steps[index].kind, StepKind::External, "the shell runs it");
                }
                Effect::Compensate(index) => {
                    assert_eq!(self.steps[index].status, StepStatus::Compensating);
                    assert_ne!(self.steps[index].kind, StepKind::External, "the shell undoes it");
                }
                Effect::CaptureHeld(index) => {
                    assert!(self.steps[index].kind.holds_funds(), "only held funds are captured");
                    assert_eq!(self.status, EventStatus::Completed, "captured when it completes");
                }
                Effect::ReleaseLiens => assert!(self.status.is_final(), "liens outlive no event"),
                Effect::RecordError(_) => assert!(
                    matches!(
                        self.status,
                        EventStatus::Compensating | EventStatus::Compensated | EventStatus::Failed
                    ),
                    "an error is recorded only when the event turns back"
                ),
            }
        }
    }

    /// The effects pair with this input's `changes`: a start activates the event's liens, an
    /// end releases them, a completion captures every held step once, and one error at most
    /// decides the event's fate.
    fn assert_effects_fit_changes(&self, effects: &[Effect], changes: &[Change]) {
        let reached = |wanted: fn(EventStatus) -> bool| {
            changes.iter().any(|change| matches!(change, Change::Event { to, .. } if wanted(*to)))
        };
        let started = changes.iter().any(|change| {
            matches!(change, Change::Event { from: EventStatus::Created, to: EventStatus::Running })
        });
        let activated = effects.contains(&Effect::ActivatePendingLiens);
        assert_eq!(activated, started, "a start, and only a start, activates pending liens");
        let released = effects.contains(&Effect::ReleaseLiens);
        assert_eq!(released, reached(EventStatus::is_final), "an event ending releases its liens");
        let captures = effects.iter().filter(|e| matches!(e, Effect::CaptureHeld(_))).count();
        let held = self.steps.iter().filter(|step| step.kind.holds_funds()).count();
        let completed = reached(|to| to == EventStatus::Completed);
        assert_eq!(captures, if completed { held } else { 0 }, "each held step captured once");
        let errors = effects.iter().filter(|e| matches!(e, Effect::RecordError(_))).count();
        assert!(errors <= 1, "one cause decides an event's fate");
    }

    fn move_event(&mut self, input: EventInput) -> Result<(), CteError> {
        let to = event_transition(self.status, input)?;
        assert_ne!(to, self.status, "an event's transition changes its status");
        self.changes.push(Change::Event { from: self.status, to });
        self.status = to;
        Ok(())
    }

    fn move_step(&mut self, index: usize, input: StepInput) -> Result<(), CteError> {
        let from = self.steps[index].status;
        if matches!(input, StepInput::Compensate | StepInput::Compensated) {
            assert_eq!(self.status, EventStatus::Compensating, "a step is undone as its event is");
        }
        let to = step_transition(from, input)?;
        if to != from {
            self.changes.push(Change::Step { index, from, to });
        }
        self.steps[index].status = to;
        Ok(())
    }

    /// Moves a state that may go on as far as it can without an outcome from the shell.
    fn advance(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        let advanced = match self.status {
            EventStatus::Running => self.advance_forward(effects),
            EventStatus::Compensating => self.advance_backward(now_ms, effects),
            EventStatus::Created
            | EventStatus::Waiting
            | EventStatus::Completed
            | EventStatus::Compensated
            | EventStatus::Failed
            | EventStatus::Resolved => Ok(()),
        };
        assert!(advanced.is_ok(), "advance only takes allowed transitions: {advanced:?}");
    }

    /// Running: run the first unfinished step, wait on it, or complete.
    fn advance_forward(&mut self, effects: &mut Vec<Effect>) -> Result<(), CteError> {
        assert_eq!(self.status, EventStatus::Running, "only a running event goes forward");
        let next = self.steps.iter().position(|step| step.status != StepStatus::Completed);
        let Some(index) = next else {
            self.move_event(EventInput::StepsCompleted)?;
            let held = (0..self.steps.len()).filter(|index| self.steps[*index].kind.holds_funds());
            effects.extend(held.map(Effect::CaptureHeld));
            effects.push(Effect::ReleaseLiens);
            return Ok(());
        };
        let moved = match self.steps[index].status {
            StepStatus::Pending => self.execute(index, effects),
            // A retry scheduled or a report awaited: never run again in the same drive.
            StepStatus::Waiting => self.move_event(EventInput::MustWait),
            status @ (StepStatus::Running
            | StepStatus::Completed
            | StepStatus::Failed
            | StepStatus::Compensating
            | StepStatus::Compensated) => {
                panic!(
                    "a running event's first unfinished step is pending or waiting, not {status}"
                )
            }
        };
        // Not complete: it runs that step now, or waits on it.
        assert!(
            matches!(self.status, EventStatus::Running | EventStatus::Waiting),
            "an unfinished event runs a step or waits on one"
        );
        moved
    }

    /// Counts an attempt of step `index` and runs it; an `external` step waits on the
    /// application at once (its changes announce it).
    fn execute(&mut self, index: usize, effects: &mut Vec<Effect>) -> Result<(), CteError> {
        assert_eq!(self.status, EventStatus::Running, "a step runs only while its event runs");
        self.move_step(index, StepInput::Execute)?;
        let step = &mut self.steps[index];
        step.attempts += 1;
        step.next_attempt_at_ms = None;
        assert!(step.attempts <= step.attempts_max, "a step runs at most attempts_max times");
        if step.kind == StepKind::External {
            self.move_step(index, StepInput::Wait)?;
            return self.move_event(EventInput::MustWait);
        }
        effects.push(Effect::Execute(index));
        Ok(())
    }

    /// Compensating: wait on a compensation the application must report, run a refused one
    /// again (after `RetryCompensation`), compensate the newest completed step, or finish.
    fn advance_backward(&mut self, now_ms: i64, effects: &mut Vec<Effect>) -> Result<(), CteError> {
        assert_eq!(self.status, EventStatus::Compensating, "only a compensating event goes back");
        if let Some(index) =
            self.steps.iter().position(|step| step.status == StepStatus::Compensating)
        {
            if self.steps[index].kind != StepKind::External {
                effects.push(Effect::Compensate(index));
            }
            return Ok(());
        }
        let newest = self.steps.iter().rposition(|step| step.status == StepStatus::Completed);
        let Some(index) = newest else {
            self.move_event(EventInput::CompensationsDone)?;
            effects.push(Effect::ReleaseLiens);
            return Ok(());
        };
        // Newest first: no later step is left completed.
        assert!(self.steps[index + 1..].iter().all(|step| step.status != StepStatus::Completed));
        self.move_step(index, StepInput::Compensate)?;
        if self.steps[index].kind == StepKind::External {
            self.steps[index].compensation_requested_at_ms = Some(now_ms);
            return Ok(());
        }
        effects.push(Effect::Compensate(index));
        Ok(())
    }

    /// Cancel (`by_deadline` false) or a passed deadline: a created event ends compensated at
    /// once; a waiting one fails the step it waits on (a scheduled retry) or, when that step
    /// waits on the outside world, asks it to compensate; then what completed is compensated.
    fn cancel(
        &mut self,
        now_ms: i64,
        by_deadline: bool,
        effects: &mut Vec<Effect>,
    ) -> Result<(), CteError> {
        let waiting = self.steps.iter().position(|step| step.status == StepStatus::Waiting);
        let waiting = waiting.filter(|_| self.status == EventStatus::Waiting);
        self.move_event(EventInput::Cancel)?;
        if let Some(index) = waiting {
            if self.steps[index].awaits_report() {
                self.move_step(index, StepInput::InDoubt)?;
                self.steps[index].compensation_requested_at_ms = Some(now_ms);
            } else {
                self.move_step(index, StepInput::FailForGood)?;
                self.steps[index].next_attempt_at_ms = None;
            }
        }
        effects.push(Effect::RecordError(match by_deadline {
            true => ErrorCause::DeadlinePassed { step: waiting },
            false => ErrorCause::Cancelled { step: waiting },
        }));
        if self.status == EventStatus::Compensated {
            effects.push(Effect::ReleaseLiens);
        }
        self.advance(now_ms, effects);
        assert!(
            matches!(self.status, EventStatus::Compensating | EventStatus::Compensated),
            "a cancelled event turns back"
        );
        // The step it waited on failed or was asked to compensate: nothing waits any more.
        assert!(self.steps.iter().all(|step| step.status != StepStatus::Waiting));
        Ok(())
    }

    /// A waiting event's scheduled retry, if it is due; nothing otherwise.
    fn retry_due(&mut self, now_ms: i64, effects: &mut Vec<Effect>) -> Result<(), CteError> {
        if self.status != EventStatus::Waiting {
            return Ok(());
        }
        let index = self.steps.iter().position(|step| step.status == StepStatus::Waiting);
        let Some(index) = index else {
            return Ok(());
        };
        if self.steps[index].next_attempt_at_ms.is_none_or(|at| at > now_ms) {
            return Ok(());
        }
        self.move_event(EventInput::Resume)?;
        self.execute(index, effects)?;
        // A scheduled retry follows a failed attempt: this one is the second at least.
        assert!(self.steps[index].attempts >= 2, "a retry is a later attempt");
        Ok(())
    }

    /// A compensating event whose `external` step's compensation went unreported too long
    /// fails, its liens still held, for an operator; nothing otherwise.
    fn compensation_overdue(&mut self, now_ms: i64, effects: &mut Vec<Effect>) {
        if self.status != EventStatus::Compensating {
            return;
        }
        let timeout_ms = self.config.compensation_timeout_ms;
        let overdue = self.steps.iter().position(|step| {
            step.awaits_compensation_report()
                && step
                    .compensation_requested_at_ms
                    .is_some_and(|asked| asked.saturating_add(timeout_ms) <= now_ms)
        });
        if let Some(index) = overdue {
            let failed = self.move_event(EventInput::CompensationFailed);
            assert!(failed.is_ok(), "a compensating event may fail");
            effects.push(Effect::RecordError(ErrorCause::CompensationOverdue(index)));
        }
    }

    fn executed(
        &mut self,
        index: usize,
        outcome: StepOutcome,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> Result<(), CteError> {
        assert_eq!(self.steps[index].status, StepStatus::Running, "only a running step ends");
        match outcome {
            StepOutcome::Done => {
                self.move_step(index, StepInput::Succeed)?;
                self.advance(now_ms, effects);
            }
            StepOutcome::Failed { retryable } => self.failed(index, retryable, now_ms, effects)?,
        }
        // The outcome ended the run it reports (the next run, if any, is of a later step).
        assert_ne!(self.steps[index].status, StepStatus::Running, "an outcome ends its run");
        Ok(())
    }

    /// Step `index` failed: a retryable failure with attempts left (of the step's own
    /// `attempts_max`) is scheduled after the policy's backoff; any other failure is final and
    /// the event turns to compensating.
    fn failed(
        &mut self,
        index: usize,
        retryable: bool,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> Result<(), CteError> {
        let step = &self.steps[index];
        if retryable && step.attempts < step.attempts_max {
            self.move_step(index, StepInput::Wait)?;
            let backoff_ms = self.config.retry.backoff_ms(self.steps[index].attempts.max(1));
            let backoff_ms = i64::try_from(backoff_ms).unwrap_or(i64::MAX);
            self.steps[index].next_attempt_at_ms = Some(now_ms.saturating_add(backoff_ms));
            let next_attempt_at_ms = self.steps[index].next_attempt_at_ms;
            assert!(next_attempt_at_ms >= Some(now_ms), "a retry is never due before its failure");
        } else {
            self.move_step(index, StepInput::FailForGood)?;
            self.steps[index].next_attempt_at_ms = None;
            self.move_event(EventInput::StepFailedForGood)?;
            effects.push(Effect::RecordError(ErrorCause::StepFailed(index)));
        }
        self.advance(now_ms, effects);
        // A retry waits for its time and a final failure turns back: neither runs on in the
        // drive that saw the failure.
        assert_ne!(self.status, EventStatus::Running, "a failure never runs on at once");
        Ok(())
    }

    fn compensation_ended(
        &mut self,
        index: usize,
        outcome: CompensationOutcome,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> Result<(), CteError> {
        // Fed back at once after a `Compensate` effect, or a report the caller checked.
        assert_eq!(self.steps[index].status, StepStatus::Compensating, "it was compensating");
        match outcome {
            CompensationOutcome::Done => {
                self.move_step(index, StepInput::Compensated)?;
                self.steps[index].compensation_requested_at_ms = None;
                self.advance(now_ms, effects);
            }
            CompensationOutcome::Failed => {
                // Nothing more is undone automatically: an operator retries or resolves it.
                self.move_event(EventInput::CompensationFailed)?;
                effects.push(Effect::RecordError(ErrorCause::CompensationFailed(index)));
            }
        }
        // Undone, or left compensating for an operator with its event failed.
        assert!(
            self.steps[index].status == StepStatus::Compensated
                || self.status == EventStatus::Failed,
            "a compensation's outcome settles its step or fails its event"
        );
        Ok(())
    }

    fn refuse_report(&self, index: usize) -> CteError {
        // Refused only when no report was ever awaited; one that came too late is recorded as
        // late instead (a bank may have paid: the application must hear it was taken).
        let step = &self.steps[index];
        assert!(step.kind != StepKind::External || step.status == StepStatus::Pending);
        CteError::TransitionNotAllowed {
            what: "transaction",
            from: self.steps[index].status.as_str(),
            input: "report on",
        }
    }

    /// The application reports an `external` step's outcome. Only a step that awaits it moves;
    /// a report on one that no longer does (it was asked to compensate, or was retried, or
    /// already ended) is a late report: recorded, nothing else. Reports on a step that is not
    /// `external`, or has not been asked yet, are refused.
    fn step_reported(
        &mut self,
        index: usize,
        report: StepReport,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> Result<(), CteError> {
        let step = &self.steps[index];
        if step.kind != StepKind::External || step.status == StepStatus::Pending {
            return Err(self.refuse_report(index));
        }
        if !(step.awaits_report() && self.status == EventStatus::Waiting) {
            let late = match report {
                StepReport::Completed => LateReport::StepCompleted,
                StepReport::Failed { .. } => LateReport::StepFailed,
            };
            self.changes.push(Change::LateReport { index, report: late });
            return Ok(());
        }
        self.move_event(EventInput::Resume)?;
        match report {
            StepReport::Completed => {
                self.move_step(index, StepInput::Succeed)?;
                self.advance(now_ms, effects);
            }
            StepReport::Failed { retryable } => self.failed(index, retryable, now_ms, effects)?,
        }
        // A report is taken once: the same report again is a late one.
        assert!(!self.steps[index].awaits_report(), "a report ends the wait on it");
        Ok(())
    }

    /// The application reports the compensation of an `external` step it was asked to
    /// compensate; a report it was not asked for is a late report.
    fn compensation_reported(
        &mut self,
        index: usize,
        report: CompensationOutcome,
        now_ms: i64,
        effects: &mut Vec<Effect>,
    ) -> Result<(), CteError> {
        let step = &self.steps[index];
        if step.kind != StepKind::External || step.status == StepStatus::Pending {
            return Err(self.refuse_report(index));
        }
        if !(step.awaits_compensation_report() && self.status == EventStatus::Compensating) {
            let late = match report {
                CompensationOutcome::Done => LateReport::CompensationCompleted,
                CompensationOutcome::Failed => LateReport::CompensationFailed,
            };
            self.changes.push(Change::LateReport { index, report: late });
            return Ok(());
        }
        self.compensation_ended(index, report, now_ms, effects)
    }
}

#[cfg(test)]
mod tests;
