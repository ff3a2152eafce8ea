//! Liens made, released and captured by the API (`ctel_*`), each recording its change.
//! An event's lien is refused while this backend drives the event (a step's code cannot
//! change the holds of its own event under its drive).

use cte_ctel_core::engine::EventStatus;
use cte_ctel_core::ledger::{AccountId, Metadata, SYSTEM_ACCOUNT_PREFIX};
use cte_ctel_core::money::Amount;
use cte_ctel_core::CteError;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::Uuid;

use super::{reentry, Context};
use crate::store::changes::{self, Batch, Change};
use crate::store::liens::{self, LienRow};
use crate::store::{events, LockWait};

fn record(lien_event: Option<Uuid>, change: Change, reason: Option<String>, ctx: &Context) {
    changes::record(&Batch {
        event_id: lien_event,
        actor: ctx.actor.clone(),
        reason,
        changes: vec![change],
        ..Batch::default()
    });
}

/// Holds are on wallets: a system account has none to hold.
pub fn refuse_system_account(account: &AccountId) -> Result<(), CteError> {
    if account.as_str().starts_with(SYSTEM_ACCOUNT_PREFIX) {
        return Err(CteError::SystemAccountRefused { account_id: account.as_str().to_string() });
    }
    Ok(())
}

/// What `ctel_create_lien` asks for.
pub struct Hold<'a> {
    pub event_id: Option<Uuid>,
    pub account: &'a AccountId,
    pub amount: &'a Amount,
    pub expires_at: Option<TimestampWithTimeZone>,
    pub metadata: &'a Metadata,
    pub idempotency_key: Option<&'a str>,
}

/// Reserves funds on a wallet. For an event that has not started the lien is `pending` and
/// takes its funds when the event starts; otherwise it is `active` at once. The same
/// idempotency key returns the same lien.
pub fn create(hold: &Hold, ctx: &Context) -> Result<Uuid, CteError> {
    let (event_id, account) = (hold.event_id, hold.account);
    refuse_system_account(account)?;
    let active = match event_id {
        None => true,
        Some(event_id) => {
            reentry::refuse_if_driving(event_id, "hold funds for")?;
            let status = events::lock(event_id, LockWait::Wait)?.map(|event| event.status);
            match status.unwrap_or(EventStatus::Created) {
                EventStatus::Created => false,
                EventStatus::Running | EventStatus::Waiting => true,
                status @ (EventStatus::Completed
                | EventStatus::Compensating
                | EventStatus::Compensated
                | EventStatus::Failed
                | EventStatus::Resolved) => {
                    return Err(CteError::TransitionNotAllowed {
                        what: "event",
                        from: status.as_str(),
                        input: "hold funds for",
                    })
                }
            }
        }
    };
    let lien = liens::NewLien {
        event_id,
        step_id: None,
        account,
        amount: hold.amount,
        expires_at: hold.expires_at,
        metadata: hold.metadata,
        idempotency_key: hold.idempotency_key,
        active,
    };
    let (id, change) = liens::create(&lien, LockWait::Wait)?;
    if let Some(change) = change {
        record(event_id, change, None, ctx);
    }
    Ok(id)
}

/// A lien locked for a change by the API, refused if its event is being driven here.
fn locked(lien_id: Uuid, input: &'static str) -> Result<LienRow, CteError> {
    let lien = liens::lock(lien_id, LockWait::Wait)?;
    assert!(lien.is_some(), "a lien locked with Wait is found or refused");
    let lien = lien.ok_or(CteError::LienUnknown { lien_id: lien_id.to_string() })?;
    if let Some(event_id) = lien.event_id {
        reentry::refuse_if_driving(event_id, input)?;
    }
    Ok(lien)
}

/// Gives a lien's funds back.
pub fn release(lien_id: Uuid, reason: Option<&str>, ctx: &Context) -> Result<(), CteError> {
    let lien = locked(lien_id, "release a lien of")?;
    let change = liens::release(&lien, reason)?;
    record(lien.event_id, change, reason.map(str::to_string), ctx);
    Ok(())
}

/// Moves up to what the lien holds to the capture's destination; with `last`, the rest is
/// released, otherwise it stays held for later captures. Returns the posting id.
pub fn capture(lien_id: Uuid, asked: &liens::Capture, ctx: &Context) -> Result<Uuid, CteError> {
    let lien = locked(lien_id, "capture a lien of")?;
    let (posting_id, change) = liens::capture(&lien, asked)?;
    record(lien.event_id, change, None, ctx);
    Ok(posting_id)
}
