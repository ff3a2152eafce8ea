//! `cte_dry_run`: an event still `created` is started in a subtransaction that is always rolled
//! back, optionally with one step made to fail when it runs, and what it would have done is read
//! back before the rollback: each step's status and result, the postings, the path its changes
//! took (the compensation path when something failed), the liens, and the balances it would
//! leave. Custom executors run too, inside the same subtransaction. Nothing of it is kept, no
//! notification goes out (the feed only ever sees committed changes); identity sequences
//! (entry, delta and change-outbox ids) are consumed, as PostgreSQL never rolls them back.

use cte_ctel_core::engine::EventStatus;
use cte_ctel_core::CteError;
use pgrx::Uuid;

use super::{drive_failing, Command, Context};
use crate::store::subtransaction::{self, Failure};
use crate::store::{events, select_one};

// What the event would leave, read inside the subtransaction before it is rolled back, as JSON
// text: never parsed into a serde value (a step's result may be nested deeper than serde's
// limit), it becomes jsonb again when it is returned. $2: the status it would end in; $3: the
// step made to fail on purpose.
const OUTCOME: &str = "
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

/// What starting a `created` event would do; with `fail_at` (a step's name), that step is made
/// to fail when it runs. Returns the status it would end in and what it would leave; a refusal
/// the start itself would raise (a pending lien the wallet cannot cover, …) is returned as that
/// refusal, and any other error inside as the failure it was.
pub fn dry_run(
    event_id: Uuid,
    fail_at: Option<&str>,
    ctx: &Context,
) -> Result<Result<String, Failure>, CteError> {
    let Some(event) = events::lock(event_id, crate::store::LockWait::Wait)? else {
        return Err(CteError::EventUnknown { event_id: event_id.to_string() });
    };
    if event.status != EventStatus::Created {
        let from = event.status.as_str();
        return Err(CteError::TransitionNotAllowed { what: "event", from, input: "dry-run" });
    }
    let steps = events::steps(event_id);
    let fail_index = match fail_at {
        None => None,
        Some(name) => Some(steps.iter().position(|step| step.name == name).ok_or_else(|| {
            CteError::TransactionUnknown { transaction_id: format!("{name:?} of event {event_id}") }
        })?),
    };
    let refusal = std::cell::RefCell::new(None);
    let outcome = subtransaction::run_rolled_back(|| {
        let status = match drive_failing(event_id, Command::Start, ctx, fail_index) {
            Ok(status) => status,
            Err(error) => {
                let failure = Failure::from_refusal(&error);
                *refusal.borrow_mut() = Some(error);
                return Err(failure);
            }
        };
        let status = status.map_or("created", EventStatus::as_str);
        let args = [event_id.into(), status.into(), fail_at.into()];
        let read: Option<String> = select_one(OUTCOME, &args);
        assert!(read.is_some(), "an event's outcome is an object");
        Ok(read.unwrap_or_default())
    });
    if let Some(error) = refusal.into_inner() {
        return Err(error);
    }
    Ok(outcome)
}
