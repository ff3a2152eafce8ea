//! The state machine, walked transition by transition and then driven at random.

use super::*;

const POLICY: RetryPolicy =
    RetryPolicy { attempts_max: 3, backoff_ms_base: 100, backoff_ms_max: 1_000 };

fn steps(count: usize) -> Vec<StepState> {
    let step = StepState {
        status: StepStatus::Pending,
        attempts: 0,
        attempts_max: POLICY.attempts_max,
        next_attempt_at_ms: None,
    };
    vec![step; count]
}

fn started(count: usize) -> Saga {
    let mut saga = Saga::new(EventStatus::Created, steps(count));
    saga.start().unwrap();
    saga
}

const EVENT_INPUTS: [EventInput; 8] = [
    EventInput::Start,
    EventInput::StepsCompleted,
    EventInput::MustWait,
    EventInput::StepFailedForGood,
    EventInput::Resume,
    EventInput::Cancel,
    EventInput::CompensationsDone,
    EventInput::CompensationFailed,
];

const STEP_INPUTS: [StepInput; 7] = [
    StepInput::Execute,
    StepInput::Succeed,
    StepInput::WaitExternal,
    StepInput::RetryLater,
    StepInput::FailForGood,
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
fn exactly_the_listed_step_transitions_are_allowed() {
    use StepInput as I;
    use StepStatus as S;
    let allowed = [
        (S::Pending, I::Execute, S::Running),
        (S::Waiting, I::Execute, S::Running),
        (S::Running, I::Succeed, S::Completed),
        (S::Running, I::WaitExternal, S::Waiting),
        (S::Running, I::RetryLater, S::Waiting),
        (S::Running, I::FailForGood, S::Failed),
        (S::Waiting, I::Succeed, S::Completed),
        (S::Waiting, I::RetryLater, S::Waiting),
        (S::Waiting, I::FailForGood, S::Failed),
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
fn steps_run_in_order_and_the_event_completes() {
    let mut saga = started(3);
    for index in 0..3 {
        assert_eq!(saga.next_action(0), Ok(Action::Execute(index)));
        saga.step_succeeded(index).unwrap();
    }
    assert_eq!(saga.next_action(0), Ok(Action::Finished));
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
fn a_final_failure_compensates_completed_steps_newest_first() {
    let mut saga = started(3);
    for index in 0..2 {
        assert_eq!(saga.next_action(0), Ok(Action::Execute(index)));
        saga.step_succeeded(index).unwrap();
    }
    assert_eq!(saga.next_action(0), Ok(Action::Execute(2)));
    saga.step_failed(2, false, 0, &POLICY).unwrap();
    assert_eq!(saga.status, EventStatus::Compensating);
    assert_eq!(saga.steps[2].status, StepStatus::Failed);
    assert_eq!(saga.next_action(0), Ok(Action::Compensate(1)));
    saga.compensation_succeeded(1).unwrap();
    assert_eq!(saga.next_action(0), Ok(Action::Compensate(0)));
    saga.compensation_succeeded(0).unwrap();
    assert_eq!(saga.next_action(0), Ok(Action::Finished));
    assert_eq!(saga.status, EventStatus::Compensated);
    let statuses: Vec<StepStatus> = saga.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        vec![StepStatus::Compensated, StepStatus::Compensated, StepStatus::Failed]
    );
}

#[test]
fn a_retryable_failure_waits_for_its_backoff_then_runs_again() {
    let mut saga = started(1);
    assert_eq!(saga.next_action(1_000), Ok(Action::Execute(0)));
    saga.step_failed(0, true, 1_000, &POLICY).unwrap();
    assert_eq!(saga.steps[0].status, StepStatus::Waiting);
    assert_eq!(saga.steps[0].next_attempt_at_ms, Some(1_100));
    assert_eq!(saga.next_action(1_050), Ok(Action::Wait));
    assert_eq!(saga.status, EventStatus::Waiting);
    saga.resume().unwrap();
    assert_eq!(saga.next_action(1_100), Ok(Action::Execute(0)));
    assert_eq!(saga.steps[0].attempts, 2);
    saga.step_failed(0, true, 1_100, &POLICY).unwrap();
    assert_eq!(saga.steps[0].next_attempt_at_ms, Some(1_300));
}

#[test]
fn attempts_run_out_and_the_event_compensates() {
    let mut saga = started(1);
    for attempt in 1..=3 {
        if attempt > 1 {
            saga.resume().unwrap();
        }
        assert_eq!(saga.next_action(i64::from(attempt) * 10_000), Ok(Action::Execute(0)));
        saga.step_failed(0, true, i64::from(attempt) * 10_000, &POLICY).unwrap();
        if attempt < 3 {
            assert_eq!(saga.next_action(i64::from(attempt) * 10_000), Ok(Action::Wait));
        }
    }
    assert_eq!(saga.steps[0].status, StepStatus::Failed);
    assert_eq!(saga.steps[0].attempts, 3);
    assert_eq!(saga.next_action(0), Ok(Action::Finished));
    assert_eq!(saga.status, EventStatus::Compensated);
}

#[test]
fn an_external_step_waits_and_a_cancel_compensates_what_completed() {
    let mut saga = started(2);
    assert_eq!(saga.next_action(0), Ok(Action::Execute(0)));
    saga.step_succeeded(0).unwrap();
    assert_eq!(saga.next_action(0), Ok(Action::Execute(1)));
    saga.step_waiting(1).unwrap();
    assert_eq!(saga.next_action(0), Ok(Action::Wait));
    assert_eq!(saga.status, EventStatus::Waiting);
    saga.cancel().unwrap();
    assert_eq!(saga.steps[1].status, StepStatus::Failed);
    assert_eq!(saga.next_action(0), Ok(Action::Compensate(0)));
    saga.compensation_succeeded(0).unwrap();
    assert_eq!(saga.next_action(0), Ok(Action::Finished));
    assert_eq!(saga.status, EventStatus::Compensated);
}

#[test]
fn an_external_report_resumes_the_event() {
    let mut saga = started(2);
    assert_eq!(saga.next_action(0), Ok(Action::Execute(0)));
    saga.step_waiting(0).unwrap();
    assert_eq!(saga.next_action(0), Ok(Action::Wait));
    saga.resume().unwrap();
    saga.step_succeeded(0).unwrap();
    assert_eq!(saga.next_action(0), Ok(Action::Execute(1)));
}

#[test]
fn a_failed_compensation_fails_the_event() {
    let mut saga = started(2);
    assert_eq!(saga.next_action(0), Ok(Action::Execute(0)));
    saga.step_succeeded(0).unwrap();
    assert_eq!(saga.next_action(0), Ok(Action::Execute(1)));
    saga.step_failed(1, false, 0, &POLICY).unwrap();
    assert_eq!(saga.next_action(0), Ok(Action::Compensate(0)));
    saga.compensation_failed(0).unwrap();
    assert_eq!(saga.status, EventStatus::Failed);
    assert_eq!(saga.next_action(0), Ok(Action::Finished));
}

#[test]
fn an_external_compensation_waits_with_the_event_compensating() {
    let mut saga = started(1);
    saga.next_action(0).unwrap();
    saga.step_succeeded(0).unwrap();
    saga.status = EventStatus::Waiting; // as if a later step waited and the event was cancelled
    saga.cancel().unwrap();
    assert_eq!(saga.next_action(0), Ok(Action::Compensate(0)));
    assert_eq!(saga.next_action(0), Ok(Action::Wait));
    assert_eq!(saga.status, EventStatus::Compensating);
    saga.compensation_succeeded(0).unwrap();
    assert_eq!(saga.next_action(0), Ok(Action::Finished));
}

#[test]
fn created_events_cancel_at_once_and_finished_ones_refuse() {
    let mut saga = Saga::new(EventStatus::Created, steps(2));
    saga.cancel().unwrap();
    assert_eq!(saga.status, EventStatus::Compensated);
    for status in [
        EventStatus::Completed,
        EventStatus::Compensated,
        EventStatus::Failed,
        EventStatus::Compensating,
    ] {
        let mut saga = Saga::new(status, steps(1));
        assert_eq!(saga.cancel().unwrap_err().reason(), "transition_not_allowed");
        assert_eq!(saga.start().unwrap_err().reason(), "transition_not_allowed");
    }
}

#[test]
fn an_event_without_steps_completes_at_once() {
    let mut saga = started(0);
    assert_eq!(saga.next_action(0), Ok(Action::Finished));
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

/// Drives one event with random outcomes (success, external wait, retryable or final failure,
/// cancel, failed compensation) on a clock moved by hand, and returns its change log.
fn drive(seed: u64) -> (Saga, Vec<usize>) {
    let mut random = Random(seed.max(1));
    let count = random.below(5) as usize;
    let mut saga = started(count);
    let mut now_ms = 0;
    let mut compensated = Vec::new();
    for _ in 0..200 {
        match saga.next_action(now_ms).unwrap() {
            Action::Execute(index) => match random.below(10) {
                0 => saga.step_waiting(index).unwrap(),
                1 | 2 => saga.step_failed(index, true, now_ms, &POLICY).unwrap(),
                3 => saga.step_failed(index, false, now_ms, &POLICY).unwrap(),
                _ => saga.step_succeeded(index).unwrap(),
            },
            Action::Compensate(index) => {
                if random.below(20) == 0 {
                    saga.compensation_failed(index).unwrap();
                } else {
                    saga.compensation_succeeded(index).unwrap();
                    compensated.push(index);
                }
            }
            Action::Wait => {
                now_ms += 2_000;
                if saga.status == EventStatus::Waiting && random.below(6) == 0 {
                    saga.cancel().unwrap();
                    continue;
                }
                if saga.status == EventStatus::Waiting {
                    saga.resume().unwrap();
                    let waiting = saga.steps.iter().position(|s| s.status == StepStatus::Waiting);
                    if let Some(index) = waiting {
                        if saga.steps[index].next_attempt_at_ms.is_none() {
                            saga.step_succeeded(index).unwrap(); // the outside world reports
                        }
                    }
                }
            }
            Action::Finished => return (saga, compensated),
        }
    }
    panic!("seed {seed}: event did not finish in 200 actions");
}

#[test]
fn random_runs_keep_every_invariant() {
    for seed in 1..=2_000u64 {
        let (saga, compensated) = drive(seed);
        assert!(saga.status.is_final(), "seed {seed}: ended {}", saga.status);
        // Each step compensated at most once, newest first.
        assert!(
            compensated.windows(2).all(|pair| pair[0] > pair[1]),
            "seed {seed}: {compensated:?}"
        );
        match saga.status {
            EventStatus::Completed => {
                assert!(
                    saga.steps.iter().all(|s| s.status == StepStatus::Completed),
                    "seed {seed}"
                );
            }
            EventStatus::Compensated => {
                assert!(
                    saga.steps.iter().all(|s| !matches!(
                        s.status,
                        StepStatus::Completed | StepStatus::Compensating | StepStatus::Running
                    )),
                    "seed {seed}"
                );
            }
            EventStatus::Failed => {
                assert_eq!(
                    saga.steps.iter().filter(|s| s.status == StepStatus::Compensating).count(),
                    1,
                    "seed {seed}"
                );
            }
            other => panic!("seed {seed}: {other}"),
        }
        assert!(saga.steps.iter().all(|s| s.attempts <= s.attempts_max), "seed {seed}");
    }
}

#[test]
fn the_same_inputs_give_the_same_changes() {
    for seed in [7, 99, 12345] {
        assert_eq!(drive(seed), drive(seed));
    }
}
