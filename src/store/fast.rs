//! The fast path of the one-step shortcuts (`cte_transfer`, `cte_deposit`): a single built-in
//! posting with one attempt has only two possible ends, so instead of driving the saga step by
//! step it posts, then writes in one statement the rows the saga would have ended with — the
//! event and its step `completed`, the five history rows and their notifications (or their place in the notify queue). A refusal
//! raises before anything is written, as the saga's rollback would leave nothing either.

use cte_ctel_core::ledger::Posting;
use cte_ctel_core::CteError;
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};
use serde_json::Value;

use super::{events, ledger, new_id, update_one};
use crate::gucs;

const COMPLETED_EVENT: &str = concat!(
    "
    WITH event AS (
        INSERT INTO cte_ctel.cte_events (id, name, status, timeout, started_at, deadline, finished_at)
        VALUES ($1, $3, 'completed', interval '5 minutes', now(), now() + interval '5 minutes', now())),
    step AS (
        INSERT INTO cte_ctel.cte_transactions
               (id, event_id, name, type, \"order\", payload, reference, status, attempts,
                max_attempts, result)
        VALUES ($2, $1, $3, $3, 1, $4, $5, 'completed', 1, 1, $6)),
    changes (n, transaction_id, old_status, new_status) AS (
        VALUES (1, NULL::uuid, NULL, 'created'), (2, NULL, 'created', 'running'),
               (3, $2, 'pending', 'running'), (4, $2, 'running', 'completed'),
               (5, NULL, 'running', 'completed')),
    history AS (
        INSERT INTO cte_ctel.cte_event_history (event_id, transaction_id, old_status, new_status, actor)
        SELECT $1, transaction_id, old_status, new_status, session_user FROM changes ORDER BY n
        RETURNING id),
    queued AS (
        INSERT INTO cte_ctel.cte_notify_queue (history_ids)
        SELECT pg_catalog.array_agg(id ORDER BY id) FROM history HAVING $7)
    ",
    notify_changes!(),
    "
      FROM (SELECT $1::uuid AS event_id, transaction_id, old_status, new_status
              FROM changes WHERE NOT $7 ORDER BY n) ordered"
);

/// Posts a one-step event's only posting and records the event as completed; returns its id.
pub fn one_step_event(
    step_type: &str,
    payload: Value,
    posting: &Posting,
    reference: Option<&str>,
) -> Result<Uuid, CteError> {
    if let Some(reference) = reference {
        events::check_reference(step_type, reference)?;
    }
    let (event_id, step_id) = (new_id(), new_id());
    let posting_id = ledger::post(posting, reference, Some(step_id))?;
    let result = events::postings_result(&[posting_id]);
    let by_worker = gucs::notify_by_worker();
    let args = [
        event_id.into(),
        step_id.into(),
        step_type.into(),
        JsonB(payload).into(),
        reference.into(),
        JsonB(result).into(),
        by_worker.into(),
    ];
    let notified: Option<i64> =
        Spi::connect_mut(|client| update_one(client, COMPLETED_EVENT, &args));
    let expected = if by_worker { 0 } else { 5 };
    assert_eq!(notified, Some(expected), "five status changes, announced now or queued");
    Ok(event_id)
}
