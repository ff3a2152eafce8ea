//! The one-step shortcuts (`cte_transfer`, `cte_deposit`): the same saga as every event, driven
//! in memory, skipping only what a new one-step posting event can prove unnecessary. There is
//! nothing to load or lock but its wallets (the event is new and nobody else can see it), no
//! pending lien to activate or release, and no subtransaction: a refused posting refuses the
//! whole call, which leaves nothing, as rolling back the step and compensating nothing would.
//! Then the event, its step and its changes are written in one statement.

use cte_ctel_core::engine::checks::CheckedStep;
use cte_ctel_core::engine::executors::{StepPlan, StepType};
use cte_ctel_core::engine::{Effect, EventStatus, Input, Saga, StepOutcome, StepState};
use cte_ctel_core::limits::EVENT_TIMEOUT_DEFAULT_MS;
use cte_ctel_core::CteError;
use pgrx::Uuid;

use super::{build, steps, Context};
use crate::store::changes::{Batch, Change, Kind};
use crate::store::events::{self, CompletedOneStep};
use crate::store::{new_id, postings};

/// What a one-step event is besides its step: its name (its step's too), description, and for
/// a refund the event it refunds.
pub struct OneStep<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub refund_of: Option<Uuid>,
    /// The event's metadata (a JSON object), if the caller gave one.
    pub metadata: Option<serde_json::Value>,
}

/// Posts a one-step shortcut's only posting (a checked step of one posting) and records the
/// event as completed; returns its id. Its reference is its key (SPEC §9): when a step that did
/// not fail holds it already, the same request (a one-step event of the same type with the
/// same payload) is a replay and returns that event, anything else is `idempotency_conflict`.
/// The claim comes first, so a racing twin has committed (a replay) or rolled back (the
/// reference is free) by the time the holder is read.
pub fn one_step_event(
    mut checked: CheckedStep,
    payload: &str,
    metadata: Option<serde_json::Value>,
    ctx: &Context,
) -> Result<Uuid, CteError> {
    let plan = build::only_posting(checked.plan.take(), &checked.step_type)?;
    let name = checked.step_type.as_str().to_string();
    let event = OneStep { name: &name, description: None, refund_of: None, metadata };
    match completed_event(&checked, plan, payload, &event, ctx) {
        Err(CteError::DuplicateReference { step_type, reference, held_by }) => {
            let found = events::one_step_by_reference(&step_type, &reference, payload);
            replay_of(found, step_type, reference, held_by)
        }
        other => other,
    }
}

/// What a one-step request whose reference another step holds gets, given that holder
/// (`events::one_step_by_reference`): its event when it is the same request (a replay),
/// `idempotency_conflict` when it is another, `duplicate_reference` when a batch item holds it.
pub fn replay_of(
    found: Option<(Uuid, bool)>,
    step_type: String,
    reference: String,
    held_by: String,
) -> Result<Uuid, CteError> {
    match found {
        Some((event_id, true)) => Ok(event_id),
        Some((event_id, false)) => Err(CteError::IdempotencyConflict {
            key: reference,
            held: format!("the {step_type} step of {held_by}"),
            requested: "this different request".to_string(),
            original: format!("event {event_id}"),
        }),
        None => Err(CteError::DuplicateReference { step_type, reference, held_by }),
    }
}

/// Posts a checked step's postings as an event's only step, and records the event as
/// completed; returns its id.
pub fn completed_event(
    checked: &CheckedStep,
    plan: StepPlan,
    payload: &str,
    event: &OneStep,
    ctx: &Context,
) -> Result<Uuid, CteError> {
    let step_type = &checked.step_type;
    let reference = checked.reference.as_deref();
    let (event_id, step_id) = (new_id(), new_id());
    // Claimed before any wallet is locked: a replay waits only for the first to commit.
    build::claim_references(&checked.references, step_id)?;
    let (saga, result) = run_one_step(step_type, ctx, || {
        let references = vec![reference; plan.postings.len()];
        let origin = postings::Origin { step: Some(step_id), lien: None };
        let posted = postings::post(&plan.postings, &references, origin, ctx.wait);
        Ok(steps::postings_result(&posted.map_err(|(_, error)| error)?))
    })?;
    let batch = changes_of(&saga, event_id, step_id, ctx);
    let ids = (event_id, step_id);
    events::insert_completed_one_step(&completed_row(
        ids,
        event,
        &saga,
        step_type,
        payload,
        reference,
        result.as_deref(),
        &batch,
        ctx,
    ));
    crate::wake::at_commit();
    Ok(event_id)
}

/// A new one-step event's saga, driven in memory: started, its step executed by `execute`
/// (which posts, returning the step's result), completed. Returns the saga and the result.
pub fn run_one_step(
    step_type: &StepType,
    ctx: &Context,
    execute: impl FnOnce() -> Result<String, CteError>,
) -> Result<(Saga, Option<String>), CteError> {
    let step = StepState::new(step_type.kind(), 1);
    let mut saga =
        Saga::new(EventStatus::Created, vec![step], None, EVENT_TIMEOUT_DEFAULT_MS, ctx.config);
    let mut effects = saga.handle(Input::Start, ctx.now_ms)?;
    let (mut execute, mut result) = (Some(execute), None);
    while !effects.is_empty() {
        let effect = effects.remove(0);
        match effect {
            // A new event has no lien to activate or release.
            Effect::ActivatePendingLiens | Effect::ReleaseLiens => {}
            Effect::Execute(index) => {
                let execute = execute.take();
                assert!(execute.is_some(), "a one-step event executes its step once");
                if let Some(execute) = execute {
                    result = Some(execute()?);
                }
                let done = Input::Executed { index, outcome: StepOutcome::Done };
                effects.extend(saga.handle(done, ctx.now_ms)?);
            }
            Effect::Compensate(_) | Effect::CaptureHeld(_) | Effect::RecordError(_) => {
                panic!("a one-step posting event that posted neither compensates nor holds")
            }
        }
    }
    assert_eq!(saga.status, EventStatus::Completed, "a posted one-step event is completed");
    assert!(result.is_some(), "a completed one-step event executed its step");
    Ok((saga, result))
}

/// A completed one-step event's changes, as one outbox row: created, then what its saga did.
pub fn changes_of(saga: &Saga, event_id: Uuid, step_id: Uuid, ctx: &Context) -> Batch {
    let mut changes = vec![Change {
        kind: Kind::Event,
        transaction_id: None,
        lien_id: None,
        old_status: None,
        new_status: EventStatus::Created.as_str(),
    }];
    changes.extend(saga.changes.iter().map(|change| super::change_row(change, saga, &[step_id])));
    Batch { event_id: Some(event_id), actor: ctx.actor.clone(), changes, ..Batch::default() }
}

/// A completed one-step event's row, as the store writes it.
#[allow(clippy::too_many_arguments)]
pub fn completed_row<'a>(
    (event_id, step_id): (Uuid, Uuid),
    event: &'a OneStep,
    saga: &'a Saga,
    step_type: &'a StepType,
    payload: &'a str,
    reference: Option<&'a str>,
    result: Option<&'a str>,
    changes: &'a Batch,
    ctx: &Context,
) -> CompletedOneStep<'a> {
    let step = &saga.steps[0];
    CompletedOneStep {
        event_id,
        step_id,
        name: event.name,
        description: event.description,
        refund_of: event.refund_of,
        metadata: event.metadata.as_ref(),
        status: saga.status.as_str(),
        timeout_ms: EVENT_TIMEOUT_DEFAULT_MS,
        deadline_ms: saga.deadline_ms,
        now_ms: ctx.now_ms,
        step_type: step_type.as_str(),
        payload,
        reference,
        step_status: step.status.as_str(),
        attempts: i32::try_from(step.attempts).unwrap_or(1),
        attempts_max: i32::try_from(step.attempts_max).unwrap_or(1),
        result,
        changes,
    }
}
