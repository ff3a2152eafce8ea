//! Events and steps in SQL: create, add, lock and load, save. Status changes are recorded by
//! `changes`; what a step does is decided by the driver.

use cte_ctel_core::engine::executors::StepType;
use cte_ctel_core::engine::{EventStatus, StepState, StepStatus};
use cte_ctel_core::CteError;
use pgrx::datum::{Interval, TimestampWithTimeZone};
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};
use serde_json::Value;

use super::changes::{outbox_args, outbox_columns, Batch};
use super::{required, run_cached, select_one, spi, timestamp, update_one, LockWait, Row};

/// An event as the driver needs it.
pub struct EventRow {
    pub id: Uuid,
    pub status: EventStatus,
    pub deadline_ms: Option<i64>,
    pub timeout_ms: i64,
}

/// A step as the driver needs it. Its payload is not loaded: a drive reads the payloads of
/// the steps it runs, when it runs them.
pub struct StepRow {
    pub id: Uuid,
    pub name: String,
    pub step_type: StepType,
    pub reference: Option<String>,
    pub state: StepState,
    /// A new result to write (JSON text, or NULL), when this drive gave the step one.
    pub result: Option<Option<String>>,
    /// The last failure: its SQLSTATE (none when the application reported it) and text.
    pub error: Option<(Option<String>, String)>,
}

// The event a key names, and whether it was created with the same request (SPEC §9: name,
// description, timeout and metadata; intervals and JSON compared by value).
const EVENT_BY_KEY: &str = "
    SELECT id, name, name = $2 AND description IS NOT DISTINCT FROM $3 AND timeout = $4
                     AND metadata IS NOT DISTINCT FROM $5
      FROM cte_ctel.cte_events WHERE idempotency_key = $1";

// The deadline of an event not yet started is the time by which it must start.
const EVENT_INSERT: &str = "
    INSERT INTO cte_ctel.cte_events
           (id, name, description, timeout, metadata, idempotency_key, deadline)
    VALUES ($6, $1, $2, $3, $4, $5, pg_catalog.statement_timestamp() + $3)
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id";

// Whole milliseconds, as the engine counts them: a finer timeout would be rounded (0.3.0 before:
// '1 microsecond' became 1 ms, '1.5 milliseconds' 1 ms).
const TIMEOUT_VALID: &str = "SELECT $1 >= interval '1 millisecond' AND $1 <= interval '30 days'
                                AND pg_catalog.date_trunc('milliseconds', $1) = $1";

/// Creates an event; returns its id and whether this call created it (an idempotency key
/// may name an existing one, returned if its name matches).
pub fn create(
    name: &str,
    description: Option<&str>,
    timeout: Interval,
    metadata: Option<Value>,
    idempotency_key: Option<&str>,
) -> Result<(Uuid, bool), CteError> {
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
        metadata.clone().map(JsonB).into(),
        idempotency_key.into(),
        super::new_id().into(),
    ];
    let inserted: Option<Uuid> = Spi::connect_mut(|client| update_one(client, EVENT_INSERT, &args));
    if let Some(id) = inserted {
        return Ok((id, true));
    }
    // The key is taken (ON CONFLICT waited for its owner to commit): the same request is a
    // replay of that event, another one a conflict.
    // Only a key can conflict: an insert without one always inserts.
    let key = required(idempotency_key, EVENT_INSERT, "the idempotency key it conflicted on");
    let by_key =
        [key.into(), name.into(), description.into(), timeout.into(), metadata.map(JsonB).into()];
    let existing = Spi::connect(|client| {
        let table = spi(client.select(EVENT_BY_KEY, Some(1), &by_key), EVENT_BY_KEY);
        let row = table.first();
        (
            spi(row.get::<Uuid>(1), EVENT_BY_KEY),
            spi(row.get::<String>(2), EVENT_BY_KEY),
            spi(row.get::<bool>(3), EVENT_BY_KEY),
        )
    });
    match existing {
        (Some(id), Some(_), Some(true)) => Ok((id, false)),
        (Some(id), Some(existing_name), Some(false)) => Err(CteError::IdempotencyConflict {
            key: key.to_string(),
            held: format!("an event called {existing_name:?}"),
            requested: if existing_name == name {
                format!("{name:?} with another description, timeout or metadata")
            } else {
                format!("{name:?}")
            },
            original: format!("event {id}"),
        }),
        _ => panic!("idempotency key {key:?} conflicted but names no event"),
    }
}

macro_rules! event_lock {
    ($mode:literal) => {
        concat!(
            "SELECT status, (extract(epoch FROM deadline) * 1000)::bigint,
                    (extract(epoch FROM timeout) * 1000)::bigint
               FROM cte_ctel.cte_events WHERE id = $1 FOR UPDATE",
            $mode
        )
    };
}
const EVENT_LOCK: &str = event_lock!("");
const EVENT_LOCK_SKIP: &str = event_lock!(" SKIP LOCKED");

/// Locks an event's row for the rest of the transaction, waiting for another session that
/// holds it, and reads it: every change to an event and its steps happens under this lock, so
/// two sessions never drive one event at once. An unknown event is `event_unknown`.
pub fn lock_event(event_id: Uuid) -> Result<EventRow, CteError> {
    let row = locked_row(event_id, EVENT_LOCK);
    row.ok_or_else(|| CteError::EventUnknown { event_id: event_id.to_string() })
}

/// As `lock_event`, without waiting: `None` when another session holds the row (or it is
/// gone), for the worker, which never waits on a session.
pub fn try_lock_event(event_id: Uuid) -> Option<EventRow> {
    locked_row(event_id, EVENT_LOCK_SKIP)
}

fn locked_row(event_id: Uuid, query: &'static str) -> Option<EventRow> {
    let row = Spi::connect_mut(|client| {
        let table = run_cached(client, query, &[event_id.into()], true);
        if table.is_empty() {
            return None;
        }
        let row = table.first();
        let status = required(spi(row.get::<String>(1), query), query, "status");
        Some((status, spi(row.get::<i64>(2), query), spi(row.get::<i64>(3), query)))
    })?;
    let (status, deadline_ms, timeout_ms) = row;
    // A domain keeps event statuses known.
    let status = required(EventStatus::parse(&status), query, "a known event status");
    Some(EventRow { id: event_id, status, deadline_ms, timeout_ms: timeout_ms.unwrap_or(1).max(1) })
}

const STEPS_OF_EVENT: &str = "
    SELECT id, name, type, reference, status, attempts, max_attempts,
           (extract(epoch FROM next_attempt_at) * 1000)::bigint,
           (extract(epoch FROM compensation_requested_at) * 1000)::bigint,
           error_sqlstate, error
      FROM cte_ctel.cte_transactions WHERE event_id = $1 ORDER BY \"order\"";

/// The steps of an event, in order.
pub fn steps(event_id: Uuid) -> Vec<StepRow> {
    Spi::connect_mut(|client| {
        let table = run_cached(client, STEPS_OF_EVENT, &[event_id.into()], false);
        table.map(|row| step_row(&row)).collect()
    })
}

fn step_row(row: &pgrx::spi::SpiHeapTupleData) -> StepRow {
    let row = Row::new(row, STEPS_OF_EVENT);
    let text = |ordinal| row.optional::<String>(ordinal);
    let count = |ordinal, what| {
        let value = row.required::<i32>(ordinal, what);
        // CHECKs keep attempts within 0..=attempts_max and attempts_max at least 1.
        required(u32::try_from(value).ok(), STEPS_OF_EVENT, what)
    };
    let millis = |ordinal| row.optional::<i64>(ordinal);
    // A domain keeps step statuses known.
    let status = StepStatus::parse(&row.required::<String>(5, "status"));
    let status = required(status, STEPS_OF_EVENT, "a known step status");
    // Types were checked when the step was added; one that no longer parses is a custom type,
    // and a custom name the application hosts is that (registered for good: never dropped).
    let type_name: String = row.required(3, "type");
    let step_type = match StepType::parse(&type_name) {
        Ok(StepType::Custom(name)) if super::executors::is_hosted(&name) => StepType::Hosted(name),
        Ok(step_type) => step_type,
        Err(_) => StepType::Custom(type_name),
    };
    let state = StepState {
        kind: step_type.kind(),
        status,
        attempts: count(6, "attempts"),
        attempts_max: count(7, "attempts_max"),
        next_attempt_at_ms: millis(8),
        compensation_requested_at_ms: millis(9),
    };
    StepRow {
        id: row.required(1, "id"),
        name: row.required(2, "name"),
        step_type,
        reference: text(4),
        state,
        result: None,
        error: text(11).map(|message| (text(10), message)),
    }
}

const STEP_PAYLOAD: &str = "SELECT payload::text FROM cte_ctel.cte_transactions WHERE id = $1";

/// A step's payload as JSON text (read when the step runs, never kept for the whole drive).
pub fn payload_text(step_id: Uuid) -> String {
    let text: Option<String> = select_one(STEP_PAYLOAD, &[step_id.into()]);
    required(text, STEP_PAYLOAD, "a step's payload")
}

// The next order is counted in bigint: after a step at order 2147483647 there is none, and no
// row is inserted (rather than a raw "integer out of range").
const STEP_INSERT: &str = "
    INSERT INTO cte_ctel.cte_transactions
           (id, event_id, name, description, type, \"order\", payload, reference, max_attempts,
            payload_bytes)
    SELECT $1, $2, $3, $4, $5, n.next::int, $7, $8, $9, $10
      FROM (SELECT COALESCE($6::bigint, (SELECT COALESCE(max(\"order\"), 0)::bigint + 1
                                            FROM cte_ctel.cte_transactions WHERE event_id = $2))
                   AS next) n
     WHERE n.next <= 2147483647
    ON CONFLICT (event_id, \"order\") DO NOTHING
    RETURNING id";

/// A step to add to an event, already checked.
pub struct NewStep<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub step_type: &'a str,
    pub order: Option<i32>,
    /// The payload, the `jsonb` datum given (written as it is, never parsed again).
    pub payload: pgrx::pg_sys::Datum,
    /// The bytes of its JSON text (what the event's payload bound counts).
    pub payload_bytes: usize,
    pub reference: Option<&'a str>,
    pub attempts_max: i32,
}

/// Appends a step to a locked `created` event.
pub fn add_step(event_id: Uuid, step: &NewStep) -> Result<Uuid, CteError> {
    let args = [
        step.id.into(),
        event_id.into(),
        step.name.into(),
        step.description.into(),
        step.step_type.into(),
        step.order.into(),
        // SAFETY: the jsonb datum of the calling function's argument, alive for the call.
        unsafe { pgrx::datum::DatumWithOid::new(step.payload, pgrx::pg_sys::JSONBOID) },
        step.reference.into(),
        step.attempts_max.into(),
        i32::try_from(step.payload_bytes).unwrap_or(i32::MAX).into(),
    ];
    let id: Option<Uuid> = Spi::connect_mut(|client| update_one(client, STEP_INSERT, &args));
    match (id, step.order) {
        (Some(id), _) => Ok(id),
        (None, Some(order)) => {
            Err(CteError::OrderTaken { event_id: event_id.to_string(), order: i64::from(order) })
        }
        // Under the event's lock an order counted from the last cannot be taken: it ran out.
        (None, None) => Err(CteError::ArgumentOutOfRange {
            argument: "order",
            value: "2147483648 (the one after the event's last step)".to_string(),
            bounds: "at most 2147483647 (give this step an order of its own)".to_string(),
        }),
    }
}

const STEPS_SIZE: &str = "
    SELECT count(*), COALESCE(sum(payload_bytes), 0)::bigint
      FROM cte_ctel.cte_transactions WHERE event_id = $1";

/// How many steps an event has, and the bytes of their payloads in all.
pub fn steps_size(event_id: Uuid) -> (usize, usize) {
    Spi::connect_mut(|client| {
        let table = run_cached(client, STEPS_SIZE, &[event_id.into()], false);
        let row = table.first();
        let count = spi(row.get::<i64>(1), STEPS_SIZE).unwrap_or(0);
        let bytes = spi(row.get::<i64>(2), STEPS_SIZE).unwrap_or(0);
        (usize::try_from(count).unwrap_or(usize::MAX), usize::try_from(bytes).unwrap_or(usize::MAX))
    })
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
           compensation_requested_at =
               'epoch'::timestamptz + s.compensation_ms * interval '1 millisecond',
           result = CASE WHEN s.result_set THEN s.result::jsonb ELSE t.result END,
           error_sqlstate = s.sqlstate, error = s.error
      FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[], $5::bigint[], $6::bool[],
                  $7::text[], $8::text[], $9::text[])
               AS s(id, status, attempts, next_ms, compensation_ms, result_set, result, sqlstate,
                    error)
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
    let compensation_ms: Vec<Option<i64>> =
        steps.iter().map(|step| step.state.compensation_requested_at_ms).collect();
    let result_set: Vec<bool> = steps.iter().map(|step| step.result.is_some()).collect();
    let results: Vec<Option<String>> =
        steps.iter().map(|step| step.result.clone().flatten()).collect();
    let sqlstates: Vec<Option<String>> =
        steps.iter().map(|step| step.error.as_ref().and_then(|(code, _)| code.clone())).collect();
    let messages: Vec<Option<String>> =
        steps.iter().map(|step| step.error.as_ref().map(|(_, message)| message.clone())).collect();
    let args = [
        ids.into(),
        statuses.into(),
        attempts.into(),
        next_ms.into(),
        compensation_ms.into(),
        result_set.into(),
        results.into(),
        sqlstates.into(),
        messages.into(),
    ];
    Spi::connect_mut(|client| {
        run_cached(client, STEPS_SAVE, &args, true);
    });
}

// Times come from the driver's clock (the statement's), so the deadline written is the one the
// saga computed. finished_at is set when the event reaches a finished status, kept while it
// stays in one, and cleared when it leaves (an operator's retry of a failed event).
const EVENT_SAVE: &str = "
    UPDATE cte_ctel.cte_events
       SET status = $2,
           started_at = CASE WHEN $3 THEN $7 ELSE started_at END,
           deadline = 'epoch'::timestamptz + $4 * interval '1 millisecond',
           finished_at = CASE WHEN status = $2 THEN finished_at
                              WHEN $2 IN ('completed', 'compensated', 'failed', 'resolved') THEN $7
                         END,
           error_sqlstate = COALESCE($5, error_sqlstate), error = COALESCE($6, error)
     WHERE id = $1";

/// What a drive writes back to its event.
pub struct EventSave<'a> {
    pub status: EventStatus,
    /// This drive started the event.
    pub started: bool,
    pub deadline_ms: Option<i64>,
    pub error: Option<(Option<&'a str>, &'a str)>,
    pub now_ms: i64,
}

/// Writes an event's status, deadline and the error that decided its fate.
pub fn save_event(event_id: Uuid, save: &EventSave) {
    let now = super::timestamp(save.now_ms);
    let args = [
        event_id.into(),
        save.status.as_str().into(),
        save.started.into(),
        save.deadline_ms.into(),
        save.error.and_then(|(code, _)| code).into(),
        save.error.map(|(_, message)| message).into(),
        now.into(),
    ];
    Spi::connect_mut(|client| {
        run_cached(client, EVENT_SAVE, &args, true);
    });
}

const STEP_DATUMS: &str = "SELECT payload, result FROM cte_ctel.cte_transactions WHERE id = $1";

/// A step's payload and result as `jsonb` datums (copied out of SPI's memory), to hand to a
/// custom executor's functions as they are, never parsed here.
pub fn payload_and_result(step_id: Uuid) -> (pgrx::pg_sys::Datum, Option<pgrx::pg_sys::Datum>) {
    Spi::connect_mut(|client| {
        let table = run_cached(client, STEP_DATUMS, &[step_id.into()], false);
        let row = table.first();
        let datum = |ordinal| {
            let value = spi(row.get_datum_by_ordinal(ordinal), STEP_DATUMS);
            // SAFETY: a jsonb (varlena) datum of this tuple, copied into the memory context that
            // was current when SPI connected, so it outlives the connection.
            value.map(|datum| unsafe { pgrx::pg_sys::SPI_datumTransfer(datum, false, -1) })
        };
        let payload = datum(1);
        assert!(payload.is_some(), "a step has a payload");
        (payload.unwrap_or(pgrx::pg_sys::Datum::from(0)), datum(2))
    })
}

const OPAQUE_FACTS: &str =
    "SELECT pg_catalog.jsonb_typeof($1) = 'object', ($1 -> 'reference')::text";

/// What the ledger needs of a payload it does not read (an `external` or custom step's):
/// whether it is an object, and its `reference` field as JSON text. PostgreSQL answers from the
/// binary form: the document is never printed.
pub fn opaque_facts(payload: pgrx::pg_sys::Datum) -> (bool, Option<String>) {
    // SAFETY: a jsonb datum of the calling function's argument, alive for the call.
    let arg = unsafe { pgrx::datum::DatumWithOid::new(payload, pgrx::pg_sys::JSONBOID) };
    Spi::connect_mut(|client| {
        let table = run_cached(client, OPAQUE_FACTS, &[arg], false);
        let row = table.first();
        let is_object = spi(row.get::<bool>(1), OPAQUE_FACTS) == Some(true);
        (is_object, spi(row.get::<String>(2), OPAQUE_FACTS))
    })
}

const REFUND_OF: &str = "SELECT refund_of FROM cte_ctel.cte_events WHERE id = $1";

/// The event a refund refunds; `None` for an event that is not a refund.
pub fn refund_of(event_id: Uuid) -> Option<Uuid> {
    select_one(REFUND_OF, &[event_id.into()])
}

// The refund event holding a refund reference: what it refunds and the amount it asked for.
const REFUND_BY_REFERENCE: &str = "
    SELECT t.event_id, e.refund_of, t.payload ->> 'amount',
           COALESCE(NULLIF(t.payload -> 'legs', 'null'::jsonb) IS NOT DISTINCT FROM $3::jsonb, false)
      FROM cte_ctel.cte_references r
      JOIN cte_ctel.cte_transactions t ON t.id = r.transaction_id
      JOIN cte_ctel.cte_events e ON e.id = t.event_id
     WHERE r.type = $2 AND r.reference = $1";

/// The refund (a step of type `refund_type`) that holds `reference`: its event id, the event
/// it refunds, the amount it asked for (`None`: all that was left), and whether it named the
/// same legs as `legs` (JSON; `None`: none).
pub fn refund_by_reference(
    refund_type: &str,
    reference: &str,
    legs: Option<&str>,
) -> Option<(Uuid, Option<Uuid>, Option<String>, bool)> {
    Spi::connect(|client| {
        let args = [reference.into(), refund_type.into(), legs.into()];
        let table = spi(client.select(REFUND_BY_REFERENCE, Some(1), &args), REFUND_BY_REFERENCE);
        if table.is_empty() {
            return None;
        }
        let row = table.first();
        let refund = spi(row.get::<Uuid>(1), REFUND_BY_REFERENCE)?;
        let refund_of = spi(row.get::<Uuid>(2), REFUND_BY_REFERENCE);
        let amount = spi(row.get::<String>(3), REFUND_BY_REFERENCE);
        let same_legs = spi(row.get::<bool>(4), REFUND_BY_REFERENCE) == Some(true);
        Some((refund, refund_of, amount, same_legs))
    })
}

// Whether a scheduled event is still due to start, read under its lock: still created, and its
// time (which the application may have moved) has come.
const DUE_LOCK: &str = "
    SELECT status = 'created' AND not_before IS NOT NULL AND not_before <= $2
      FROM cte_ctel.cte_events WHERE id = $1 FOR UPDATE";
const DUE_LOCK_SKIP: &str = "
    SELECT status = 'created' AND not_before IS NOT NULL AND not_before <= $2
      FROM cte_ctel.cte_events WHERE id = $1 FOR UPDATE SKIP LOCKED";

/// Locks a scheduled event and tells whether it is still due to start at `now_ms`: `false`
/// when the application started, cancelled or rescheduled it since it was listed (or, with
/// `Skip`, while another session holds it).
pub fn lock_if_due(event_id: Uuid, now_ms: i64, wait: LockWait) -> bool {
    let query = match wait {
        LockWait::Wait => DUE_LOCK,
        LockWait::Skip => DUE_LOCK_SKIP,
    };
    let args = [event_id.into(), super::timestamp(now_ms).into()];
    let due: Option<bool> = Spi::connect_mut(|client| update_one(client, query, &args));
    due == Some(true)
}

// The event whose step holds a reference of a step type (not a batch item's), and whether it
// is what a one-step shortcut of that type made with the same payload: named after the type,
// its only step, completed (an event named so by cte_create_event, unstarted or compensated,
// is another request, whatever its payload).
const ONE_STEP_BY_REFERENCE: &str = "
    SELECT t.event_id,
           e.name = $1 AND t.payload = $3::text::jsonb AND e.status = 'completed'
           AND t.status = 'completed'
           AND NOT EXISTS (SELECT 1 FROM cte_ctel.cte_transactions o
                            WHERE o.event_id = t.event_id AND o.id <> t.id)
      FROM cte_ctel.cte_references r
      JOIN cte_ctel.cte_transactions t ON t.id = r.transaction_id
      JOIN cte_ctel.cte_events e ON e.id = t.event_id
     WHERE r.type = $1 AND r.reference = $2 AND r.item_id IS NULL";

/// The event holding `reference` for `step_type` through its own step, and whether it was
/// made by the same one-step request (`payload` equal as JSON); `None` when a batch item
/// holds it.
pub fn one_step_by_reference(
    step_type: &str,
    reference: &str,
    payload: &str,
) -> Option<(Uuid, bool)> {
    Spi::connect(|client| {
        let args = [step_type.into(), reference.into(), payload.into()];
        let query = ONE_STEP_BY_REFERENCE;
        let table = spi(client.select(query, Some(1), &args), query);
        if table.is_empty() {
            return None;
        }
        let row = table.first();
        Some((spi(row.get::<Uuid>(1), query)?, spi(row.get::<bool>(2), query).unwrap_or(false)))
    })
}

const CREATOR: &str = "SELECT true, created_by FROM cte_ctel.cte_events WHERE id = $1";

/// The role that created an event (`None` inside: made before 0.3.0); `None` for no event.
pub fn creator(event_id: Uuid) -> Option<Option<String>> {
    Spi::connect(|client| {
        let table = spi(client.select(CREATOR, Some(1), &[event_id.into()]), CREATOR);
        if table.is_empty() {
            return None;
        }
        Some(spi(table.first().get::<String>(2), CREATOR))
    })
}

// A scheduled start: the time, and the start-by deadline counted from it.
const SCHEDULE: &str = "
    UPDATE cte_ctel.cte_events
       SET not_before = $2, deadline = $2 + timeout
     WHERE id = $1 AND status = 'created'
    RETURNING (extract(epoch FROM deadline) * 1000)::bigint";

/// Schedules a (locked, `created`) event to start at `not_before`; its start-by deadline is
/// then its timeout after that. Returns the new deadline.
pub fn schedule(event_id: Uuid, not_before: TimestampWithTimeZone) -> Option<i64> {
    let args = [event_id.into(), not_before.into()];
    Spi::connect_mut(|client| update_one(client, SCHEDULE, &args))
}

// What the event would leave, read inside the subtransaction before it is rolled back, as JSON
// text: never parsed into a serde value (a step's result may be nested deeper than serde's
// limit), it becomes jsonb again when it is returned. $2: the status it would end in; $3: the
// step made to fail on purpose.
const DRY_RUN_OUTCOME: &str = "
    SELECT (jsonb_build_object('status', $2::text, 'failed_on_purpose', $3::text) ||
            jsonb_build_object(
        'steps', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                      'order', t.\"order\", 'name', t.name, 'type', t.type, 'status', t.status,
                      'attempts', t.attempts, 'result', t.result, 'error', t.error)
                      ORDER BY t.\"order\"), '[]')
                    FROM cte_ctel.cte_transactions t WHERE t.event_id = $1),
        'postings', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                      'step', t.name, 'kind', j.kind, 'account_id', j.account_id,
                      'currency', j.currency, 'amount', j.amount, 'balance_after', j.balance_after)
                      ORDER BY j.id), '[]')
                    FROM cte_ctel.cte_entries j
                    JOIN cte_ctel.cte_transactions t ON t.id = j.transaction_id
                   WHERE t.event_id = $1),
        'path', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                      'kind', h.kind, 'step', t.name, 'from', h.old_status, 'to', h.new_status)
                      ORDER BY h.id, h.n), '[]')
                    FROM cte_ctel.cte_event_history h
                    LEFT JOIN cte_ctel.cte_transactions t ON t.id = h.transaction_id
                   WHERE h.event_id = $1 AND h.kind <> 'lien'),
        'liens', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                      'step', t.name, 'account_id', l.account_id, 'currency', l.currency,
                      'amount', l.amount, 'status', l.status) ORDER BY l.created_at, l.id), '[]')
                    FROM cte_ctel.cte_liens l
                    LEFT JOIN cte_ctel.cte_transactions t ON t.id = l.transaction_id
                   WHERE l.event_id = $1),
        'balances', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                      'account_id', b.account_id, 'currency', b.currency, 'balance', b.balance,
                      'available', b.available) ORDER BY b.account_id, b.currency), '[]')
                    FROM cte_ctel.cte_ledger_balances b
                   WHERE (b.account_id, b.currency) IN (
                         SELECT j.account_id, j.currency FROM cte_ctel.cte_entries j
                           JOIN cte_ctel.cte_transactions t ON t.id = j.transaction_id
                          WHERE t.event_id = $1
                         UNION
                         SELECT l.account_id, l.currency FROM cte_ctel.cte_liens l
                          WHERE l.event_id = $1)),
        'error', (SELECT e.error FROM cte_ctel.cte_events e WHERE e.id = $1)))::text";

/// What an event would leave (a dry run's answer), as JSON text read in the caller's
/// subtransaction: its status, the step failed on purpose, steps, postings, path, liens and
/// balances.
pub fn outcome_text(event_id: Uuid, status: &str, fail_at: Option<&str>) -> String {
    let args = [event_id.into(), status.into(), fail_at.into()];
    let read: Option<String> = select_one(DRY_RUN_OUTCOME, &args);
    required(read, DRY_RUN_OUTCOME, "an event's outcome (an object)")
}

const COMPLETED_ONE_STEP: &str = concat!(
    "
    WITH event AS (
        INSERT INTO cte_ctel.cte_events
               (id, name, status, timeout, deadline, started_at, finished_at, description,
                refund_of, metadata)
        VALUES ($1, $3, $4, $5 * interval '1 millisecond',
                'epoch'::timestamptz + $6 * interval '1 millisecond', $7, $7, $24, $25,
                $26::jsonb)),
    step AS (
        INSERT INTO cte_ctel.cte_transactions
               (id, event_id, name, type, \"order\", payload, reference, status, attempts,
                max_attempts, result, payload_bytes)
        VALUES ($2, $1, $3, $23, 1, $8::text::jsonb, $9, $10, $11, $12, $13::text::jsonb,
                pg_catalog.pg_column_size($8::text::jsonb)))
    INSERT INTO cte_ctel.cte_change_outbox (",
    outbox_columns!(),
    ")
    VALUES ($14, $15, COALESCE($16, session_user), $17, $18, $19, $20, $21, $22)"
);

/// A one-step event as it is recorded: completed, with its only step and its changes.
pub struct CompletedOneStep<'a> {
    pub event_id: Uuid,
    pub step_id: Uuid,
    /// The event's name, which is its step's too.
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub refund_of: Option<Uuid>,
    pub metadata: Option<&'a Value>,
    pub status: &'a str,
    pub timeout_ms: i64,
    pub deadline_ms: Option<i64>,
    pub now_ms: i64,
    pub step_type: &'a str,
    /// The step's payload, JSON text.
    pub payload: &'a str,
    pub reference: Option<&'a str>,
    pub step_status: &'a str,
    pub attempts: i32,
    pub attempts_max: i32,
    /// The step's result, JSON text.
    pub result: Option<&'a str>,
    pub changes: &'a Batch,
}

/// Writes a one-step event, its step and its changes in one statement.
pub fn insert_completed_one_step(row: &CompletedOneStep) {
    let [o1, o2, o3, o4, o5, o6, o7, o8, o9] = outbox_args(row.changes);
    let args = [
        row.event_id.into(),
        row.step_id.into(),
        row.name.into(),
        row.status.into(),
        row.timeout_ms.into(),
        row.deadline_ms.into(),
        timestamp(row.now_ms).into(),
        row.payload.into(),
        row.reference.into(),
        row.step_status.into(),
        row.attempts.into(),
        row.attempts_max.into(),
        row.result.into(),
        o1,
        o2,
        o3,
        o4,
        o5,
        o6,
        o7,
        o8,
        o9,
        row.step_type.into(),
        row.description.into(),
        row.refund_of.into(),
        row.metadata.map(|metadata| metadata.to_string()).into(),
    ];
    Spi::connect_mut(|client| {
        run_cached(client, COMPLETED_ONE_STEP, &args, true);
    });
}

// Many one-step events at once (a bulk call's posted items), each as `COMPLETED_ONE_STEP`
// writes one: what they share is given once, what differs row by row. Their changes have one
// shape (the same kinds and statuses, the step's id where a change is the step's): each
// event's outbox row is that shape with its step's id put in place of `$19`'s placeholder.
const COMPLETED_ONE_STEPS: &str = concat!(
    "
    WITH me AS MATERIALIZED (SELECT cte_ctel.cte_caller() AS who),
    rows AS MATERIALIZED (
        SELECT r.event_id, r.step_id, r.metadata::jsonb AS metadata, r.deadline_ms,
               r.payload::jsonb AS payload, r.reference, r.result::jsonb AS result, r.n
          FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::text[],
                      $6::text[], $7::text[])
                   WITH ORDINALITY AS r(event_id, step_id, metadata, deadline_ms, payload,
                                        reference, result, n)),
    event AS (
        INSERT INTO cte_ctel.cte_events
               (id, name, status, timeout, deadline, started_at, finished_at, metadata,
                created_by)
        SELECT r.event_id, $8, $9, $10 * interval '1 millisecond',
               'epoch'::timestamptz + r.deadline_ms * interval '1 millisecond', $11, $11,
               r.metadata, me.who
          FROM rows r, me ORDER BY r.n),
    step AS (
        INSERT INTO cte_ctel.cte_transactions
               (id, event_id, name, type, \"order\", payload, reference, status, attempts,
                max_attempts, result, payload_bytes)
        SELECT r.step_id, r.event_id, $8, $12, 1, r.payload, r.reference, $13, $14, $15,
               r.result, pg_catalog.pg_column_size(r.payload)
          FROM rows r ORDER BY r.n)
    INSERT INTO cte_ctel.cte_change_outbox (",
    outbox_columns!(),
    ")
    SELECT r.event_id, NULL, COALESCE($21, session_user), NULL, $16::text[],
           pg_catalog.array_replace($17::uuid[], $20::uuid, r.step_id),
           pg_catalog.array_fill(NULL::uuid, ARRAY[pg_catalog.cardinality($16::text[])]),
           $18::text[], $19::text[]
      FROM rows r
     ORDER BY r.n"
);

/// A one-step event's changes as their shape: each change's kind, whether it is its step's,
/// and its statuses.
fn change_shape<'a>(
    row: &CompletedOneStep<'a>,
) -> Vec<(&'static str, bool, Option<&'a str>, &'a str)> {
    row.changes
        .changes
        .iter()
        .map(|change| {
            assert!(change.lien_id.is_none(), "a one-step transfer's changes name no lien");
            let of_step = change.transaction_id == Some(row.step_id);
            assert!(of_step || change.transaction_id.is_none(), "a change of its own step");
            (change.kind.as_str(), of_step, change.old_status, change.new_status)
        })
        .collect()
}

/// Writes many one-step events, their steps and their changes in one statement. They differ
/// in ids, metadata, deadline, payload, reference and result only (a bulk call's items: the
/// same type, name, statuses and attempts, no description, no refund, the same changes of
/// the event and its step, no lien's).
pub fn insert_completed_one_steps(rows: &[CompletedOneStep]) {
    let Some(first) = rows.first() else {
        return;
    };
    let changes = change_shape(first);
    let same = |row: &CompletedOneStep| {
        (row.name, row.status, row.timeout_ms, row.now_ms, row.step_type, row.step_status)
            == (
                first.name,
                first.status,
                first.timeout_ms,
                first.now_ms,
                first.step_type,
                first.step_status,
            )
            && (row.attempts, row.attempts_max) == (first.attempts, first.attempts_max)
            && row.description.is_none()
            && row.refund_of.is_none()
            && row.changes.actor == first.changes.actor
            && row.changes.account_id.is_none()
            && row.changes.reason.is_none()
            && change_shape(row) == changes
    };
    assert!(rows.iter().all(same), "one-step events written together differ only row by row");
    let column = |read: fn(&CompletedOneStep) -> Option<String>| -> Vec<Option<String>> {
        rows.iter().map(read).collect()
    };
    let metadata = column(|row| row.metadata.map(ToString::to_string));
    let payloads = column(|row| Some(row.payload.to_string()));
    let references = column(|row| row.reference.map(str::to_string));
    let results = column(|row| row.result.map(str::to_string));
    // The step's place in each row's changes: the max UUID, which no id is (ids are version 4
    // or 7).
    let placeholder = Uuid::from_bytes([0xff; 16]);
    let kinds: Vec<&str> = changes.iter().map(|change| change.0).collect();
    let steps: Vec<Option<Uuid>> =
        changes.iter().map(|change| change.1.then_some(placeholder)).collect();
    let from: Vec<Option<&str>> = changes.iter().map(|change| change.2).collect();
    let to: Vec<&str> = changes.iter().map(|change| change.3).collect();
    assert!(rows.iter().all(|row| row.step_id != placeholder && row.event_id != placeholder));
    let args = [
        rows.iter().map(|row| row.event_id).collect::<Vec<_>>().into(),
        rows.iter().map(|row| row.step_id).collect::<Vec<_>>().into(),
        metadata.into(),
        rows.iter().map(|row| row.deadline_ms).collect::<Vec<_>>().into(),
        payloads.into(),
        references.into(),
        results.into(),
        first.name.into(),
        first.status.into(),
        first.timeout_ms.into(),
        timestamp(first.now_ms).into(),
        first.step_type.into(),
        first.step_status.into(),
        first.attempts.into(),
        first.attempts_max.into(),
        kinds.into(),
        steps.into(),
        from.into(),
        to.into(),
        placeholder.into(),
        first.changes.actor.clone().into(),
    ];
    Spi::connect_mut(|client| {
        run_cached(client, COMPLETED_ONE_STEPS, &args, true);
    });
}

// `ONE_STEP_BY_REFERENCE` for many references at once, each with the payload to compare; a
// row for each reference held by a step (none for a batch item's or a free one).
const ONE_STEPS_BY_REFERENCE: &str = "
    SELECT w.n, t.event_id,
           e.name = $1 AND t.payload = w.payload::jsonb AND e.status = 'completed'
           AND t.status = 'completed'
           AND NOT EXISTS (SELECT 1 FROM cte_ctel.cte_transactions o
                            WHERE o.event_id = t.event_id AND o.id <> t.id)
      FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS w(reference, payload, n)
      JOIN cte_ctel.cte_references r ON r.type = $1 AND r.reference = w.reference
      JOIN cte_ctel.cte_transactions t ON t.id = r.transaction_id
      JOIN cte_ctel.cte_events e ON e.id = t.event_id
     WHERE r.item_id IS NULL";

/// `one_step_by_reference` for each `(reference, payload)`: the event holding it through its
/// own step and whether it is the same request; `None` for a reference a batch item holds (or
/// none: a claim rolled back since).
pub fn one_steps_by_reference(
    step_type: &str,
    asked: &[(&str, &str)],
) -> Vec<Option<(Uuid, bool)>> {
    let mut found = vec![None; asked.len()];
    if asked.is_empty() {
        return found;
    }
    let references: Vec<&str> = asked.iter().map(|(reference, _)| *reference).collect();
    let payloads: Vec<&str> = asked.iter().map(|(_, payload)| *payload).collect();
    let args = [step_type.into(), references.into(), payloads.into()];
    let query = ONE_STEPS_BY_REFERENCE;
    let rows = Spi::connect(|client| {
        let table = spi(client.select(query, None, &args), query);
        Row::each(table, query, |row| {
            let n: i64 = row.required(1, "an index");
            let same = row.optional::<bool>(3) == Some(true);
            (n, row.required::<Uuid>(2, "an event id"), same)
        })
    });
    for (n, event_id, same) in rows {
        let slot = usize::try_from(n - 1).ok().and_then(|index| found.get_mut(index));
        assert!(slot.is_some(), "a row for a reference asked");
        if let Some(slot) = slot {
            *slot = Some((event_id, same));
        }
    }
    found
}
