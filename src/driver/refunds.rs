//! Refunds (`cte_reverse_event`): a new event, linked to a completed one, whose only step posts
//! the mirror image of the completed event's postings, or of part of its one posting. Racing
//! refunds of one event are one at a time (each locks the refunded event's row first), and each
//! counts what the ones before it returned, so together they never return more than the event
//! moved. `cte_verify_ledger()` checks that again (`refund_exceeds_event`).

use cte_ctel_core::engine::checks::{self, CheckedStep, HeldReference};
use cte_ctel_core::engine::executors::{StepPlan, StepType};
use cte_ctel_core::engine::EventStatus;
use cte_ctel_core::ledger::Posting;
use cte_ctel_core::money::Amount;
use cte_ctel_core::CteError;
use pgrx::Uuid;
use rust_decimal::Decimal;
use serde_json::json;

use super::fast::{self, OneStep};
use super::{reentry, Context};
use crate::store::{events, ledger, postings, LockWait};

/// What a refund asks for.
pub struct Refund<'a> {
    pub event_id: Uuid,
    pub reason: &'a str,
    /// Part of a one-posting event's amount; `None`: all that is left to refund.
    pub amount: Option<&'a str>,
    /// Carried by the refund's entries, and unique among refunds: the same request again
    /// (same event, same amount) is a replay and returns the first refund; another request
    /// under it is an `idempotency_conflict`.
    pub reference: Option<&'a str>,
}

/// The refund's postings: all of the event's postings reversed, or a part of its one posting.
fn plan(event_id: Uuid, asked: &Refund, original: &[Posting]) -> Result<Vec<Posting>, CteError> {
    let refunded = postings::refunded_of(event_id);
    let left_of = |moved: Decimal| moved.checked_sub(refunded).unwrap_or_default();
    let exceeds = |amount: String, left: Decimal| CteError::RefundExceedsEvent {
        event_id: event_id.to_string(),
        amount,
        left: if left.is_zero() { "nothing".to_string() } else { left.to_string() },
    };
    let asked_for = asked.amount.unwrap_or("the rest").to_string();
    match (original, asked.amount) {
        ([], _) => Err(exceeds(asked_for, Decimal::ZERO)),
        ([only], amount) if only.entries.len() == 2 => {
            let left = left_of(only.moved());
            let currency = ledger::currency(&only.currency)?;
            let part = match amount {
                Some(text) => Amount::parse(text, &currency)?.value(),
                None => left,
            };
            if part.is_zero() || part > left {
                let asked_for = if amount.is_some() { part.to_string() } else { asked_for };
                return Err(exceeds(asked_for, left));
            }
            Ok(vec![only.refund(Some(part))])
        }
        (_, Some(_)) => Err(CteError::RefundPartialUnsupported {
            event_id: event_id.to_string(),
            why: "only an event of one posting between two accounts is refunded in part",
        }),
        // Newest first, as compensation runs: money that went on from an account it first
        // reached (buyer -> escrow -> seller) comes back to it before it has to give it back.
        (all, None) if refunded.is_zero() => {
            Ok(all.iter().rev().map(|posting| posting.refund(None)).collect())
        }
        (_, None) => Err(exceeds(asked_for, Decimal::ZERO)),
    }
}

/// The refund already made under the asked reference, when it was the same request (same
/// event, same amount: `None` and an amount are different requests); the reason, free text,
/// does not count.
fn replayed(asked: &Refund) -> Result<Option<Uuid>, CteError> {
    let Some(reference) = asked.reference else {
        return Ok(None);
    };
    let Some((refund, refund_of, amount)) =
        events::refund_by_reference(StepType::Refund.as_str(), reference)
    else {
        return Ok(None);
    };
    let number = |text: Option<&str>| text.map(Decimal::from_str_exact).and_then(Result::ok);
    let same_amount = match (asked.amount, amount.as_deref()) {
        (None, None) => true,
        (Some(asked), Some(first)) => {
            number(Some(asked)).is_some_and(|a| number(Some(first)) == Some(a))
        }
        _ => false,
    };
    if refund_of == Some(asked.event_id) && same_amount {
        return Ok(Some(refund));
    }
    let describe = |event: Option<Uuid>, amount: Option<&str>| {
        let event = event.map_or("an event".to_string(), |event| format!("event {event}"));
        format!("a refund of {} of {event}", amount.unwrap_or("all that was left"))
    };
    Err(CteError::IdempotencyConflict {
        key: reference.to_string(),
        held: describe(refund_of, amount.as_deref()),
        requested: describe(Some(asked.event_id), asked.amount),
        original: format!("refund event {refund}"),
    })
}

/// Refunds a completed event; returns the refund event's id.
pub fn reverse_event(asked: &Refund, ctx: &Context) -> Result<Uuid, CteError> {
    let event_id = asked.event_id;
    checks::note(asked.reason, "reason")?;
    reentry::refuse_if_driving(event_id, "refund")?;
    let event = events::lock(event_id, LockWait::Wait)?;
    // Under the event's lock, so a racing refund with the same reference has committed (a
    // replay) or rolled back (its key is free again).
    if let Some(first) = replayed(asked)? {
        return Ok(first);
    }
    let status = event.map_or(EventStatus::Created, |event| event.status);
    if status != EventStatus::Completed {
        let from = status.as_str();
        return Err(CteError::TransitionNotAllowed { what: "event", from, input: "refund" });
    }
    if events::refund_of(event_id).is_some() {
        let from = "a refund";
        return Err(CteError::TransitionNotAllowed { what: "event", from, input: "refund" });
    }
    let original = postings::postings_of_event(event_id);
    let refunds = plan(event_id, asked, &original)?;
    let step_type = StepType::Refund;
    let payload = json!({
        "event_id": event_id.to_string(), "amount": asked.amount, "reason": asked.reason,
        "reference": asked.reference,
    })
    .to_string();
    let references = asked
        .reference
        .map(|reference| HeldReference {
            step_type: step_type.as_str().to_string(),
            reference: reference.to_string(),
            item_id: None,
        })
        .into_iter()
        .collect();
    let checked = CheckedStep {
        step_type,
        plan: None,
        reference: asked.reference.map(str::to_string),
        attempts_max: 1,
        references,
    };
    let plan = StepPlan { postings: refunds, items: Vec::new(), batch_id: None };
    let event =
        OneStep { name: "refund", description: Some(asked.reason), refund_of: Some(event_id) };
    fast::completed_event(&checked, plan, &payload, &event, ctx)
}
