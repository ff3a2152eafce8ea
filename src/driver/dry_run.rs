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
use crate::store::events;
use crate::store::subtransaction::{self, Failure};

/// What starting a `created` event would do; with `fail_at` (a step's name), that step is made
/// to fail when it runs. Returns the status it would end in and what it would leave; a refusal
/// the start itself would raise (a pending lien the wallet cannot cover, …) is returned as that
/// refusal, and any other error inside as the failure it was.
pub fn dry_run(
    event_id: Uuid,
    fail_at: Option<&str>,
    ctx: &Context,
) -> Result<Result<String, Failure>, CteError> {
    let event = events::lock_event(event_id)?;
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
        Ok(events::outcome_text(event_id, status, fail_at))
    });
    if let Some(error) = refusal.into_inner() {
        return Err(error);
    }
    Ok(outcome)
}
