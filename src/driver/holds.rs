//! Liens made, released and captured by the API (`ctel_*`), each recording its change.
//! An event's lien is refused while this backend drives the event (a step's code cannot
//! change the holds of its own event under its drive).

use cte_ctel_core::ledger::{
    capture_is_replay, AccountId, LienAsk, LienStatus, Metadata, Posting, Reserve,
    SYSTEM_ACCOUNT_PREFIX,
};
use cte_ctel_core::money::Amount;
use cte_ctel_core::CteError;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::Uuid;
use rust_decimal::Decimal;

use super::{reentry, Context};
use crate::store::changes::{self, Batch, Change};
use crate::store::liens::{self, LienRow};
use crate::store::{events, ledger, postings, LockWait};

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
    let mut lien = liens::NewLien {
        event_id,
        step_id: None,
        account,
        amount: hold.amount,
        expires_at: hold.expires_at,
        metadata: hold.metadata,
        idempotency_key: hold.idempotency_key,
        active: false,
    };
    // A replay returns the lien its key names before anything else is checked (SPEC §9): its
    // expiry may have passed, or its event ended, since the first call.
    if let Some(key) = hold.idempotency_key {
        if let Some(id) = liens::replay_by_key(key, &lien)? {
            return Ok(id);
        }
    }
    lien.active = match event_id {
        None => true,
        Some(event_id) => {
            reentry::refuse_if_driving(event_id, "hold funds for")?;
            events::lock_event(event_id)?.status.new_lien()? == LienStatus::Active
        }
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

/// A capture asked of a lien.
pub struct Capture<'a> {
    pub destination: &'a AccountId,
    /// Up to what it still holds; `None`: all of it.
    pub amount: Option<&'a str>,
    /// Carried by the capture's entries.
    pub reference: Option<&'a str>,
    /// The remainder is released and the lien ends `captured`; otherwise it stays active for
    /// later captures (until one takes all it holds).
    pub last: bool,
}

/// Performs the capture the lien machine decides: moves what it says to the destination,
/// giving the hold back in the same update of the wallet. Returns the capture's posting id and
/// the change.
fn capture_locked(lien: &LienRow, asked: &Capture) -> Result<(Uuid, Change), CteError> {
    let currency = ledger::currency(&lien.currency)?;
    let ask = LienAsk::Capture { requested: asked.amount, currency: &currency, last: asked.last };
    let effects = lien.handle(ask)?;
    let Some(effects) = effects else {
        panic!("the lien machine answers a capture with its move or a refusal");
    };
    let (Some(moved), Reserve::GiveBack(given_back)) = (effects.moved, effects.reserve) else {
        panic!("a capture moves money and gives back its hold: {effects:?}");
    };
    let captured = Amount::parse(&moved.to_string(), &currency)?;
    let source = AccountId::parse(&lien.account_id)?;
    let mut posting = Posting::transfer(&source, asked.destination, &captured)?;
    posting.settles = true; // it spends funds held before any freeze
                            // Both wallets in the global order before either is touched: giving the hold back locks
                            // the source, and the posting would otherwise lock the destination after it.
    let destination = asked.destination.as_str().to_string();
    let wallets = vec![lien.wallet(), (destination, lien.currency.clone())];
    postings::lock_wallets(wallets, LockWait::Wait)?;
    // The hold is given back first, so the capture's own debit is checked like any posting;
    // both are written in one update of the wallet.
    let origin = postings::Origin { step: None, lien: Some(lien.id) };
    let releases = [(lien.wallet(), given_back)];
    let ids =
        postings::post_releasing(&[posting], &[asked.reference], origin, &releases, LockWait::Wait)
            .map_err(|(_, e)| e)?;
    Ok((ids[0], liens::write_capture(lien, &effects, ids[0])))
}

/// The capture already made under the asked reference (unique per lien, SPEC §9): its
/// posting id when this is the same request again (a replay, whatever the lien's status now),
/// `idempotency_conflict` when it is another request.
fn captured_before(lien: &LienRow, asked: &Capture) -> Result<Option<Uuid>, CteError> {
    let Some(reference) = asked.reference else {
        return Ok(None);
    };
    let Some((posting, first)) = liens::capture_by_reference(lien.id, reference) else {
        return Ok(None);
    };
    let amount = asked.amount.map(Decimal::from_str_exact).transpose();
    let destination = asked.destination.as_str();
    if let Ok(amount) = amount {
        if capture_is_replay(&first, destination, amount, asked.last) {
            return Ok(Some(posting));
        }
    }
    let final_word = |last: bool| if last { "final" } else { "not final" };
    Err(CteError::IdempotencyConflict {
        key: reference.to_string(),
        held: format!(
            "a capture of {} to {:?} of lien {}",
            first.amount, first.destination, lien.id
        ),
        requested: format!(
            "a {} capture of {} to {destination:?}",
            final_word(asked.last),
            asked.amount.unwrap_or("all it holds")
        ),
        original: format!("capture posting {posting}"),
    })
}

/// Gives a lien's funds back.
pub fn release(lien_id: Uuid, reason: Option<&str>, ctx: &Context) -> Result<(), CteError> {
    let lien = locked(lien_id, "release a lien of")?;
    // `None`: a release sent again (SPEC §9); the lien is already where it asked.
    if let Some(change) = liens::release(&lien, reason)? {
        record(lien.event_id, change, reason.map(str::to_string), ctx);
    }
    Ok(())
}

/// Moves up to what the lien holds to the capture's destination; with `last`, the rest is
/// released, otherwise it stays held for later captures. Returns the posting id.
pub fn capture(lien_id: Uuid, asked: &Capture, ctx: &Context) -> Result<Uuid, CteError> {
    let lien = locked(lien_id, "capture a lien of")?;
    // Under the lien's lock: a racing capture with the same reference has committed or not.
    if let Some(first) = captured_before(&lien, asked)? {
        return Ok(first);
    }
    let (posting_id, change) = capture_locked(&lien, asked)?;
    record(lien.event_id, change, None, ctx);
    Ok(posting_id)
}
