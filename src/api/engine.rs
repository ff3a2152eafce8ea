//! Event functions of SPEC §4: create, add, start, cancel, report, an operator's ways out,
//! maintenance, and the one-step shortcuts `cte_transfer` and `cte_deposit`.

use cte_ctel_core::engine::checks::{self, Payload, StepSpec};
use cte_ctel_core::engine::executors::StepType;
use cte_ctel_core::engine::transfer::TransferRequest;
use cte_ctel_core::engine::{start_when, CompensationOutcome, StartWhen, StepReport};
use cte_ctel_core::ledger::refund::RefundLeg;
use cte_ctel_core::ledger::{AccountId, Metadata};
use cte_ctel_core::limits::{
    EVENTS_PER_MAINTENANCE_MAX, PAYLOAD_BYTES_MAX, REFUND_LEGS_MAX, RESULT_BYTES_MAX,
};
use cte_ctel_core::money::{Amount, Currency};
use cte_ctel_core::CteError;
use pgrx::datum::{Interval, TimestampWithTimeZone};
use pgrx::prelude::*;
use pgrx::{AnyNumeric, JsonB, Uuid};
use serde_json::json;

use super::json_text::JsonbText;
use super::{refused, required};
use crate::driver::{self, build, fast, maintenance, reentry, Command, Context};
use crate::gucs;
use crate::store::{events, jsonb_bytes, ledger, now_ms, LockWait};

/// The context of a call from a client: the statement's clock, the settings, locks that wait.
pub(crate) fn client_context() -> Context {
    Context { now_ms: now_ms(), config: gucs::saga_config(), wait: LockWait::Wait, actor: None }
}

pub(crate) fn metadata_of(metadata: Option<JsonbText>) -> Result<Metadata, CteError> {
    let Some(metadata) = metadata else {
        return Metadata::parse(None, 0);
    };
    let (value, bytes) = metadata.parse("metadata size in bytes")?;
    Metadata::parse(Some(value), bytes)
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
        let timeout = required(timeout, "timeout")?;
        let metadata = metadata_of(metadata)?;
        let ctx = client_context();
        let (description, key) = (description.as_deref(), idempotency_key.as_deref());
        let event_id = build::create_event(&name, description, timeout, &metadata, key, &ctx)?;
        // A replay under another's key returns that one's event.
        super::security::refuse_foreign_reply("cte_create_event", event_id);
        Ok(event_id)
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
        super::security::refuse_foreign_event("cte_add_transaction", event_id);
        let name = required(name, "name")?;
        let type_name = required(step_type, "type")?;
        let payload = required(payload, "payload")?;
        let bytes = jsonb_bytes(payload.datum());
        let reads = StepType::parse(&type_name).is_ok_and(|step_type| step_type.reads_payload());
        // A payload over the bound is refused by the core on its size before anything reads
        // it; one the ledger does not read is never printed at all.
        let (text, opaque) = match (reads, bytes <= PAYLOAD_BYTES_MAX) {
            (true, true) => (payload.text("payload size in bytes", 6 * PAYLOAD_BYTES_MAX)?, None),
            (true, false) => (String::new(), None),
            (false, _) => (String::new(), Some(events::opaque_facts(payload.datum()))),
        };
        let payload_read = match &opaque {
            None => Payload::Text(&text),
            Some((is_object, reference)) => {
                Payload::Opaque { is_object: *is_object, reference: reference.as_deref() }
            }
        };
        let spec = StepSpec {
            name: &name,
            description: description.as_deref(),
            type_name: &type_name,
            payload: payload_read,
            payload_bytes: bytes,
            order,
            max_attempts,
        };
        if crate::driver::security::may_be_tenant() {
            let checked = checks::step(&spec, 1, &build::currency_book())?;
            let postings = checked.plan.as_ref().map_or(&[][..], |plan| &plan.postings[..]);
            super::security::refuse_foreign_debits("cte_add_transaction", postings);
        }
        build::add_step(event_id, &spec, payload.datum(), gucs::retry_policy().attempts_max)
    })
}

fn drive(event_id: Uuid, command: Command) -> Result<String, CteError> {
    let status = driver::drive(event_id, command, &client_context())?;
    assert!(status.is_some(), "a client's drive waits for the event's lock");
    Ok(status.map_or("", |status| status.as_str()).to_string())
}

/// Runs the event's steps in order, in the caller's transaction, as far as they can go now;
/// returns its status. With `not_before` in the future the event is scheduled instead: it
/// stays `created` (its liens pending, cancellable), its start-by deadline counts from that
/// time, and the worker starts it then.
#[pg_extern(name = "cte_start_event", security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_start_event_at(
    event_id: Option<Uuid>,
    not_before: default!(Option<TimestampWithTimeZone>, "NULL"),
) -> String {
    refused("cte_start_event", move || {
        let event_id = required(event_id, "event_id")?;
        super::security::refuse_foreign_event("cte_start_event", event_id);
        let ctx = client_context();
        let asked = || not_before.map(|at| at.to_string()).unwrap_or_default();
        let at_ms = not_before.map(crate::store::ms_of);
        match (start_when(at_ms, ctx.now_ms, &asked)?, not_before) {
            (StartWhen::Later, Some(at)) => {
                Ok(driver::schedule::schedule(event_id, at, &ctx)?.as_str().to_string())
            }
            _ => drive(event_id, Command::Start),
        }
    })
}

/// 0.1.0's `cte_start_event` (one argument): the symbol is kept so that 0.1.0's SQL still loads
/// between a package upgrade and `ALTER EXTENSION cte_ctel UPDATE`; it refuses.
#[pg_extern(sql = false)]
fn cte_start_event(_event_id: Option<Uuid>) -> String {
    crate::store::refuse_older_sql("its cte_start_event takes one argument")
}

/// Compensates what completed, newest first; returns the status. Called by the role that
/// created the event, or by a member of `cte_admin`.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_cancel_event(event_id: Option<Uuid>, reason: default!(Option<String>, "NULL")) -> String {
    refused("cte_cancel_event", move || {
        checks::description(reason.as_deref(), "reason")?;
        let event_id = required(event_id, "event_id")?;
        // SPEC §12 first: to a role read tenancy limits, another's event is not even named.
        super::security::refuse_foreign_event("cte_cancel_event", event_id);
        // SPEC §11: its creator or an administrator; another operator is refused (42501).
        super::security::refuse_cancel_by_another(event_id);
        drive(event_id, Command::Cancel { reason })
    })
}

/// A report's result: a JSON document kept on the step as given, bounded.
fn result_text(result: Option<JsonbText>) -> Result<Option<String>, CteError> {
    result.map(|result| result.text("result size in bytes", RESULT_BYTES_MAX)).transpose()
}

/// A report on a step: under its lease if one is held (SPEC §10), which it then ends.
fn report(
    step_id: Uuid,
    lease_token: Option<Uuid>,
    make: impl FnOnce(Uuid) -> Command,
) -> Result<String, CteError> {
    super::security::refuse_foreign_step("a report", step_id);
    let event_id = events::event_of_step(step_id)?;
    // Under the event's lock, which claims take too: no lease can be taken between the check
    // and the report.
    events::lock_event(event_id)?;
    let leased = crate::store::leases::check(step_id, lease_token)?;
    let status = drive(event_id, make(step_id))?;
    // Only a step that carried a lease has one to end: other reports write nothing more.
    if leased {
        crate::store::leases::clear(step_id);
    }
    Ok(status)
}

/// Reports success of an `external` step; resumes its event. A report on a step that no longer
/// awaits it (it was asked to compensate, or ended) changes nothing and is recorded as a late
/// report; the event's status is returned either way. With `lease_token`, only under the lease
/// it names, while it holds (SPEC §10); without, only while no lease is held.
#[pg_extern(name = "cte_complete_transaction", security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_complete_transaction_leased(
    transaction_id: Option<Uuid>,
    result: default!(Option<JsonbText>, "NULL"),
    lease_token: default!(Option<Uuid>, "NULL"),
) -> String {
    refused("cte_complete_transaction", move || {
        complete_transaction(transaction_id, result, lease_token)
    })
}

fn complete_transaction(
    transaction_id: Option<Uuid>,
    result: Option<JsonbText>,
    lease_token: Option<Uuid>,
) -> Result<String, CteError> {
    let result = result_text(result)?;
    let step_id = required(transaction_id, "transaction_id")?;
    report(step_id, lease_token, |step_id| Command::Report {
        step_id,
        report: StepReport::Completed,
        result,
        error: None,
    })
}

/// Reports failure of an `external` step; resumes its event. Retried with backoff only when the
/// caller says `retryable`, while attempts remain; otherwise what completed is compensated.
/// `lease_token` as for `cte_complete_transaction`.
#[pg_extern(name = "cte_fail_transaction", security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_fail_transaction_leased(
    transaction_id: Option<Uuid>,
    error: Option<String>,
    retryable: default!(Option<bool>, false),
    lease_token: default!(Option<Uuid>, "NULL"),
) -> String {
    refused("cte_fail_transaction", move || {
        fail_transaction(transaction_id, error, retryable, lease_token)
    })
}

fn fail_transaction(
    transaction_id: Option<Uuid>,
    error: Option<String>,
    retryable: Option<bool>,
    lease_token: Option<Uuid>,
) -> Result<String, CteError> {
    let error = required(error, "error")?;
    let retryable = required(retryable, "retryable")?;
    let step_id = required(transaction_id, "transaction_id")?;
    report(step_id, lease_token, |step_id| Command::Report {
        step_id,
        report: StepReport::Failed { retryable },
        result: None,
        error: Some(error),
    })
}

/// Reports that an `external` step asked to compensate has compensated; the steps before it
/// are then compensated. Kept apart from the step's own outcome: a late "it completed" is
/// never read as "its compensation is done". `lease_token` as for `cte_complete_transaction`.
#[pg_extern(name = "cte_complete_compensation", security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_complete_compensation_leased(
    transaction_id: Option<Uuid>,
    result: default!(Option<JsonbText>, "NULL"),
    lease_token: default!(Option<Uuid>, "NULL"),
) -> String {
    refused("cte_complete_compensation", move || {
        complete_compensation(transaction_id, result, lease_token)
    })
}

fn complete_compensation(
    transaction_id: Option<Uuid>,
    result: Option<JsonbText>,
    lease_token: Option<Uuid>,
) -> Result<String, CteError> {
    result_text(result)?;
    let step_id = required(transaction_id, "transaction_id")?;
    report(step_id, lease_token, |step_id| Command::CompensationReport {
        step_id,
        outcome: CompensationOutcome::Done,
        error: None,
    })
}

/// Reports that an `external` step could not compensate: its event is left `failed` for an
/// operator (`cte_retry_compensation`, `cte_resolve_event`). `lease_token` as for
/// `cte_complete_transaction`.
#[pg_extern(name = "cte_fail_compensation", security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_fail_compensation_leased(
    transaction_id: Option<Uuid>,
    error: Option<String>,
    lease_token: default!(Option<Uuid>, "NULL"),
) -> String {
    refused("cte_fail_compensation", move || fail_compensation(transaction_id, error, lease_token))
}

fn fail_compensation(
    transaction_id: Option<Uuid>,
    error: Option<String>,
    lease_token: Option<Uuid>,
) -> Result<String, CteError> {
    let error = required(error, "error")?;
    let step_id = required(transaction_id, "transaction_id")?;
    report(step_id, lease_token, |step_id| Command::CompensationReport {
        step_id,
        outcome: CompensationOutcome::Failed,
        error: Some(error),
    })
}

// 0.2.0's report functions (no lease_token): their symbols serve 0.2.0's SQL between a package
// upgrade and ALTER EXTENSION cte_ctel UPDATE, as reports without a token.
#[pg_extern(sql = false)]
fn cte_complete_transaction(transaction_id: Option<Uuid>, result: Option<JsonbText>) -> String {
    refused("cte_complete_transaction", move || complete_transaction(transaction_id, result, None))
}

#[pg_extern(sql = false)]
fn cte_fail_transaction(
    transaction_id: Option<Uuid>,
    error: Option<String>,
    retryable: Option<bool>,
) -> String {
    refused("cte_fail_transaction", move || {
        fail_transaction(transaction_id, error, retryable, None)
    })
}

#[pg_extern(sql = false)]
fn cte_complete_compensation(transaction_id: Option<Uuid>, result: Option<JsonbText>) -> String {
    refused("cte_complete_compensation", move || {
        complete_compensation(transaction_id, result, None)
    })
}

#[pg_extern(sql = false)]
fn cte_fail_compensation(transaction_id: Option<Uuid>, error: Option<String>) -> String {
    refused("cte_fail_compensation", move || fail_compensation(transaction_id, error, None))
}

/// An operator's way out of `failed`: runs the refused compensations again (and asks the
/// application again for an `external` one); returns the status.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_retry_compensation(event_id: Option<Uuid>) -> String {
    refused("cte_retry_compensation", move || {
        drive(required(event_id, "event_id")?, Command::RetryCompensation { note: None })
    })
}

/// An operator's other way out of `failed`: records that what was left was settled by hand
/// (status `resolved`, the note and who in the history) and releases what the event still
/// holds; returns the status.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_resolve_event(event_id: Option<Uuid>, note: Option<String>) -> String {
    refused("cte_resolve_event", move || {
        let note = required(note, "note")?;
        checks::note(&note, "note")?;
        drive(required(event_id, "event_id")?, Command::Resolve { note })
    })
}

/// One pass of the workers' duties in the caller's transaction; returns what it did. The feed
/// is sequenced here only where no worker serves this database.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_run_maintenance() -> JsonB {
    refused("cte_run_maintenance", move || {
        // Inside a step, maintenance would drive the events this session is driving.
        if reentry::is_driving_any() {
            return Err(reentry::refusal("run maintenance inside"));
        }
        let started = std::time::Instant::now();
        let ctx = Context { wait: LockWait::Skip, ..client_context() };
        let items = usize::try_from(EVENTS_PER_MAINTENANCE_MAX).unwrap_or(usize::MAX);
        // Where a worker serves this database the feed is its job: sequencing here would hold
        // the sequencer's lock until this caller commits, however long it stays open.
        let sequence = !crate::wake::worker_serves(&crate::store::current_database());
        let duties = maintenance::Duties::Everything { sequence };
        let (report, _) = maintenance::pass(&ctx, items, duties);
        let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        maintenance::record_pass(elapsed, &report);
        Ok(JsonB(report.to_json()))
    })
}

/// A one-step event of a built-in posting: checked like any step, then run on the fast path
/// (`driver::fast`), the same saga skipping what a new one-step event cannot need. Returns the
/// event id; a refusal raises its own error and leaves nothing.
fn one_step_event(
    step_type: &'static str,
    payload: &str,
    metadata: Option<serde_json::Value>,
) -> Result<Uuid, CteError> {
    let spec = StepSpec {
        name: step_type,
        description: None,
        type_name: step_type,
        payload: Payload::Text(payload),
        payload_bytes: payload.len(),
        order: None,
        max_attempts: Some(1),
    };
    let checked = checks::step(&spec, 1, &build::currency_book())?;
    let postings = checked.plan.as_ref().map_or(&[][..], |plan| &plan.postings[..]);
    super::security::refuse_foreign_debits(step_type, postings);
    let event_id = fast::one_step_event(checked, payload, metadata, &client_context())?;
    // A replay under another's reference returns that one's event.
    super::security::refuse_foreign_reply(step_type, event_id);
    Ok(event_id)
}

/// A one-step `wallet.transfer` event, created and run. Returns the event id when it
/// completes; raises the refusal's own error (insufficient funds, …) when it does not.
/// `metadata` (a JSON object) is kept on its event, found by `cte_find_events` and shown in
/// statements; it is not part of the request a retry must repeat (SPEC §9: it moves nothing).
#[pg_extern(name = "cte_transfer", security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_transfer_with_metadata(
    source: Option<String>,
    destination: Option<String>,
    amount: Option<AnyNumeric>,
    currency: Option<String>,
    reference: default!(Option<String>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
) -> Uuid {
    refused("cte_transfer", move || {
        transfer(source, destination, amount, currency, reference, metadata)
    })
}

/// 0.2.0's `cte_transfer` (five arguments), serving 0.2.0's SQL until the update.
#[pg_extern(sql = false)]
fn cte_transfer(
    source: Option<String>,
    destination: Option<String>,
    amount: Option<AnyNumeric>,
    currency: Option<String>,
    reference: Option<String>,
) -> Uuid {
    refused("cte_transfer", move || {
        transfer(source, destination, amount, currency, reference, None)
    })
}

fn transfer(
    source: Option<String>,
    destination: Option<String>,
    amount: Option<AnyNumeric>,
    currency: Option<String>,
    reference: Option<String>,
    metadata: Option<JsonbText>,
) -> Result<Uuid, CteError> {
    let source = AccountId::parse(&required(source, "source")?)?;
    let destination = AccountId::parse(&required(destination, "destination")?)?;
    let currency = ledger::currency(&required(currency, "currency")?)?;
    let amount = Amount::parse(&required(amount, "amount")?.to_string(), &currency)?;
    let metadata = metadata_of(metadata)?;
    // One builder of a transfer's payload with the bulk path's items: either replays the other.
    let request = TransferRequest { source, destination, amount, currency, reference, metadata };
    one_step_event("wallet.transfer", &request.payload(), request.metadata.value().cloned())
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
        one_step_event("wallet.deposit", &payload.to_string(), None)
    })
}

/// A refund of a completed event: a new event, linked to it (`refund_of`), whose one step posts
/// the mirror image of its postings, newest first (entries of kind `refund`, carrying
/// `reference`). `amount` refunds part of it: of its one posting, or taken from the payees of an
/// event that paid one payer's money out to several in proportion to what each still holds;
/// `legs` (`[{"account_id", "amount", "to"}]`) name the parts instead. The refunds of an event
/// never return more than it moved. Returns the refund's event id; the same reference with the
/// same request returns the first refund.
#[pg_extern(name = "cte_reverse_event", security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_reverse_event_legs(
    event_id: Option<Uuid>,
    reason: Option<String>,
    amount: default!(Option<AnyNumeric>, "NULL"),
    reference: default!(Option<String>, "NULL"),
    legs: default!(Option<JsonbText>, "NULL"),
) -> Uuid {
    refused("cte_reverse_event", move || reverse_event(event_id, reason, amount, reference, legs))
}

/// A refund of a lien's capture (`capture_id`, as `ctel_capture_lien` returned it): a new
/// event whose one step gives back `amount` (by default all that is left) from the capture's
/// destination to the lien's account. The refunds of a capture never return more than it
/// moved; the same reference with the same request returns the first refund.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_reverse_capture(
    capture_id: Option<Uuid>,
    reason: Option<String>,
    amount: default!(Option<AnyNumeric>, "NULL"),
    reference: default!(Option<String>, "NULL"),
) -> Uuid {
    refused("cte_reverse_capture", move || {
        let capture_id = required(capture_id, "capture_id")?;
        super::security::refuse_foreign_capture("cte_reverse_capture", capture_id);
        super::security::refuse_foreign_refund("cte_reverse_capture", || {
            crate::store::tenancy::credited_by_posting(capture_id)
        });
        let (reason, amount) = refund_terms(reason, amount, reference.as_deref())?;
        let asked = crate::driver::refunds::CaptureRefund {
            capture_id,
            reason: &reason,
            amount: amount.as_deref(),
            reference: reference.as_deref(),
        };
        let refund = crate::driver::refunds::reverse_capture(&asked, &client_context())?;
        super::security::refuse_foreign_debits_of("cte_reverse_capture", refund);
        Ok(refund)
    })
}

/// 0.2.0's `cte_reverse_event` (four arguments): the symbol 0.2.0's SQL names, served until
/// `ALTER EXTENSION cte_ctel UPDATE` replaces it (it refunds as the new one does, without legs).
#[pg_extern(sql = false)]
fn cte_reverse_event(
    event_id: Option<Uuid>,
    reason: Option<String>,
    amount: Option<AnyNumeric>,
    reference: Option<String>,
) -> Uuid {
    refused("cte_reverse_event", move || reverse_event(event_id, reason, amount, reference, None))
}

fn reverse_event(
    event_id: Option<Uuid>,
    reason: Option<String>,
    amount: Option<AnyNumeric>,
    reference: Option<String>,
    legs: Option<JsonbText>,
) -> Result<Uuid, CteError> {
    let event_id = required(event_id, "event_id")?;
    super::security::refuse_foreign_event("cte_reverse_event", event_id);
    super::security::refuse_foreign_refund("cte_reverse_event", || {
        crate::store::tenancy::credited_by_event(event_id)
    });
    let (reason, amount) = refund_terms(reason, amount, reference.as_deref())?;
    let legs_json =
        legs.map(|legs| legs.text("legs size in bytes", PAYLOAD_BYTES_MAX)).transpose()?;
    let legs = legs_json.as_deref().map(refund_legs).transpose()?;
    let asked = crate::driver::refunds::Refund {
        event_id,
        reason: &reason,
        amount: amount.as_deref(),
        reference: reference.as_deref(),
        legs: legs.as_deref(),
        legs_json: legs_json.as_deref(),
    };
    let refund = crate::driver::refunds::reverse_event(&asked, &client_context())?;
    super::security::refuse_foreign_debits_of("cte_reverse_event", refund);
    Ok(refund)
}

/// What every refund asks besides its target: its reason (required), its amount (as text;
/// `None`, all that is left) and its reference, checked as any reference is.
fn refund_terms(
    reason: Option<String>,
    amount: Option<AnyNumeric>,
    reference: Option<&str>,
) -> Result<(String, Option<String>), CteError> {
    let reason = required(reason, "reason")?;
    if let Some(reference) = reference {
        checks::reference(reference)?;
    }
    Ok((reason, amount.map(|amount| amount.to_string())))
}

/// The legs of a partial refund: an array of `{"account_id", "amount", "to"}` (`to` optional),
/// each amount read from its text, positive.
fn refund_legs(text: &str) -> Result<Vec<RefundLeg>, CteError> {
    let invalid = |why: String| CteError::PayloadInvalid { step_type: "refund legs".into(), why };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|error| invalid(error.to_string()))?;
    let Some(items) = value.as_array() else {
        return Err(invalid("legs must be an array of objects".into()));
    };
    if items.is_empty() || items.len() > REFUND_LEGS_MAX {
        return Err(invalid(format!("legs must name 1 to {REFUND_LEGS_MAX} parts")));
    }
    items
        .iter()
        .map(|item| {
            let Some(object) = item.as_object() else {
                return Err(invalid(format!("each leg must be an object: {item}")));
            };
            let known = ["account_id", "amount", "to"];
            if let Some(unknown) = object.keys().find(|key| !known.contains(&key.as_str())) {
                return Err(invalid(format!("a leg has no field {unknown:?}")));
            }
            let field = |name: &str| object.get(name).filter(|v| !v.is_null());
            let account = field("account_id").and_then(|v| v.as_str());
            let amount = field("amount").map(|v| v.as_str().map_or(v.to_string(), str::to_string));
            let (Some(account), Some(amount)) = (account, amount) else {
                return Err(invalid(format!(
                    "each leg needs \"account_id\" and \"amount\": {item}"
                )));
            };
            let to = match field("to") {
                None => None,
                Some(serde_json::Value::String(to)) => Some(to.clone()),
                Some(other) => {
                    return Err(invalid(format!("a leg's \"to\" must be a string: {other}")))
                }
            };
            // Read as any amount is (NaN, Infinity, exponents, too large); its scale is checked
            // where the event's currency is known.
            let amount = Amount::parse_signed(&amount, &Currency::new("XXX", 12)?)?.normalize();
            if amount <= rust_decimal::Decimal::ZERO {
                return Err(CteError::AmountNotPositive { amount: amount.to_string() });
            }
            Ok(RefundLeg { account_id: account.to_string(), amount, to })
        })
        .collect()
}

/// What starting a `created` event would do, without doing it: the event is started in a
/// subtransaction that is always rolled back, with step `fail_at` (a step's name) made to fail
/// when it runs if given, and what it would leave is returned: `status`, each step's status,
/// result and error, the `postings`, the `path` its changes took (the compensation path when
/// something failed), its `liens`, and the `balances` and available balances of the wallets it
/// touches. Custom executors run too, inside the subtransaction. Nothing is kept.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_dry_run(
    event_id: Option<Uuid>,
    fail_at: default!(Option<String>, "NULL"),
) -> super::json_text::JsonbOut {
    let outcome = refused("cte_dry_run", move || {
        let event_id = required(event_id, "event_id")?;
        super::security::refuse_unreadable_event("cte_dry_run", event_id);
        // Its balances are those of every account the event touches.
        super::security::refuse_partial_reader("cte_dry_run", "a dry run's balances");
        crate::driver::dry_run::dry_run(event_id, fail_at.as_deref(), &client_context())
    });
    match outcome {
        Ok(text) => super::json_text::JsonbOut(text),
        Err(failure) => crate::raise::failure("cte_dry_run", failure),
    }
}

/// A picture of an event: its steps in order, coloured by status, compensations as dashed back
/// edges, retries as loops, waits, and its liens with their fate, as a Mermaid flowchart
/// (`format` 'mermaid', the default) or a Graphviz DOT graph ('dot').
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_event_graph(
    event_id: Option<Uuid>,
    format: default!(Option<String>, "'mermaid'"),
) -> String {
    refused("cte_event_graph", move || {
        let event_id = required(event_id, "event_id")?;
        super::security::refuse_unreadable_event("cte_event_graph", event_id);
        let format =
            cte_ctel_core::engine::graph::GraphFormat::parse(&required(format, "format")?)?;
        let picture = crate::store::pictures::event(event_id)?;
        Ok(cte_ctel_core::engine::graph::render(&picture, format))
    })
}
