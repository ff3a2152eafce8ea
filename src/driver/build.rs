//! Building events: creating one and adding its steps, under the checks of the core and the
//! event's row lock.

use cte_ctel_core::engine::checks::{self, StepSpec};
use cte_ctel_core::engine::executors::{StepPlan, StepType};
use cte_ctel_core::engine::{event_allows, EventAsk, EventStatus};
use cte_ctel_core::ledger::Metadata;
use cte_ctel_core::limits::{EVENT_PAYLOAD_BYTES_MAX, EVENT_STEPS_MAX};
use cte_ctel_core::money::Currency;
use cte_ctel_core::CteError;
use pgrx::datum::Interval;
use pgrx::Uuid;

use super::{reentry, Context};
use crate::store::changes::{self, Batch, Change, Kind};
use crate::store::events::{self, NewStep};
use crate::store::references::{self, Claim};
use crate::store::{executors, ledger, new_id};

/// Looks up registered currencies, each once per call (a batch of a thousand items in one
/// currency asked for it a thousand times: a quarter of its time).
pub fn currency_book() -> impl Fn(&str) -> Result<Currency, CteError> {
    let read = std::cell::RefCell::new(std::collections::BTreeMap::<String, Currency>::new());
    move |code: &str| {
        if let Some(currency) = read.borrow().get(code) {
            return Ok(currency.clone());
        }
        let currency = ledger::currency(code)?;
        read.borrow_mut().insert(code.to_string(), currency.clone());
        Ok(currency)
    }
}

/// A new event in status `created`, or the one an idempotency key already names.
pub fn create_event(
    name: &str,
    description: Option<&str>,
    timeout: Interval,
    metadata: &Metadata,
    idempotency_key: Option<&str>,
    ctx: &Context,
) -> Result<Uuid, CteError> {
    checks::name(name, "event name")?;
    checks::description(description, "description")?;
    if let Some(key) = idempotency_key {
        checks::name(key, "idempotency key")?;
    }
    let (id, created) =
        events::create(name, description, timeout, metadata.value().cloned(), idempotency_key)?;
    if created {
        changes::record(&Batch {
            event_id: Some(id),
            actor: ctx.actor.clone(),
            changes: vec![Change {
                kind: Kind::Event,
                transaction_id: None,
                lien_id: None,
                old_status: None,
                new_status: EventStatus::Created.as_str(),
            }],
            ..Batch::default()
        });
    }
    Ok(id)
}

/// Checks a step and returns its type and plan, its reference claims, and its attempts.
pub fn checked_step(
    spec: &StepSpec,
    default_attempts: u32,
) -> Result<checks::CheckedStep, CteError> {
    let mut checked = checks::step(spec, default_attempts, &currency_book())?;
    if let StepType::Custom(custom) = &checked.step_type {
        if executors::is_hosted(custom) {
            checked.step_type = checked.step_type.hosted();
        } else if !executors::is_registered(custom) {
            return Err(CteError::StepTypeUnknown { step_type: custom.clone() });
        }
    }
    if let Some(plan) = &checked.plan {
        ledger::check_wallets(&plan.postings)?;
    }
    Ok(checked)
}

/// Appends a step to a `created` event; its payload is checked against its type at once, and
/// the references it holds are claimed (refused if another step holds one).
pub fn add_step(
    event_id: Uuid,
    spec: &StepSpec,
    payload: pgrx::pg_sys::Datum,
    default_attempts: u32,
) -> Result<Uuid, CteError> {
    reentry::refuse_if_driving(event_id, "add a transaction to")?;
    event_allows(events::lock_event(event_id)?.status, EventAsk::AddStep)?;
    let checked = checked_step(spec, default_attempts)?;
    let (steps, payload_bytes) = events::steps_size(event_id);
    if steps >= EVENT_STEPS_MAX {
        return Err(CteError::LimitExceeded {
            what: "transactions in one event",
            value: steps + 1,
            limit: EVENT_STEPS_MAX,
        });
    }
    let payload_bytes = payload_bytes.saturating_add(spec.payload_bytes);
    if payload_bytes > EVENT_PAYLOAD_BYTES_MAX {
        return Err(CteError::LimitExceeded {
            what: "payload bytes of one event",
            value: payload_bytes,
            limit: EVENT_PAYLOAD_BYTES_MAX,
        });
    }
    let step_id = new_id();
    claim_references(&checked.references, step_id)?;
    let step = NewStep {
        id: step_id,
        name: spec.name,
        description: spec.description,
        step_type: spec.type_name,
        order: spec.order,
        payload,
        payload_bytes: spec.payload_bytes,
        reference: checked.reference.as_deref(),
        attempts_max: i32::try_from(checked.attempts_max).unwrap_or(1),
    };
    events::add_step(event_id, &step)
}

/// Claims the references a step holds, before anything of it is written.
pub fn claim_references(held: &[checks::HeldReference], step_id: Uuid) -> Result<(), CteError> {
    let claims: Vec<Claim> = held
        .iter()
        .map(|held| Claim {
            step_type: &held.step_type,
            reference: &held.reference,
            item_id: held.item_id.as_deref(),
        })
        .collect();
    references::claim(&claims, step_id)
}

/// The one posting a one-step shortcut plans.
pub fn only_posting(plan: Option<StepPlan>, step_type: &StepType) -> Result<StepPlan, CteError> {
    let plan = plan.filter(|plan| plan.postings.len() == 1 && plan.items.is_empty());
    assert!(plan.is_some(), "a one-step shortcut plans one posting");
    plan.ok_or_else(|| CteError::StepTypeUnknown { step_type: step_type.as_str().to_string() })
}
