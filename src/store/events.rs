//! Events and steps in SQL: create, add, load under the event's row lock, save, and record
//! every status change in `cte_event_history` with a `NOTIFY cte_events`.

use std::cell::OnceCell;

use cte_ctel_core::engine::executors::StepPlan;
use cte_ctel_core::engine::{Change, EventStatus, StepState, StepStatus};
use cte_ctel_core::CteError;
use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};
use serde_json::{json, Value};

use super::{run_cached, select_one, spi, update_one};
use crate::gucs;

/// An event as the driver needs it.
pub struct EventRow {
    pub id: Uuid,
    pub status: EventStatus,
}

/// A step as the driver needs it.
#[derive(Clone)]
pub struct StepRow {
    pub id: Uuid,
    pub event_id: Uuid,
    pub name: String,
    pub step_type: String,
    pub payload: Value,
    pub result: Option<Value>,
    pub state: StepState,
    /// The last failure: its SQLSTATE (none when the application reported it) and text.
    pub error: Option<(Option<String>, String)>,
    /// A built-in step's plan, made once per drive (pre-lock and execution both need it).
    pub plan: OnceCell<StepPlan>,
}

const EVENT_BY_KEY: &str = "SELECT id, name FROM cte_ctel.cte_events WHERE idempotency_key = $1";

const EVENT_INSERT: &str = "
    INSERT INTO cte_ctel.cte_events (name, description, timeout, metadata, idempotency_key)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id";

const TIMEOUT_VALID: &str = "SELECT $1 > interval '0' AND $1 <= interval '30 days'";

/// Creates an event, or returns the one an idempotency key already names (if its name matches).
pub fn create(
    name: &str,
    description: Option<&str>,
    timeout: Interval,
    metadata: Option<Value>,
    idempotency_key: Option<&str>,
) -> Result<Uuid, CteError> {
    let valid: Option<bool> = select_one(TIMEOUT_VALID, &[timeout.into()]);
    if valid != Some(true) {
        return Err(CteError::TimeoutInvalid {
            timeout: timeout.to_string(),
            timeout_max: "30 days",
        });
    }
    let args = [
        name.into(),
        description.into(),
        timeout.into(),
        metadata.map(JsonB).into(),
        idempotency_key.into(),
    ];
    let inserted: Option<Uuid> = Spi::connect_mut(|client| update_one(client, EVENT_INSERT, &args));
    if let Some(id) = inserted {
        record_created(id);
        return Ok(id);
    }
    // The key is taken (ON CONFLICT waited for its owner to commit): same name, same event.
    let key = idempotency_key.unwrap_or_default();
    let existing = Spi::connect(|client| {
        let table = spi(client.select(EVENT_BY_KEY, Some(1), &[key.into()]), EVENT_BY_KEY);
        let row = table.first();
        (spi(row.get::<Uuid>(1), EVENT_BY_KEY), spi(row.get::<String>(2), EVENT_BY_KEY))
    });
    match existing {
        (Some(id), Some(existing_name)) if existing_name == name => Ok(id),
        (Some(_), Some(existing_name)) => Err(CteError::IdempotencyConflict {
            key: key.to_string(),
            name: existing_name,
            requested: name.to_string(),
        }),
        _ => panic!("idempotency key {key:?} conflicted but names no event"),
    }
}

const EVENT_LOCK: &str = "SELECT status FROM cte_ctel.cte_events WHERE id = $1 FOR UPDATE";

/// Locks an event's row for the rest of the transaction and reads it: every change to an
/// event and its steps happens under this lock, so two sessions never drive one event at once.
pub fn lock(event_id: Uuid) -> Result<EventRow, CteError> {
    let status: Option<String> =
        Spi::connect_mut(|client| update_one(client, EVENT_LOCK, &[event_id.into()]));
    let Some(status) = status else {
        return Err(CteError::EventUnknown { event_id: event_id.to_string() });
    };
    let status = EventStatus::parse(&status);
    assert!(status.is_some(), "a CHECK keeps event statuses known");
    Ok(EventRow { id: event_id, status: status.unwrap_or(EventStatus::Failed) })
}

const STEPS_OF_EVENT: &str = "
    SELECT id, name, type, payload, result, status, attempts, max_attempts,
           (extract(epoch FROM next_attempt_at) * 1000)::bigint, error_sqlstate, error
      FROM cte_ctel.cte_transactions WHERE event_id = $1 ORDER BY \"order\"";

/// The steps of an event, in order.
pub fn steps(event_id: Uuid) -> Vec<StepRow> {
    Spi::connect_mut(|client| {
        let table = run_cached(client, STEPS_OF_EVENT, &[event_id.into()], false);
        table.map(|row| step_row(&row, event_id)).collect()
    })
}

fn step_row(row: &pgrx::spi::SpiHeapTupleData, event_id: Uuid) -> StepRow {
    let get_text = |ordinal| spi(row.get::<String>(ordinal), STEPS_OF_EVENT).unwrap_or_default();
    let status = StepStatus::parse(&get_text(6));
    assert!(status.is_some(), "a CHECK keeps step statuses known");
    let count = |ordinal| spi(row.get::<i32>(ordinal), STEPS_OF_EVENT).unwrap_or(0);
    let error = spi(row.get::<String>(11), STEPS_OF_EVENT)
        .map(|message| (spi(row.get::<String>(10), STEPS_OF_EVENT), message));
    StepRow {
        id: spi(row.get::<Uuid>(1), STEPS_OF_EVENT).unwrap_or(Uuid::from_bytes([0; 16])),
        event_id,
        name: get_text(2),
        step_type: get_text(3),
        payload: spi(row.get::<JsonB>(4), STEPS_OF_EVENT).map_or(Value::Null, |JsonB(v)| v),
        result: spi(row.get::<JsonB>(5), STEPS_OF_EVENT).map(|JsonB(v)| v),
        state: StepState {
            status: status.unwrap_or(StepStatus::Failed),
            attempts: u32::try_from(count(7)).unwrap_or(0),
            attempts_max: u32::try_from(count(8)).unwrap_or(1),
            next_attempt_at_ms: spi(row.get::<i64>(9), STEPS_OF_EVENT),
        },
        error,
        plan: OnceCell::new(),
    }
}

const STEP_INSERT: &str = "
    INSERT INTO cte_ctel.cte_transactions
           (event_id, name, description, type, \"order\", payload, reference, max_attempts)
    VALUES ($1, $2, $3, $4,
            COALESCE($5, (SELECT COALESCE(max(\"order\"), 0) + 1
                            FROM cte_ctel.cte_transactions WHERE event_id = $1)),
            $6, $7, $8)
    ON CONFLICT (event_id, \"order\") DO NOTHING
    RETURNING id";

const REFERENCE_TAKEN: &str = "
    SELECT EXISTS (SELECT 1 FROM cte_ctel.cte_transactions
                    WHERE type = $1 AND reference = $2 AND status <> 'failed')";

/// A step to add to an event, already checked.
pub struct NewStep<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub step_type: &'a str,
    pub order: Option<i32>,
    pub payload: Value,
    pub reference: Option<String>,
    pub attempts_max: i32,
}

/// Refuses a reference already used by a step of the same type that did not fail. Checked
/// here for a clear message; a unique index holds it against races.
pub fn check_reference(step_type: &str, reference: &str) -> Result<(), CteError> {
    let taken: Option<bool> = select_one(REFERENCE_TAKEN, &[step_type.into(), reference.into()]);
    if taken == Some(true) {
        return Err(CteError::DuplicateReference {
            step_type: step_type.to_string(),
            reference: reference.to_string(),
        });
    }
    Ok(())
}

/// Appends a step to a locked `created` event.
pub fn add_step(event_id: Uuid, step: NewStep) -> Result<Uuid, CteError> {
    if let Some(reference) = &step.reference {
        check_reference(step.step_type, reference)?;
    }
    let args = [
        event_id.into(),
        step.name.into(),
        step.description.into(),
        step.step_type.into(),
        step.order.into(),
        JsonB(step.payload).into(),
        step.reference.clone().into(),
        step.attempts_max.into(),
    ];
    let id: Option<Uuid> = Spi::connect_mut(|client| update_one(client, STEP_INSERT, &args));
    id.ok_or(CteError::OrderTaken {
        event_id: event_id.to_string(),
        order: i64::from(step.order.unwrap_or_default()),
    })
}

const STEP_COUNT: &str = "SELECT count(*) FROM cte_ctel.cte_transactions WHERE event_id = $1";

pub fn step_count(event_id: Uuid) -> i64 {
    select_one(STEP_COUNT, &[event_id.into()]).unwrap_or(0)
}

const STEP_EVENT: &str = "SELECT event_id FROM cte_ctel.cte_transactions WHERE id = $1";

/// The event a step belongs to.
pub fn event_of_step(step_id: Uuid) -> Result<Uuid, CteError> {
    let event: Option<Uuid> = select_one(STEP_EVENT, &[step_id.into()]);
    event.ok_or_else(|| CteError::TransactionUnknown { transaction_id: step_id.to_string() })
}

const STEPS_SAVE: &str = "
    UPDATE cte_ctel.cte_transactions t
       SET status = s.status, attempts = s.attempts,
           next_attempt_at = 'epoch'::timestamptz + s.next_ms * interval '1 millisecond',
           result = s.result, error_sqlstate = s.sqlstate, error = s.error
      FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[], $5::jsonb[], $6::text[],
                  $7::text[]) AS s(id, status, attempts, next_ms, result, sqlstate, error)
     WHERE t.id = s.id";

/// Writes the steps' states back, in one statement.
pub fn save_steps(steps: &[&StepRow]) {
    if steps.is_empty() {
        return;
    }
    let ids: Vec<Uuid> = steps.iter().map(|step| step.id).collect();
    let statuses: Vec<&str> = steps.iter().map(|step| step.state.status.as_str()).collect();
    let attempts: Vec<i32> =
        steps.iter().map(|step| i32::try_from(step.state.attempts).unwrap_or(i32::MAX)).collect();
    let next_ms: Vec<Option<i64>> =
        steps.iter().map(|step| step.state.next_attempt_at_ms).collect();
    let results: Vec<Option<JsonB>> =
        steps.iter().map(|step| step.result.clone().map(JsonB)).collect();
    let sqlstates: Vec<Option<String>> =
        steps.iter().map(|step| step.error.as_ref().and_then(|(code, _)| code.clone())).collect();
    let messages: Vec<Option<String>> =
        steps.iter().map(|step| step.error.as_ref().map(|(_, message)| message.clone())).collect();
    let args = [
        ids.into(),
        statuses.into(),
        attempts.into(),
        next_ms.into(),
        results.into(),
        sqlstates.into(),
        messages.into(),
    ];
    Spi::connect_mut(|client| {
        run_cached(client, STEPS_SAVE, &args, true);
    });
}

const EVENT_SAVE: &str = "
    UPDATE cte_ctel.cte_events
       SET status = $2,
           started_at = CASE WHEN $5 THEN now() ELSE started_at END,
           deadline = CASE WHEN $5 THEN now() + timeout ELSE deadline END,
           finished_at = CASE WHEN $2 IN ('completed', 'compensated', 'failed') THEN now() END,
           error_sqlstate = COALESCE($3, error_sqlstate), error = COALESCE($4, error)
     WHERE id = $1";

/// Writes an event's status (and the error that decided its fate) back; `started` says this
/// call started it, which sets its start time and deadline.
pub fn save_event(
    event_id: Uuid,
    status: EventStatus,
    started: bool,
    sqlstate: Option<&str>,
    error: Option<&str>,
) {
    let args =
        [event_id.into(), status.as_str().into(), sqlstate.into(), error.into(), started.into()];
    Spi::connect_mut(|client| {
        run_cached(client, EVENT_SAVE, &args, true);
    });
}

// Both the history insert and the announcement of each change: sent now ($6 false) or queued
// for the maintenance pass ($6 true, `cte_ctel.notify_by_worker`). The notifications go out in
// the order of the changes, which is the order of their history ids.
const HISTORY_INSERT: &str = concat!(
    "
    WITH change AS (
        INSERT INTO cte_ctel.cte_event_history
               (event_id, transaction_id, old_status, new_status, actor, reason)
        SELECT $1, c.transaction_id, c.old_status, c.new_status, session_user, $5
          FROM unnest($2::uuid[], $3::text[], $4::text[]) WITH ORDINALITY
                   AS c(transaction_id, old_status, new_status, n)
         ORDER BY c.n
        RETURNING id, event_id, transaction_id, old_status, new_status),
    queued AS (
        INSERT INTO cte_ctel.cte_notify_queue (history_ids)
        SELECT pg_catalog.array_agg(id ORDER BY id) FROM change HAVING $6 AND count(*) > 0)
    ",
    notify_changes!(),
    "
      FROM change WHERE NOT $6"
);

/// The first history entry of an event (no status → created), announced like every other.
fn record_created(event_id: Uuid) {
    record_all(event_id, &[(None, None, EventStatus::Created.as_str())], None);
}

/// Records each change in the history and announces it on channel `cte_events`, in one
/// statement.
pub fn record(event_id: Uuid, steps: &[StepRow], changes: &[Change], reason: Option<&str>) {
    let rows: Vec<_> = changes
        .iter()
        .map(|change| match change {
            Change::Event { from, to } => (None, Some(from.as_str()), to.as_str()),
            Change::Step { index, from, to } => {
                (Some(steps[*index].id), Some(from.as_str()), to.as_str())
            }
        })
        .collect();
    record_all(event_id, &rows, reason);
}

fn record_all(
    event_id: Uuid,
    changes: &[(Option<Uuid>, Option<&str>, &str)],
    reason: Option<&str>,
) {
    if changes.is_empty() {
        return;
    }
    let steps: Vec<Option<Uuid>> = changes.iter().map(|change| change.0).collect();
    let from: Vec<Option<String>> =
        changes.iter().map(|change| change.1.map(str::to_string)).collect();
    let to: Vec<String> = changes.iter().map(|change| change.2.to_string()).collect();
    let args = [
        event_id.into(),
        steps.into(),
        from.into(),
        to.into(),
        reason.into(),
        gucs::notify_by_worker().into(),
    ];
    Spi::connect_mut(|client| {
        run_cached(client, HISTORY_INSERT, &args, true);
    });
}

/// A step's result for a batch or a posting step: the postings it made, by item for a batch.
pub fn postings_result(posting_ids: &[Uuid]) -> Value {
    json!({ "postings": posting_ids.iter().map(ToString::to_string).collect::<Vec<_>>() })
}
