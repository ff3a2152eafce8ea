//! Event functions of SPEC §4: create, add, start, cancel, report, register, maintain, and
//! the one-step shortcuts `cte_transfer` and `cte_deposit`.

use cte_ctel_core::engine::executors::{self, StepPlan, StepType};
use cte_ctel_core::engine::EventStatus;
use cte_ctel_core::ledger::{AccountId, Metadata};
use cte_ctel_core::limits::{
    DESCRIPTION_BYTES_MAX, EVENT_STEPS_MAX, NAME_BYTES_MAX, PAYLOAD_BYTES_MAX, STEP_ATTEMPTS_MAX,
};
use cte_ctel_core::money::Amount;
use cte_ctel_core::CteError;
use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, JsonB, Uuid};
use serde_json::{json, Value};

use super::json_text::JsonbText;
use super::{refused, required};
use crate::gucs;
use crate::store::events::{self, NewStep};
use crate::store::run::{self, Command, Report};
use crate::store::{self, fast, ledger, maintenance, now_ms, steps};

fn text_bounded<'a>(
    text: &'a str,
    what: &'static str,
    bytes_max: usize,
) -> Result<&'a str, CteError> {
    if text.len() > bytes_max {
        return Err(CteError::TextTooLong { what, bytes: text.len(), bytes_max });
    }
    Ok(text)
}

fn name_checked<'a>(name: &'a str, what: &'static str) -> Result<&'a str, CteError> {
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(CteError::IdentifierInvalid {
            what,
            value: name.to_string(),
            why: "a name is printable text, not empty",
        });
    }
    text_bounded(name, what, NAME_BYTES_MAX)
}

/// A new event in status `created`. The same idempotency key with the same name returns the
/// existing event's id; with another name it is refused.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_create_event(
    name: Option<String>,
    description: default!(Option<String>, "NULL"),
    timeout: default!(Option<Interval>, "'5 minutes'"),
    metadata: default!(Option<JsonbText>, "NULL"),
    idempotency_key: default!(Option<String>, "NULL"),
) -> Uuid {
    refused("cte_create_event", move || {
        let name = required(name, "name")?;
        name_checked(&name, "event name")?;
        let description = description
            .as_deref()
            .map(|d| text_bounded(d, "description", DESCRIPTION_BYTES_MAX))
            .transpose()?;
        let timeout = required(timeout, "timeout")?;
        let metadata_bytes = metadata.as_ref().map_or(0, |text| text.0.len());
        let metadata = metadata.map(|text| text.parse("metadata size in bytes")).transpose()?;
        let metadata = Metadata::parse(metadata, metadata_bytes)?;
        let key = idempotency_key
            .as_deref()
            .map(|key| name_checked(key, "idempotency key"))
            .transpose()?;
        events::create(&name, description, timeout, metadata.value().cloned(), key)
    })
}

/// Appends a step to a `created` event; its payload is checked against its type at once.
/// Its CREATE FUNCTION is in `sql/executors.sql`, to give the argument its contract name `type`.
#[pg_extern(sql = false)]
fn cte_add_transaction(
    event_id: Option<Uuid>,
    name: Option<String>,
    step_type: Option<String>,
    payload: Option<JsonbText>,
    description: default!(Option<String>, "NULL"),
    order: default!(Option<i32>, "NULL"),
    max_attempts: default!(Option<i32>, "NULL"),
) -> Uuid {
    refused("cte_add_transaction", move || {
        let event_id = required(event_id, "event_id")?;
        let name = required(name, "name")?;
        let type_name = required(step_type, "type")?;
        let payload = required(payload, "payload")?.parse("payload size in bytes")?;
        let event = events::lock(event_id)?;
        if event.status != EventStatus::Created {
            return Err(CteError::TransitionNotAllowed {
                what: "event",
                from: event.status.as_str(),
                input: "add a transaction to",
            });
        }
        let (step, plan) =
            checked_step(&name, description.as_deref(), &type_name, payload, order, max_attempts)?;
        if let Some(plan) = &plan {
            ledger::check_wallets(&plan.postings)?;
        }
        let steps_now = usize::try_from(events::step_count(event_id)).unwrap_or(usize::MAX);
        if steps_now >= EVENT_STEPS_MAX {
            return Err(CteError::LimitExceeded {
                what: "transactions in one event",
                value: steps_now + 1,
                limit: EVENT_STEPS_MAX,
            });
        }
        events::add_step(event_id, step)
    })
}

/// A step's checks that need no wallet: its name, type, payload and limits, and its plan. Wallets
/// are checked when a step is added to an event; a one-step shortcut posts at once, and its
/// guarded balance update names the same refusal.
fn checked_step<'a>(
    name: &'a str,
    description: Option<&'a str>,
    type_name: &'a str,
    payload: Value,
    order: Option<i32>,
    max_attempts: Option<i32>,
) -> Result<(NewStep<'a>, Option<StepPlan>), CteError> {
    name_checked(name, "transaction name")?;
    let description =
        description.map(|d| text_bounded(d, "description", DESCRIPTION_BYTES_MAX)).transpose()?;
    let step_type = StepType::parse(type_name)?;
    let payload_bytes = payload.to_string().len();
    if payload_bytes > PAYLOAD_BYTES_MAX {
        return Err(CteError::LimitExceeded {
            what: "payload size in bytes",
            value: payload_bytes,
            limit: PAYLOAD_BYTES_MAX,
        });
    }
    if !payload.is_object() {
        return Err(CteError::PayloadInvalid {
            step_type: type_name.to_string(),
            why: "the payload must be a JSON object".into(),
        });
    }
    if let StepType::Custom(custom) = &step_type {
        if !store::steps::is_registered(custom) {
            return Err(CteError::StepTypeUnknown { step_type: custom.clone() });
        }
    }
    let plan = steps::plan(&step_type, &payload)?;
    let reference = executors::reference(&step_type, &payload)?;
    if let Some(order) = order.filter(|order| *order < 1) {
        return Err(CteError::ArgumentOutOfRange {
            argument: "order",
            value: i64::from(order),
            min: 1,
            max: i64::from(i32::MAX),
        });
    }
    let attempts_max = max_attempts.unwrap_or(gucs::retry_policy().attempts_max as i32);
    if !(1..=STEP_ATTEMPTS_MAX as i32).contains(&attempts_max) {
        return Err(CteError::ArgumentOutOfRange {
            argument: "max_attempts",
            value: i64::from(attempts_max),
            min: 1,
            max: i64::from(STEP_ATTEMPTS_MAX),
        });
    }
    let step = NewStep {
        name,
        description,
        step_type: type_name,
        order,
        payload,
        reference,
        attempts_max,
    };
    Ok((step, plan))
}

fn drive(event_id: Uuid, command: Command) -> Result<String, CteError> {
    let status = run::drive(event_id, command, now_ms(), &gucs::retry_policy())?;
    Ok(status.as_str().to_string())
}

/// Runs the event's steps in order, in the caller's transaction, as far as they can go now;
/// returns its status.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_start_event(event_id: Option<Uuid>) -> String {
    refused("cte_start_event", move || drive(required(event_id, "event_id")?, Command::Start))
}

/// Compensates what completed, newest first; returns the status.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_cancel_event(event_id: Option<Uuid>, reason: default!(Option<String>, "NULL")) -> String {
    refused("cte_cancel_event", move || {
        let reason = reason
            .as_deref()
            .map(|r| text_bounded(r, "reason", DESCRIPTION_BYTES_MAX))
            .transpose()?;
        drive(
            required(event_id, "event_id")?,
            Command::Cancel { reason: reason.map(str::to_string) },
        )
    })
}

/// Reports success of an `external` step (or of its compensation); resumes its event.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_complete_transaction(
    transaction_id: Option<Uuid>,
    result: default!(Option<JsonbText>, "NULL"),
) -> String {
    refused("cte_complete_transaction", move || {
        let step_id = required(transaction_id, "transaction_id")?;
        let event_id = events::event_of_step(step_id)?;
        let result = result.map(|text| text.parse("result size in bytes")).transpose()?;
        let report = Report::Completed(result);
        drive(event_id, Command::Report { step_id, report })
    })
}

/// Reports failure of an `external` step (or of its compensation); resumes its event. A
/// retryable failure is retried with backoff while attempts remain.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_fail_transaction(
    transaction_id: Option<Uuid>,
    error: Option<String>,
    retryable: default!(Option<bool>, true),
) -> String {
    refused("cte_fail_transaction", move || {
        let step_id = required(transaction_id, "transaction_id")?;
        let error = required(error, "error")?;
        let retryable = required(retryable, "retryable")?;
        let event_id = events::event_of_step(step_id)?;
        drive(event_id, Command::Report { step_id, report: Report::Failed { error, retryable } })
    })
}

/// Registers (or replaces) a custom step type; called by the SQL wrapper taking regprocedures.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_register_executor_by_oid(
    step_type: Option<String>,
    execute_fn: Option<pg_sys::Oid>,
    compensate_fn: Option<pg_sys::Oid>,
) {
    refused("cte_register_executor", move || {
        let type_name = required(step_type, "type")?;
        let execute_fn = required(execute_fn, "execute_fn")?;
        steps::register_executor(&type_name, execute_fn, compensate_fn)
    })
}

/// One pass of the worker's duties; returns what it did.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_run_maintenance() -> JsonB {
    JsonB(maintenance::run(now_ms(), &gucs::retry_policy()))
}

/// A one-step event of a built-in posting: checked like any step, then posted on the fast path
/// (`store::fast`), which ends with the same rows the saga would (pg_test 15_fast_path compares
/// them). Returns the event id; a refusal raises its own error and leaves nothing.
fn one_step_event(step_type: &'static str, payload: Value) -> Result<Uuid, CteError> {
    let (step, plan) = checked_step(step_type, None, step_type, payload, None, Some(1))?;
    let posting = plan.and_then(|plan| plan.postings.into_iter().next());
    assert!(posting.is_some(), "a one-step shortcut plans one posting");
    let posting = posting.ok_or(CteError::StepTypeUnknown { step_type: step_type.into() })?;
    fast::one_step_event(step_type, step.payload, &posting, step.reference.as_deref())
}

/// A one-step `wallet.transfer` event, created and run. Returns the event id when it
/// completes; raises the refusal's own error (insufficient funds, …) when it does not.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_transfer(
    source: Option<String>,
    destination: Option<String>,
    amount: Option<AnyNumeric>,
    currency: Option<String>,
    reference: default!(Option<String>, "NULL"),
) -> Uuid {
    refused("cte_transfer", move || {
        let source = AccountId::parse(&required(source, "source")?)?;
        let destination = AccountId::parse(&required(destination, "destination")?)?;
        let currency = ledger::currency(&required(currency, "currency")?)?;
        let amount = Amount::parse(&required(amount, "amount")?.to_string(), &currency)?;
        let payload = json!({
            "source_account_id": source.as_str(), "destination_account_id": destination.as_str(),
            "amount": amount.to_string(), "currency": currency.code(), "reference": reference,
        });
        one_step_event("wallet.transfer", payload)
    })
}

/// A one-step `wallet.deposit` event: money enters the wallet from `@world`.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_deposit(
    account_id: Option<String>,
    amount: Option<AnyNumeric>,
    currency: Option<String>,
    reference: default!(Option<String>, "NULL"),
) -> Uuid {
    refused("cte_deposit", move || {
        let account = AccountId::parse(&required(account_id, "account_id")?)?;
        let currency = ledger::currency(&required(currency, "currency")?)?;
        let amount = Amount::parse(&required(amount, "amount")?.to_string(), &currency)?;
        let payload = json!({
            "account_id": account.as_str(), "amount": amount.to_string(),
            "currency": currency.code(), "reference": reference,
        });
        one_step_event("wallet.deposit", payload)
    })
}
