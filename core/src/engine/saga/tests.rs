//! The saga, walked transition by transition, then driven at random by a fake shell that keeps
//! a ledger of what each step posted and holds, on a clock moved by hand.

use super::*;

const CONFIG: SagaConfig = SagaConfig {
    retry: RetryPolicy { attempts_max: 3, backoff_ms_base: 100, backoff_ms_max: 1_000 },
    compensation_timeout_ms: 60_000,
};
const TIMEOUT_MS: i64 = 300_000;

fn saga_of(kinds: &[StepKind]) -> Saga {
    let steps = kinds.iter().map(|kind| StepState::new(*kind, 3)).collect();
    Saga::new(EventStatus::Created, steps, Some(TIMEOUT_MS), TIMEOUT_MS, CONFIG)
}

const P: StepKind = StepKind::Posting;
const H: StepKind = StepKind::Held;
const X: StepKind = StepKind::External;
const C: StepKind = StepKind::Custom;

fn statuses(saga: &Saga) -> Vec<StepStatus> {
    saga.steps.iter().map(|step| step.status).collect()
}

fn done(index: usize) -> Input {
    Input::Executed { index, outcome: StepOutcome::Done }
}

fn failed(index: usize, retryable: bool) -> Input {
    Input::Executed { index, outcome: StepOutcome::Failed { retryable } }
}

fn compensated(index: usize) -> Input {
    Input::CompensationRan { index, outcome: CompensationOutcome::Done }
}

const EVENT_INPUTS: [EventInput; 12] = [
    EventInput::Start,
    EventInput::Cancel,
    EventInput::StepsCompleted,
    EventInput::MustWait,
    EventInput::StepFailedForGood,
    EventInput::Resume,
    EventInput::CompensationsDone,
    EventInput::CompensationFailed,
    EventInput::RetryCompensation,
    EventInput::Resolve,
    EventInput::AddStep,
    EventInput::Schedule,
];

const STEP_INPUTS: [StepInput; 7] = [
    StepInput::Execute,
    StepInput::Succeed,
    StepInput::Wait,
    StepInput::FailForGood,
    StepInput::InDoubt,
    StepInput::Compensate,
    StepInput::Compensated,
];

#[test]
fn exactly_the_listed_event_transitions_are_allowed() {
    use EventInput as I;
    use EventStatus as S;
    let allowed = [
        (S::Created, I::Start, S::Running),
        (S::Created, I::Cancel, S::Compensated),
        (S::Running, I::StepsCompleted, S::Completed),
        (S::Running, I::MustWait, S::Waiting),
        (S::Running, I::StepFailedForGood, S::Compensating),
        (S::Waiting, I::Resume, S::Running),
        (S::Waiting, I::Cancel, S::Compensating),
        (S::Compensating, I::CompensationsDone, S::Compensated),
        (S::Compensating, I::CompensationFailed, S::Failed),
        (S::Failed, I::RetryCompensation, S::Compensating),
        (S::Failed, I::Resolve, S::Resolved),
        (S::Created, I::AddStep, S::Created),
        (S::Created, I::Schedule, S::Created),
    ];
    for from in EventStatus::ALL {
        for input in EVENT_INPUTS {
            let expected = allowed.iter().find(|(f, i, _)| *f == from && *i == input);
            match (event_transition(from, input), expected) {
                (Ok(to), Some((_, _, want))) => assert_eq!(to, *want),
                (Err(error), None) => assert_eq!(error.reason(), "transition_not_allowed"),
                (got, want) => panic!("{from:?} + {input:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}

#[test]
fn steps_are_added_and_starts_booked_only_while_created() {
    for status in EventStatus::ALL {
        for ask in [EventAsk::AddStep, EventAsk::Schedule] {
            let allowed = event_allows(status, ask).map_err(|error| error.reason());
            let want =
                if status == EventStatus::Created { Ok(()) } else { Err("transition_not_allowed") };
            assert_eq!(allowed, want, "{status:?} {ask:?}");
        }
    }
}

#[test]
fn a_start_is_now_when_its_time_has_come_and_booked_at_most_ten_years_ahead() {
    const DAY_MS: i64 = 86_400_000;
    let asked = || "then".to_string();
    let when = |at: Option<i64>| start_when(at, 1_000, &asked).map_err(|error| error.reason());
    assert_eq!(when(None), Ok(StartWhen::Now));
    assert_eq!(when(Some(1_000)), Ok(StartWhen::Now), "the time has come");
    assert_eq!(when(Some(-5)), Ok(StartWhen::Now), "a time past");
    assert_eq!(when(Some(1_001)), Ok(StartWhen::Later));
    let limit = crate::limits::SCHEDULE_AHEAD_DAYS_MAX;
    assert_eq!(when(Some(1_000 + limit * DAY_MS)), Ok(StartWhen::Later), "exactly the limit");
    assert_eq!(when(Some(1_000 + limit * DAY_MS + 1)), Err("argument_out_of_range"));
    assert_eq!(when(Some(1_000 + (limit + 1) * DAY_MS - 1)), Err("argument_out_of_range"));
    assert_eq!(when(Some(i64::MAX)), Err("argument_out_of_range"));
}

#[test]
fn a_compensation_may_try_again_until_the_window_after_the_deadline_ends() {
    let config = SagaConfig { compensation_timeout_ms: 60_000, ..CONFIG };
    assert!(config.compensation_may_try_again(Some(10_000), 69_999));
    assert!(!config.compensation_may_try_again(Some(10_000), 70_000));
    assert!(!config.compensation_may_try_again(None, 0), "no deadline, no window");
    assert!(config.compensation_may_try_again(Some(i64::MAX), i64::MAX - 1), "no overflow");
}

#[test]
fn exactly_the_listed_step_transitions_are_allowed() {
    use StepInput as I;
    use StepStatus as S;
    let allowed = [
        (S::Pending, I::Execute, S::Running),
        (S::Waiting, I::Execute, S::Running),
        (S::Running, I::Succeed, S::Completed),
        (S::Running, I::Wait, S::Waiting),
        (S::Running, I::FailForGood, S::Failed),
        (S::Waiting, I::Succeed, S::Completed),
        (S::Waiting, I::Wait, S::Waiting),
        (S::Waiting, I::FailForGood, S::Failed),
        (S::Waiting, I::InDoubt, S::Compensating),
        (S::Completed, I::Compensate, S::Compensating),
        (S::Compensating, I::Compensated, S::Compensated),
    ];
    for from in StepStatus::ALL {
        for input in STEP_INPUTS {
            let expected = allowed.iter().find(|(f, i, _)| *f == from && *i == input);
            match (step_transition(from, input), expected) {
                (Ok(to), Some((_, _, want))) => assert_eq!(to, *want),
                (Err(error), None) => assert_eq!(error.reason(), "transition_not_allowed"),
                (got, want) => panic!("{from:?} + {input:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}

#[test]
fn a_start_activates_pending_liens_then_runs_the_first_step() {
    let mut saga = saga_of(&[P, P]);
    assert_eq!(
        saga.handle(Input::Start, 1_000),
        Ok(vec![Effect::ActivatePendingLiens, Effect::Execute(0)])
    );
    assert_eq!(saga.deadline_ms, Some(1_000 + TIMEOUT_MS), "the deadline counts from the start");
    assert_eq!(saga.handle(done(0), 1_000), Ok(vec![Effect::Execute(1)]));
    assert_eq!(saga.handle(done(1), 1_000), Ok(vec![Effect::ReleaseLiens]));
    assert_eq!(saga.status, EventStatus::Completed);
    assert_eq!(
        saga.changes.first(),
        Some(&Change::Event { from: EventStatus::Created, to: EventStatus::Running })
    );
    assert_eq!(
        saga.changes.last(),
        Some(&Change::Event { from: EventStatus::Running, to: EventStatus::Completed })
    );
}

#[test]
fn held_funds_are_captured_in_order_when_the_event_completes() {
    let mut saga = saga_of(&[H, P, H]);
    saga.handle(Input::Start, 0).unwrap();
    saga.handle(done(0), 0).unwrap();
    saga.handle(done(1), 0).unwrap();
    assert_eq!(
        saga.handle(done(2), 0),
        Ok(vec![Effect::CaptureHeld(0), Effect::CaptureHeld(2), Effect::ReleaseLiens])
    );
}

#[test]
fn a_final_failure_compensates_completed_steps_newest_first_and_releases_liens() {
    let mut saga = saga_of(&[P, H, C]);
    saga.handle(Input::Start, 0).unwrap();
    saga.handle(done(0), 0).unwrap();
    saga.handle(done(1), 0).unwrap();
    assert_eq!(
        saga.handle(failed(2, false), 0),
        Ok(vec![Effect::RecordError(ErrorCause::StepFailed(2)), Effect::Compensate(1)])
    );
    assert_eq!(saga.status, EventStatus::Compensating);
    assert_eq!(saga.handle(compensated(1), 0), Ok(vec![Effect::Compensate(0)]));
    assert_eq!(saga.handle(compensated(0), 0), Ok(vec![Effect::ReleaseLiens]));
    assert_eq!(saga.status, EventStatus::Compensated);
    assert_eq!(
        statuses(&saga),
        vec![StepStatus::Compensated, StepStatus::Compensated, StepStatus::Failed]
    );
}

#[test]
fn a_retry_waits_for_its_backoff_and_never_runs_in_the_drive_that_scheduled_it() {
    let mut saga = saga_of(&[C]);
    saga.handle(Input::Start, 1_000).unwrap();
    assert_eq!(saga.handle(failed(0, true), 1_000), Ok(vec![]));
    assert_eq!(saga.status, EventStatus::Waiting);
    assert_eq!(saga.steps[0].next_attempt_at_ms, Some(1_100));
    assert_eq!(saga.handle(Input::RetryDue, 1_050), Ok(vec![]), "not due yet: nothing");
    assert_eq!(saga.handle(Input::RetryDue, 1_100), Ok(vec![Effect::Execute(0)]));
    assert_eq!(saga.steps[0].attempts, 2);
    assert_eq!(saga.handle(failed(0, true), 1_100), Ok(vec![]));
    assert_eq!(saga.steps[0].next_attempt_at_ms, Some(1_300));
}

#[test]
fn an_immediate_retry_still_waits_for_the_next_drive() {
    let config = SagaConfig {
        retry: RetryPolicy { attempts_max: 3, backoff_ms_base: 0, backoff_ms_max: 0 },
        ..CONFIG
    };
    let steps = vec![StepState::new(C, 100)];
    let mut saga = Saga::new(EventStatus::Created, steps, None, TIMEOUT_MS, config);
    saga.handle(Input::Start, 5).unwrap();
    assert_eq!(saga.handle(failed(0, true), 5), Ok(vec![]), "due now, but not in this drive");
    assert_eq!(saga.status, EventStatus::Waiting);
    assert_eq!(saga.handle(Input::RetryDue, 5), Ok(vec![Effect::Execute(0)]));
}

#[test]
fn attempts_run_out_and_the_event_compensates() {
    let mut saga = saga_of(&[C]);
    saga.handle(Input::Start, 0).unwrap();
    for attempt in 1..=3 {
        let now = i64::from(attempt) * 10_000;
        if attempt > 1 {
            assert_eq!(saga.handle(Input::RetryDue, now), Ok(vec![Effect::Execute(0)]));
        }
        saga.handle(failed(0, true), now).unwrap();
    }
    assert_eq!(saga.steps[0].status, StepStatus::Failed);
    assert_eq!(saga.steps[0].attempts, 3);
    assert_eq!(saga.status, EventStatus::Compensated);
}

#[test]
fn an_external_step_waits_and_its_report_resumes_the_event() {
    let mut saga = saga_of(&[X, P]);
    assert_eq!(saga.handle(Input::Start, 0), Ok(vec![Effect::ActivatePendingLiens]));
    assert_eq!(saga.status, EventStatus::Waiting);
    assert!(saga.steps[0].awaits_report());
    let report = Input::StepReported { index: 0, report: StepReport::Completed };
    assert_eq!(saga.handle(report, 0), Ok(vec![Effect::Execute(1)]));
}

#[test]
fn a_waiting_external_step_at_the_deadline_is_in_doubt_and_asked_to_compensate_first() {
    let mut saga = saga_of(&[P, X]);
    saga.handle(Input::Start, 0).unwrap();
    saga.handle(done(0), 0).unwrap();
    assert_eq!(saga.handle(Input::Deadline, TIMEOUT_MS - 1), Ok(vec![]), "not yet");
    assert_eq!(
        saga.handle(Input::Deadline, TIMEOUT_MS),
        Ok(vec![Effect::RecordError(ErrorCause::DeadlinePassed { step: Some(1) })])
    );
    // Not failed: its outcome is unknown. Nothing before it is compensated yet.
    assert_eq!(statuses(&saga), vec![StepStatus::Completed, StepStatus::Compensating]);
    assert_eq!(saga.steps[1].compensation_requested_at_ms, Some(TIMEOUT_MS));
    assert_eq!(saga.status, EventStatus::Compensating);
    // The bank's late success changes nothing: a late report.
    let late = Input::StepReported { index: 1, report: StepReport::Completed };
    assert_eq!(saga.handle(late, TIMEOUT_MS + 1), Ok(vec![]));
    assert_eq!(
        saga.changes.last(),
        Some(&Change::LateReport { index: 1, report: LateReport::StepCompleted })
    );
    assert_eq!(statuses(&saga), vec![StepStatus::Completed, StepStatus::Compensating]);
    // Its compensation reported: then the steps before it are compensated.
    let report = Input::CompensationReported { index: 1, report: CompensationOutcome::Done };
    assert_eq!(saga.handle(report, TIMEOUT_MS + 2), Ok(vec![Effect::Compensate(0)]));
    assert_eq!(saga.handle(compensated(0), TIMEOUT_MS + 2), Ok(vec![Effect::ReleaseLiens]));
    assert_eq!(statuses(&saga), vec![StepStatus::Compensated, StepStatus::Compensated]);
}

#[test]
fn a_compensation_never_reported_fails_the_event_and_keeps_its_liens() {
    let mut saga = saga_of(&[H, X]);
    saga.handle(Input::Start, 0).unwrap();
    saga.handle(done(0), 0).unwrap();
    saga.handle(Input::Cancel, 10).unwrap();
    assert_eq!(saga.handle(Input::CompensationOverdue, 10 + 59_999), Ok(vec![]), "not yet");
    assert_eq!(
        saga.handle(Input::CompensationOverdue, 10 + 60_000),
        Ok(vec![Effect::RecordError(ErrorCause::CompensationOverdue(1))]),
        "failed, and no ReleaseLiens: the withdrawal's hold stays for an operator"
    );
    assert_eq!(saga.status, EventStatus::Failed);
    // Now the report is late too.
    let report = Input::CompensationReported { index: 1, report: CompensationOutcome::Done };
    assert_eq!(saga.handle(report, 70_000), Ok(vec![]));
    assert_eq!(saga.status, EventStatus::Failed);
    // An operator asks again: the application is asked again, and its report continues it.
    assert_eq!(saga.handle(Input::RetryCompensation, 80_000), Ok(vec![]));
    assert_eq!(saga.steps[1].compensation_requested_at_ms, Some(80_000));
    assert_eq!(saga.handle(report, 80_001), Ok(vec![Effect::Compensate(0)]));
}

#[test]
fn a_completed_external_step_is_compensated_by_the_application_report_alone() {
    let mut saga = saga_of(&[X, C]);
    saga.handle(Input::Start, 0).unwrap();
    let report = Input::StepReported { index: 0, report: StepReport::Completed };
    saga.handle(report, 0).unwrap();
    assert_eq!(
        saga.handle(failed(1, false), 5),
        Ok(vec![Effect::RecordError(ErrorCause::StepFailed(1))])
    );
    assert!(saga.steps[0].awaits_compensation_report());
    // "The bank paid" again is not "compensation done".
    assert_eq!(saga.handle(report, 6), Ok(vec![]));
    assert_eq!(saga.status, EventStatus::Compensating);
    let failure = Input::CompensationReported { index: 0, report: CompensationOutcome::Failed };
    assert_eq!(
        saga.handle(failure, 7),
        Ok(vec![Effect::RecordError(ErrorCause::CompensationFailed(0))])
    );
    assert_eq!(saga.status, EventStatus::Failed);
}

#[test]
fn a_refused_compensation_is_run_again_by_an_operator_or_resolved() {
    let mut saga = saga_of(&[P, C]);
    saga.handle(Input::Start, 0).unwrap();
    saga.handle(done(0), 0).unwrap();
    saga.handle(failed(1, false), 0).unwrap();
    let refused = Input::CompensationRan { index: 0, outcome: CompensationOutcome::Failed };
    saga.handle(refused, 0).unwrap();
    assert_eq!(saga.status, EventStatus::Failed);
    let mut resolved = saga.clone();
    assert_eq!(saga.handle(Input::RetryCompensation, 1), Ok(vec![Effect::Compensate(0)]));
    assert_eq!(saga.handle(compensated(0), 1), Ok(vec![Effect::ReleaseLiens]));
    assert_eq!(saga.status, EventStatus::Compensated);
    assert_eq!(resolved.handle(Input::Resolve, 1), Ok(vec![Effect::ReleaseLiens]));
    assert_eq!(resolved.status, EventStatus::Resolved);
    for input in [Input::Resolve, Input::RetryCompensation, Input::Cancel, Input::Start] {
        assert_eq!(
            resolved.clone().handle(input, 2).unwrap_err().reason(),
            "transition_not_allowed",
            "{input:?}"
        );
    }
}

#[test]
fn a_scheduled_retry_cancelled_fails_its_step_and_compensates_the_rest() {
    let mut saga = saga_of(&[P, C]);
    saga.handle(Input::Start, 0).unwrap();
    saga.handle(done(0), 0).unwrap();
    saga.handle(failed(1, true), 0).unwrap();
    assert_eq!(
        saga.handle(Input::Cancel, 1),
        Ok(vec![
            Effect::RecordError(ErrorCause::Cancelled { step: Some(1) }),
            Effect::Compensate(0)
        ])
    );
    assert_eq!(saga.steps[1].status, StepStatus::Failed);
    assert_eq!(saga.steps[1].next_attempt_at_ms, None);
}

#[test]
fn created_events_cancel_or_expire_at_once_releasing_their_pending_liens() {
    let mut saga = saga_of(&[P, P]);
    assert_eq!(
        saga.handle(Input::Cancel, 0),
        Ok(vec![Effect::RecordError(ErrorCause::Cancelled { step: None }), Effect::ReleaseLiens])
    );
    assert_eq!(saga.status, EventStatus::Compensated);
    let mut never_started = saga_of(&[P]);
    assert_eq!(never_started.handle(Input::Deadline, TIMEOUT_MS - 1), Ok(vec![]));
    assert_eq!(
        never_started.handle(Input::Deadline, TIMEOUT_MS),
        Ok(vec![
            Effect::RecordError(ErrorCause::DeadlinePassed { step: None }),
            Effect::ReleaseLiens
        ])
    );
    assert_eq!(statuses(&never_started), vec![StepStatus::Pending]);
}

#[test]
fn reports_on_steps_that_never_awaited_one_are_refused() {
    let mut saga = saga_of(&[P, X]);
    let completed = StepReport::Completed;
    let refused =
        |saga: &mut Saga, index| saga.handle(Input::StepReported { index, report: completed }, 0);
    assert_eq!(refused(&mut saga, 1).unwrap_err().reason(), "transition_not_allowed", "pending");
    saga.handle(Input::Start, 0).unwrap();
    saga.handle(done(0), 0).unwrap();
    assert_eq!(refused(&mut saga, 0).unwrap_err().reason(), "transition_not_allowed", "posting");
    let compensation = Input::CompensationReported { index: 0, report: CompensationOutcome::Done };
    assert_eq!(saga.handle(compensation, 0).unwrap_err().reason(), "transition_not_allowed");
}

#[test]
fn worker_inputs_do_nothing_where_they_do_not_apply() {
    // The worker reads candidates, then re-reads each under its lock: the input may no
    // longer apply, and then it must change nothing.
    let mut completed = saga_of(&[P]);
    completed.handle(Input::Start, 0).unwrap();
    completed.handle(done(0), 0).unwrap();
    for input in [Input::Deadline, Input::RetryDue, Input::CompensationOverdue] {
        let mut copy = completed.clone();
        assert_eq!(copy.handle(input, i64::MAX), Ok(vec![]), "{input:?}");
        assert_eq!(copy, completed, "{input:?}");
    }
}

#[test]
fn an_event_without_steps_completes_at_once() {
    let mut saga = saga_of(&[]);
    assert_eq!(
        saga.handle(Input::Start, 0),
        Ok(vec![Effect::ActivatePendingLiens, Effect::ReleaseLiens])
    );
    assert_eq!(saga.status, EventStatus::Completed);
}

/// xorshift64: a tiny deterministic generator, so a failing seed replays exactly.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

const KINDS: [StepKind; 4] = [P, H, X, C];

/// A fake shell: what each step has on the ledger (posted, held), every effect it performed,
/// and the inputs an application and a worker would send, at random, on a clock moved by hand.
#[derive(Debug, Default, PartialEq)]
struct Shell {
    posted: Vec<i32>,
    held: Vec<i32>,
    event_liens_held: bool,
    compensations: Vec<usize>,
    executions: Vec<usize>,
    captures: usize,
    late_reports: usize,
}

impl Shell {
    /// Performs effects; the outcome of a step run or compensation is drawn at random.
    fn perform(&mut self, saga: &mut Saga, effects: Vec<Effect>, random: &mut Random, now: i64) {
        let mut queue = effects;
        for _ in 0..1_000 {
            let Some(effect) = (!queue.is_empty()).then(|| queue.remove(0)) else { return };
            let input = match effect {
                Effect::ActivatePendingLiens => {
                    self.event_liens_held = true;
                    None
                }
                Effect::Execute(index) => {
                    assert_ne!(saga.steps[index].kind, X, "the shell never runs an external step");
                    self.executions.push(index);
                    let outcome = match random.below(10) {
                        0 | 1 => StepOutcome::Failed { retryable: true },
                        2 => StepOutcome::Failed { retryable: false },
                        _ => {
                            match saga.steps[index].kind {
                                H => self.held[index] += 1,
                                P | C => self.posted[index] += 1,
                                X => {}
                            }
                            StepOutcome::Done
                        }
                    };
                    Some(Input::Executed { index, outcome })
                }
                Effect::Compensate(index) => {
                    let outcome = if random.below(15) == 0 {
                        CompensationOutcome::Failed
                    } else {
                        self.compensations.push(index);
                        self.posted[index] -= i32::from(saga.steps[index].kind != H);
                        self.held[index] -= i32::from(saga.steps[index].kind == H);
                        CompensationOutcome::Done
                    };
                    Some(Input::CompensationRan { index, outcome })
                }
                Effect::CaptureHeld(index) => {
                    assert_eq!(self.held[index], 1, "captured once, what was held");
                    self.held[index] = 0;
                    self.posted[index] += 1;
                    self.captures += 1;
                    None
                }
                Effect::ReleaseLiens => {
                    for held in &mut self.held {
                        *held = 0;
                    }
                    self.event_liens_held = false;
                    None
                }
                Effect::RecordError(_) => None,
            };
            if let Some(input) = input {
                queue.extend(saga.handle(input, now).unwrap());
            }
        }
        panic!("a drive performed more than 1,000 effects");
    }
}

/// One random input from the outside: the application (start, cancel, reports) or the worker
/// (deadline, retry, overdue compensation), some of which apply and some not.
fn outside_input(saga: &Saga, random: &mut Random) -> Input {
    let any = random.below(saga.steps.len().max(1) as u64) as usize;
    let index = saga.steps.iter().position(|step| step.kind == X).unwrap_or(any);
    match random.below(9) {
        0 => Input::Cancel,
        1 => Input::Deadline,
        2 | 3 => Input::RetryDue,
        4 => Input::CompensationOverdue,
        5 => Input::StepReported {
            index,
            report: match random.below(3) {
                0 => StepReport::Failed { retryable: random.below(2) == 0 },
                _ => StepReport::Completed,
            },
        },
        6 => Input::CompensationReported {
            index,
            report: match random.below(4) {
                0 => CompensationOutcome::Failed,
                _ => CompensationOutcome::Done,
            },
        },
        7 => Input::RetryCompensation,
        _ => Input::Resolve,
    }
}

/// Drives one event at random until it ends; returns it and what the shell saw.
fn drive(seed: u64) -> (Saga, Shell) {
    let mut random = Random(seed.max(1));
    let count = random.below(5) as usize;
    let kinds: Vec<StepKind> = (0..count).map(|_| KINDS[random.below(4) as usize]).collect();
    let mut saga = saga_of(&kinds);
    let mut shell = Shell { posted: vec![0; count], held: vec![0; count], ..Shell::default() };
    let mut now = 0;
    let effects = saga.handle(Input::Start, now).unwrap();
    shell.perform(&mut saga, effects, &mut random, now);
    for _ in 0..500 {
        if saga.status.is_final() {
            return (saga, shell);
        }
        now += 20_000;
        let input = outside_input(&saga, &mut random);
        let before = saga.changes.len();
        if let Ok(effects) = saga.handle(input, now) {
            let late = saga.changes[before..].iter();
            shell.late_reports += late.filter(|c| matches!(c, Change::LateReport { .. })).count();
            shell.perform(&mut saga, effects, &mut random, now);
        }
    }
    panic!("seed {seed}: the event did not end in 500 inputs: {saga:?}");
}

#[test]
fn random_runs_keep_every_invariant() {
    for seed in 1..=3_000u64 {
        let (saga, shell) = drive(seed);
        // Each step compensated at most once, newest first.
        let order = &shell.compensations;
        assert!(order.windows(2).all(|pair| pair[0] > pair[1]), "seed {seed}: {order:?}");
        assert!(saga.steps.iter().all(|s| s.attempts <= s.attempts_max), "seed {seed}");
        assert!(!shell.event_liens_held, "seed {seed}: no lien outlives an ended event");
        assert!(shell.held.iter().all(|held| *held == 0), "seed {seed}: held {:?}", shell.held);
        match saga.status {
            EventStatus::Completed => {
                assert!(saga.steps.iter().all(|s| s.status == StepStatus::Completed), "{seed}");
                // Every step that posts posted once; held steps were captured.
                for (index, step) in saga.steps.iter().enumerate() {
                    let expected = i32::from(step.kind != X);
                    assert_eq!(shell.posted[index], expected, "seed {seed} step {index}");
                }
            }
            EventStatus::Compensated => {
                assert!(shell.posted.iter().all(|posted| *posted == 0), "seed {seed}: {shell:?}");
                assert!(
                    saga.steps.iter().all(|s| !matches!(
                        s.status,
                        StepStatus::Completed | StepStatus::Compensating | StepStatus::Running
                    )),
                    "seed {seed}"
                );
            }
            EventStatus::Resolved => {}
            other => panic!("seed {seed}: {other}"),
        }
    }
}

#[test]
fn random_runs_reach_every_end_and_every_kind_of_input() {
    let (mut completed, mut compensated, mut resolved, mut late) = (0, 0, 0, 0);
    for seed in 1..=3_000u64 {
        let (saga, shell) = drive(seed);
        completed += usize::from(saga.status == EventStatus::Completed);
        compensated += usize::from(saga.status == EventStatus::Compensated);
        resolved += usize::from(saga.status == EventStatus::Resolved);
        late += shell.late_reports;
    }
    assert!(
        completed > 100 && compensated > 100 && resolved > 10 && late > 100,
        "completed {completed}, compensated {compensated}, resolved {resolved}, late {late}"
    );
}

#[test]
fn the_same_inputs_give_the_same_changes() {
    for seed in [7, 99, 12345] {
        let (first, first_shell) = drive(seed);
        let (second, second_shell) = drive(seed);
        assert_eq!(first, second);
        assert_eq!(first_shell, second_shell);
    }
}
