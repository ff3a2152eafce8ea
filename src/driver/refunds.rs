//! Refunds (`cte_reverse_event`, `cte_reverse_capture`): a new event, linked to a completed one
//! (or naming the capture it refunds), whose only step posts the mirror image of the event's
//! postings newest first, or a part of them (ledger/refund.rs decides who gives back what), or
//! of a capture. Racing
//! refunds of one event are one at a time (each locks the refunded event's row first), and each
//! counts what the ones before it returned, so together they never return more than the event
//! moved. `cte_verify_ledger()` checks that again (`refund_exceeds_event`).

use cte_ctel_core::engine::checks::{self, CheckedStep, HeldReference};
use cte_ctel_core::engine::executors::{StepPlan, StepType};
use cte_ctel_core::engine::EventStatus;
use cte_ctel_core::ledger::refund::{self, RefundLeg};
use cte_ctel_core::ledger::Posting;
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
    /// Part of the event; `None`: all that is left to refund (or the legs' sum).
    pub amount: Option<&'a str>,
    /// Carried by the refund's entries, and unique among refunds: the same request again
    /// (same event, same amount, same legs) is a replay and returns the first refund; another
    /// request under it is an `idempotency_conflict`.
    pub reference: Option<&'a str>,
    /// The parts of a partial refund, named by the caller (each payee, and the payer it goes
    /// back to where there are several); `None`: in proportion.
    pub legs: Option<&'a [RefundLeg]>,
    /// The legs as JSON, as stored on the refund's step (compared by a replay).
    pub legs_json: Option<&'a str>,
}

/// The refund's postings, planned by the core from the event's postings, their one currency
/// and what earlier refunds took back.
fn plan(event_id: Uuid, asked: &Refund, original: &[Posting]) -> Result<Vec<Posting>, CteError> {
    let codes: Vec<&str> = original.iter().map(|posting| posting.currency.as_str()).collect();
    let currency = match codes.split_first() {
        Some((first, rest)) if rest.iter().all(|code| code == first) => {
            Some(ledger::currency(first)?)
        }
        _ => None,
    };
    let refunded = refund::Refunded {
        total: postings::refunded_of(event_id),
        by_account: postings::refunded_by_account(event_id),
    };
    let ask = refund::RefundAsk { amount: asked.amount, legs: asked.legs };
    refund::plan(&event_id.to_string(), original, currency.as_ref(), &refunded, ask)
}

/// The refund already made under the asked reference, when it was the same request (same
/// event, same amount: `None` and an amount are different requests, same legs); the reason,
/// free text, does not count.
fn replayed(asked: &Refund) -> Result<Option<Uuid>, CteError> {
    let Some(reference) = asked.reference else {
        return Ok(None);
    };
    let found = events::refund_by_reference(StepType::Refund.as_str(), reference, asked.legs_json);
    let Some((refund, refund_of, amount, same_legs)) = found else {
        return Ok(None);
    };
    let same = same_amount(asked.amount, amount.as_deref()) && same_legs;
    if refund_of == Some(asked.event_id) && same {
        return Ok(Some(refund));
    }
    let describe = |event: Option<Uuid>, amount: Option<&str>| {
        let event = event.map_or("an event".to_string(), |event| format!("event {event}"));
        format!("a refund of {} of {event}", amount.unwrap_or("all that was left"))
    };
    let other_legs = if same_legs { "" } else { " with other legs" };
    Err(CteError::IdempotencyConflict {
        key: reference.to_string(),
        held: describe(refund_of, amount.as_deref()),
        requested: describe(Some(asked.event_id), asked.amount) + other_legs,
        original: format!("refund event {refund}"),
    })
}

/// Refunds a completed event; returns the refund event's id.
pub fn reverse_event(asked: &Refund, ctx: &Context) -> Result<Uuid, CteError> {
    let event_id = asked.event_id;
    checks::note(asked.reason, "reason")?;
    reentry::refuse_if_driving(event_id, "refund")?;
    let event = events::lock_event(event_id)?;
    // Under the event's lock, so a racing refund with the same reference has committed (a
    // replay) or rolled back (its key is free again).
    if let Some(first) = replayed(asked)? {
        return Ok(first);
    }
    let status = event.status;
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
    let legs: Option<serde_json::Value> =
        asked.legs_json.map(serde_json::from_str).transpose().ok().flatten();
    let payload = json!({
        "event_id": event_id.to_string(), "amount": asked.amount, "reason": asked.reason,
        "reference": asked.reference, "legs": legs,
    });
    let posted = post_refund(refunds, &payload, asked.reference, asked.reason, Some(event_id), ctx);
    match posted {
        // A refund of another event took the reference while this one waited for its claim
        // (each holds its own event's lock): now committed, it is read as any holder is.
        Err(CteError::DuplicateReference { .. }) if asked.reference.is_some() => {
            replayed(asked).and_then(|first| first.ok_or_else(reference_taken))
        }
        other => other,
    }
}

fn reference_taken() -> CteError {
    CteError::TransitionNotAllowed { what: "refund reference", from: "taken", input: "refund" }
}

/// Posts a refund's postings as a new, completed one-step event (step type `wallet.refund`,
/// its reference claimed), linked to the event it refunds if any; returns its id.
fn post_refund(
    refunds: Vec<Posting>,
    payload: &serde_json::Value,
    reference: Option<&str>,
    reason: &str,
    refund_of: Option<Uuid>,
    ctx: &Context,
) -> Result<Uuid, CteError> {
    let step_type = StepType::Refund;
    let references = reference
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
        reference: reference.map(str::to_string),
        attempts_max: 1,
        references,
    };
    let plan = StepPlan { postings: refunds, items: Vec::new(), batch_id: None };
    let event = OneStep { name: "refund", description: Some(reason), refund_of, metadata: None };
    fast::completed_event(&checked, plan, &payload.to_string(), &event, ctx)
}

/// What a refund of a lien's capture asks for (`cte_reverse_capture`).
pub struct CaptureRefund<'a> {
    /// The capture's posting id, as `ctel_capture_lien` returned it.
    pub capture_id: Uuid,
    pub reason: &'a str,
    /// Part of what the capture moved; `None`: all that is left to refund.
    pub amount: Option<&'a str>,
    pub reference: Option<&'a str>,
}

/// Refunds a lien's capture: the destination gives back (part of) what it received, to the
/// lien's account. The refunds of one capture never return more than it moved: they are made
/// one at a time under the lien's row lock, and each counts what the ones before returned.
pub fn reverse_capture(asked: &CaptureRefund, ctx: &Context) -> Result<Uuid, CteError> {
    checks::note(asked.reason, "reason")?;
    let capture_id = asked.capture_id;
    let Some((lien_id, capture)) = postings::capture_posting(capture_id) else {
        return Err(CteError::TransactionUnknown {
            transaction_id: format!("capture {capture_id}"),
        });
    };
    // The lien's row orders the refunds of its captures (and a replay after its twin).
    crate::store::liens::lock(lien_id, LockWait::Wait)?;
    if let Some(reference) = asked.reference {
        let found = events::refund_by_reference(StepType::Refund.as_str(), reference, None);
        if let Some((first, _, amount, _)) = found {
            let same = postings::refund_of_capture(first) == Some(capture_id)
                && same_amount(asked.amount, amount.as_deref());
            if same {
                return Ok(first);
            }
            return Err(CteError::IdempotencyConflict {
                key: reference.to_string(),
                held: format!("a refund of {}", amount.as_deref().unwrap_or("all that was left")),
                requested: format!(
                    "a refund of {} of capture {capture_id}",
                    asked.amount.unwrap_or("all that was left")
                ),
                original: format!("refund event {first}"),
            });
        }
    }
    let refunded = postings::refunded_of_capture(capture_id);
    let currency = ledger::currency(&capture.currency)?;
    let target = format!("capture {capture_id}");
    let part = refund::part_of(&target, &capture, &currency, refunded, asked.amount)?;
    let payload = json!({
        "capture_id": capture_id.to_string(), "amount": asked.amount, "reason": asked.reason,
        "reference": asked.reference,
    });
    post_refund(vec![part], &payload, asked.reference, asked.reason, None, ctx)
}

/// Whether two refund amounts (as asked; `None`: all that was left) are the same request.
fn same_amount(asked: Option<&str>, first: Option<&str>) -> bool {
    let number = |text: &str| Decimal::from_str_exact(text).ok();
    match (asked, first) {
        (None, None) => true,
        (Some(asked), Some(first)) => number(asked).is_some() && number(asked) == number(first),
        _ => false,
    }
}
