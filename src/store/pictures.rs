//! What a picture of an event (`cte_event_graph`) shows, read in one statement.

use cte_ctel_core::engine::graph::{EventPicture, LienPicture, StepPicture};
use cte_ctel_core::CteError;
use pgrx::{JsonB, Uuid};
use serde_json::Value;

use super::select_one;

const PICTURE: &str = "
    SELECT jsonb_build_object(
        'name', e.name, 'status', e.status, 'created_at', e.created_at::text,
        'started_at', e.started_at::text, 'finished_at', e.finished_at::text, 'error', e.error,
        'steps', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                      'order', t.\"order\", 'name', t.name, 'type', t.type, 'status', t.status,
                      'attempts', t.attempts, 'next_attempt_at', t.next_attempt_at::text)
                      ORDER BY t.\"order\"), '[]')
                    FROM cte_ctel.cte_transactions t WHERE t.event_id = e.id),
        'liens', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                      'amount', l.amount::text, 'currency', l.currency, 'account_id', l.account_id,
                      'status', l.status, 'step_order', t.\"order\") ORDER BY l.created_at, l.id), '[]')
                    FROM cte_ctel.cte_liens l
                    LEFT JOIN cte_ctel.cte_transactions t ON t.id = l.transaction_id
                   WHERE l.event_id = e.id))
      FROM cte_ctel.cte_events e WHERE e.id = $1";

fn text(value: &Value, field: &str) -> Option<String> {
    value.get(field).and_then(Value::as_str).map(str::to_string)
}

/// A field the query always builds (from a NOT NULL column, or a list coalesced to `[]`).
#[track_caller]
fn present<T>(value: Option<T>, field: &str) -> T {
    super::required(value, PICTURE, field)
}

fn number(value: &Value, field: &str) -> i64 {
    present(value.get(field).and_then(Value::as_i64), field)
}

/// The event's picture data.
pub fn event(event_id: Uuid) -> Result<EventPicture, CteError> {
    let read: Option<JsonB> = select_one(PICTURE, &[event_id.into()]);
    let Some(JsonB(read)) = read else {
        return Err(CteError::EventUnknown { event_id: event_id.to_string() });
    };
    let list = |field: &str| present(read.get(field).and_then(Value::as_array), field).clone();
    let steps = list("steps")
        .iter()
        .map(|step| StepPicture {
            order: number(step, "order"),
            name: present(text(step, "name"), "name"),
            step_type: present(text(step, "type"), "type"),
            status: present(text(step, "status"), "status"),
            attempts: number(step, "attempts"),
            next_attempt_at: text(step, "next_attempt_at"),
        })
        .collect();
    let liens = list("liens")
        .iter()
        .map(|lien| LienPicture {
            amount: present(text(lien, "amount"), "amount"),
            currency: present(text(lien, "currency"), "currency"),
            account_id: present(text(lien, "account_id"), "account_id"),
            status: present(text(lien, "status"), "status"),
            step_order: lien.get("step_order").and_then(Value::as_i64),
        })
        .collect();
    Ok(EventPicture {
        name: present(text(&read, "name"), "name"),
        status: present(text(&read, "status"), "status"),
        created_at: present(text(&read, "created_at"), "created_at"),
        started_at: text(&read, "started_at"),
        finished_at: text(&read, "finished_at"),
        error: text(&read, "error"),
        steps,
        liens,
    })
}
