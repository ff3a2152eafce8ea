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

fn number(value: &Value, field: &str) -> i64 {
    value.get(field).and_then(Value::as_i64).unwrap_or(0)
}

/// The event's picture data.
pub fn event(event_id: Uuid) -> Result<EventPicture, CteError> {
    let read: Option<JsonB> = select_one(PICTURE, &[event_id.into()]);
    let Some(JsonB(read)) = read else {
        return Err(CteError::EventUnknown { event_id: event_id.to_string() });
    };
    let list = |field: &str| read.get(field).and_then(Value::as_array).cloned().unwrap_or_default();
    let steps = list("steps")
        .iter()
        .map(|step| StepPicture {
            order: number(step, "order"),
            name: text(step, "name").unwrap_or_default(),
            step_type: text(step, "type").unwrap_or_default(),
            status: text(step, "status").unwrap_or_default(),
            attempts: number(step, "attempts"),
            next_attempt_at: text(step, "next_attempt_at"),
        })
        .collect();
    let liens = list("liens")
        .iter()
        .map(|lien| LienPicture {
            amount: text(lien, "amount").unwrap_or_default(),
            currency: text(lien, "currency").unwrap_or_default(),
            account_id: text(lien, "account_id").unwrap_or_default(),
            status: text(lien, "status").unwrap_or_default(),
            step_order: lien.get("step_order").and_then(Value::as_i64),
        })
        .collect();
    Ok(EventPicture {
        name: text(&read, "name").unwrap_or_default(),
        status: text(&read, "status").unwrap_or_default(),
        created_at: text(&read, "created_at").unwrap_or_default(),
        started_at: text(&read, "started_at"),
        finished_at: text(&read, "finished_at"),
        error: text(&read, "error"),
        steps,
        liens,
    })
}
