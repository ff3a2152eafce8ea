//! Liens in SQL. A lien's row is locked before any change of its status, then its wallet's (the
//! global lock order is event, then lien, then wallet); its reservation is counted in the
//! wallet's `reserved` through `postings`, the one writer, so two sessions racing for the same
//! funds cannot both win. Every status change is returned as a `Change` for the feed.

use cte_ctel_core::engine::executors::StepPlan;
use cte_ctel_core::ledger::{
    capture_split, lien_transition, wallet_debits, AccountId, LienInput, LienStatus, Metadata,
    Posting,
};
use cte_ctel_core::money::Amount;
use cte_ctel_core::CteError;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};
use rust_decimal::Decimal;

use super::changes::{Change, Kind};
use super::postings::{self, WalletKey};
use super::{ledger, run_cached, select_one, spi, update_one, LockWait};

/// A lien as read under its row lock.
pub struct LienRow {
    pub id: Uuid,
    pub event_id: Option<Uuid>,
    pub transaction_id: Option<Uuid>,
    pub account_id: String,
    pub currency: String,
    pub amount: Decimal,
    pub status: LienStatus,
}

impl LienRow {
    fn wallet(&self) -> WalletKey {
        (self.account_id.clone(), self.currency.clone())
    }
}

fn lien_row(row: &pgrx::spi::SpiHeapTupleData, query: &str) -> LienRow {
    let text = |ordinal| spi(row.get::<String>(ordinal), query).unwrap_or_default();
    let status = LienStatus::parse(&text(7));
    assert!(status.is_some(), "a domain keeps lien statuses known");
    let amount = Decimal::from_str_exact(&text(6));
    assert!(amount.is_ok(), "a lien's amount was an Amount");
    LienRow {
        id: spi(row.get::<Uuid>(1), query).unwrap_or(Uuid::from_bytes([0; 16])),
        event_id: spi(row.get::<Uuid>(2), query),
        transaction_id: spi(row.get::<Uuid>(3), query),
        account_id: text(4),
        currency: text(5),
        amount: amount.unwrap_or_default(),
        status: status.unwrap_or(LienStatus::Expired),
    }
}

macro_rules! lien_columns {
    () => {
        "SELECT id, event_id, transaction_id, account_id, currency, amount::text, status
           FROM cte_ctel.cte_liens "
    };
}

/// Locks and reads the liens a query selects (by `$1`), in the order it gives.
fn lock_liens(query: &'static str, key: Uuid) -> Vec<LienRow> {
    Spi::connect_mut(|client| {
        let table = run_cached(client, query, &[key.into()], true);
        table.map(|row| lien_row(&row, query)).collect()
    })
}

const LIEN_LOCK: &str = concat!(lien_columns!(), "WHERE id = $1 FOR UPDATE");
const LIEN_LOCK_SKIP: &str = concat!(lien_columns!(), "WHERE id = $1 FOR UPDATE SKIP LOCKED");

/// Locks one lien for the rest of the transaction; `Ok(None)` only with `LockWait::Skip`, when
/// another session holds it.
pub fn lock(lien_id: Uuid, wait: LockWait) -> Result<Option<LienRow>, CteError> {
    let query = match wait {
        LockWait::Wait => LIEN_LOCK,
        LockWait::Skip => LIEN_LOCK_SKIP,
    };
    match (lock_liens(query, lien_id).pop(), wait) {
        (Some(lien), _) => Ok(Some(lien)),
        (None, LockWait::Wait) => Err(CteError::LienUnknown { lien_id: lien_id.to_string() }),
        (None, LockWait::Skip) => Ok(None),
    }
}

const LIEN_FINISH: &str = "
    UPDATE cte_ctel.cte_liens
       SET status = $2, reason = $3, captured_amount = $4, capture_posting_id = $5,
           finished_at = CASE WHEN $2 IN ('captured', 'released', 'expired')
                              THEN pg_catalog.statement_timestamp() END
     WHERE id = $1";

fn write_status(
    lien: &LienRow,
    to: LienStatus,
    reason: Option<&str>,
    capture: Option<(Decimal, Uuid)>,
) {
    let captured = capture.map(|(amount, _)| ledger::numeric(&amount.to_string()));
    let args = [
        lien.id.into(),
        to.as_str().into(),
        reason.into(),
        captured.into(),
        capture.map(|(_, posting)| posting).into(),
    ];
    Spi::connect_mut(|client| {
        run_cached(client, LIEN_FINISH, &args, true);
    });
}

fn lien_change(lien: &LienRow, from: Option<LienStatus>, to: LienStatus) -> Change {
    Change {
        kind: Kind::Lien,
        transaction_id: lien.transaction_id,
        lien_id: Some(lien.id),
        old_status: from.map(LienStatus::as_str),
        new_status: to.as_str(),
    }
}

/// Moves a locked lien by `input`, reserving or giving back its funds as its status asks.
fn change(
    lien: &LienRow,
    input: LienInput,
    reason: Option<&str>,
    wait: LockWait,
) -> Result<Change, CteError> {
    let to = lien_transition(lien.status, input)?;
    if lien.status.reserves() != to.reserves() {
        postings::change_reserved(&lien.wallet(), lien.amount, to.reserves(), wait)?;
    }
    write_status(lien, to, reason, None);
    Ok(lien_change(lien, Some(lien.status), to))
}

const LIEN_INSERT: &str = "
    INSERT INTO cte_ctel.cte_liens
           (id, event_id, transaction_id, account_id, currency, amount, status, expires_at,
            metadata)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

const EXPIRY_VALID: &str = "SELECT $1 > pg_catalog.statement_timestamp()";

const EVENT_LIENS: &str = "SELECT count(*) FROM cte_ctel.cte_liens
                            WHERE event_id = $1 AND transaction_id IS NULL";

/// A new lien on `account` and the change that made it. `active` reserves its funds now
/// (refused if the wallet cannot spare them); otherwise it is `pending` until its event starts.
#[allow(clippy::too_many_arguments)]
pub fn create(
    event_id: Option<Uuid>,
    step_id: Option<Uuid>,
    account: &AccountId,
    amount: &Amount,
    expires_at: Option<TimestampWithTimeZone>,
    metadata: &Metadata,
    active: bool,
    wait: LockWait,
) -> Result<(Uuid, Change), CteError> {
    if let Some(expires_at) = expires_at {
        if select_one::<bool>(EXPIRY_VALID, &[expires_at.into()]) != Some(true) {
            return Err(CteError::ExpiryInvalid { expires_at: expires_at.to_string() });
        }
    }
    if let (Some(event_id), None) = (event_id, step_id) {
        let held: i64 = select_one(EVENT_LIENS, &[event_id.into()]).unwrap_or(0);
        let held = usize::try_from(held).unwrap_or(usize::MAX);
        if held >= cte_ctel_core::limits::EVENT_LIENS_MAX {
            return Err(CteError::LimitExceeded {
                what: "liens of one event",
                value: held + 1,
                limit: cte_ctel_core::limits::EVENT_LIENS_MAX,
            });
        }
    }
    let wallet = (account.as_str().to_string(), amount.currency().to_string());
    if active {
        postings::change_reserved(&wallet, amount.value(), true, wait)?;
    } else {
        ledger::check_wallet(account.as_str(), amount.currency())?;
    }
    let status = if active { LienStatus::Active } else { LienStatus::Pending };
    let id = super::new_id();
    let args = [
        id.into(),
        event_id.into(),
        step_id.into(),
        account.as_str().into(),
        amount.currency().into(),
        ledger::numeric(&amount.to_string()).into(),
        status.as_str().into(),
        expires_at.into(),
        metadata.value().cloned().map(JsonB).into(),
    ];
    Spi::connect_mut(|client| {
        run_cached(client, LIEN_INSERT, &args, true);
    });
    let lien = LienRow {
        id,
        event_id,
        transaction_id: step_id,
        account_id: wallet.0,
        currency: wallet.1,
        amount: amount.value(),
        status,
    };
    Ok((id, lien_change(&lien, None, status)))
}

fn refuse_step_lien(lien: &LienRow, input: &'static str) -> Result<(), CteError> {
    if lien.transaction_id.is_some() {
        return Err(CteError::TransitionNotAllowed {
            what: "lien",
            from: "held by a transaction",
            input,
        });
    }
    Ok(())
}

/// Gives a lien's funds back (`ctel_release_lien`); returns the change.
pub fn release(lien: &LienRow, reason: Option<&str>) -> Result<Change, CteError> {
    refuse_step_lien(lien, "release")?;
    change(lien, LienInput::Release, reason.or(Some("released")), LockWait::Wait)
}

/// Moves up to the held amount to `destination`; the remainder is given back. Returns the
/// capture's posting id and the change.
pub fn capture(
    lien: &LienRow,
    destination: &AccountId,
    requested: Option<&str>,
) -> Result<(Uuid, Change), CteError> {
    refuse_step_lien(lien, "capture")?;
    lien_transition(lien.status, LienInput::Capture)?;
    let currency = ledger::currency(&lien.currency)?;
    let held = Amount::parse(&lien.amount.to_string(), &currency)?;
    let requested = requested.map(|amount| Amount::parse(amount, &currency)).transpose()?;
    let (captured, remainder) = capture_split(&held, requested.as_ref())?;
    let captured = Amount::parse(&captured.to_string(), &currency)?;
    let source = AccountId::parse(&lien.account_id)?;
    let posting = Posting::transfer(&source, destination, &captured)?;
    // Both wallets in the global order before either is touched: giving the hold back locks
    // the source, and the posting would otherwise lock the destination after it.
    let wallets = vec![lien.wallet(), (destination.as_str().to_string(), lien.currency.clone())];
    postings::lock_wallets(wallets, LockWait::Wait)?;
    // Give the hold back first: the capture's own debit is then checked like any posting.
    postings::change_reserved(&lien.wallet(), lien.amount, false, LockWait::Wait)?;
    let ids = postings::post(&[posting], &[None], None, LockWait::Wait).map_err(|(_, e)| e)?;
    let reason = format!("captured {captured}, released {remainder}");
    write_status(lien, LienStatus::Captured, Some(&reason), Some((captured.value(), ids[0])));
    Ok((ids[0], lien_change(lien, Some(lien.status), LienStatus::Captured)))
}

// Wallet order (bytewise, as Rust sorts) after lien order: ids, as every locker of an event's
// liens takes them.
const PENDING_OF_EVENT: &str =
    concat!(lien_columns!(), "WHERE event_id = $1 AND status = 'pending' ORDER BY id FOR UPDATE");
const HELD_OF_EVENT: &str = concat!(
    lien_columns!(),
    "WHERE event_id = $1 AND status IN ('pending', 'active') ORDER BY id FOR UPDATE"
);
const HELD_OF_EVENT_NOWAIT: &str = concat!(
    lien_columns!(),
    "WHERE event_id = $1 AND status IN ('pending', 'active') ORDER BY id FOR UPDATE NOWAIT"
);
const HELD_OF_STEP: &str = concat!(
    lien_columns!(),
    "WHERE transaction_id = $1 AND status IN ('pending', 'active') ORDER BY id FOR UPDATE"
);

/// Locks the liens an event still holds (a drive takes them after the event's row, before any
/// wallet); returns them.
pub fn lock_of_event(event_id: Uuid, wait: LockWait) -> Vec<LienRow> {
    match wait {
        LockWait::Wait => lock_liens(HELD_OF_EVENT, event_id),
        LockWait::Skip => lock_liens(HELD_OF_EVENT_NOWAIT, event_id),
    }
}

/// Activates an event's pending liens as it starts, checking their funds; the first that
/// cannot be covered refuses the start.
pub fn activate_pending(event_id: Uuid, wait: LockWait) -> Result<Vec<Change>, CteError> {
    let liens = lock_liens(PENDING_OF_EVENT, event_id);
    liens.iter().map(|lien| change(lien, LienInput::Activate, None, wait)).collect()
}

/// Releases every lien an event still holds: none outlives it.
pub fn release_of_event(
    event_id: Uuid,
    reason: &str,
    wait: LockWait,
) -> Result<Vec<Change>, CteError> {
    let liens = lock_liens(HELD_OF_EVENT, event_id);
    liens.iter().map(|lien| change(lien, LienInput::Release, Some(reason), wait)).collect()
}

/// Releases what a step holds (its compensation before the event completed).
pub fn release_of_step(
    step_id: Uuid,
    reason: &str,
    wait: LockWait,
) -> Result<Vec<Change>, CteError> {
    let liens = lock_liens(HELD_OF_STEP, step_id);
    liens.iter().map(|lien| change(lien, LienInput::Release, Some(reason), wait)).collect()
}

/// Holds the funds a step's postings will take out of wallets, until its event completes.
pub fn hold_for_step(
    event_id: Uuid,
    step_id: Uuid,
    plan: &StepPlan,
    wait: LockWait,
) -> Result<(Vec<Uuid>, Vec<Change>), CteError> {
    let (mut ids, mut changes) = (Vec::new(), Vec::new());
    for (account_id, currency_code, amount) in wallet_debits(&plan.postings) {
        let currency = ledger::currency(&currency_code)?;
        let amount = Amount::parse(&amount.to_string(), &currency)?;
        let account = AccountId::parse(&account_id)?;
        let metadata = Metadata::parse(None, 0)?;
        let event = Some(event_id);
        let (id, change) =
            create(event, Some(step_id), &account, &amount, None, &metadata, true, wait)?;
        ids.push(id);
        changes.push(change);
    }
    Ok((ids, changes))
}

/// At its event's completion: gives back a step's holds and makes its postings, marking each
/// lien captured. The funds cannot go elsewhere in between: their rows stay locked.
pub fn capture_step(
    step_id: Uuid,
    plan: &StepPlan,
    reference: Option<&str>,
    wait: LockWait,
) -> Result<Vec<Change>, CteError> {
    let liens = lock_liens(HELD_OF_STEP, step_id);
    let mut wallets: Vec<WalletKey> = liens.iter().map(LienRow::wallet).collect();
    for posting in &plan.postings {
        let entries = posting.entries.iter().filter(|entry| !entry.is_system());
        wallets.extend(entries.map(|entry| (entry.account_id.clone(), posting.currency.clone())));
    }
    postings::lock_wallets(wallets, wait)?;
    for lien in &liens {
        assert_eq!(
            lien.status,
            LienStatus::Active,
            "a held step's liens are active until captured"
        );
        postings::change_reserved(&lien.wallet(), lien.amount, false, wait)?;
    }
    let references = vec![reference; plan.postings.len()];
    let posted = postings::post(&plan.postings, &references, Some(step_id), wait);
    let posting_ids = posted.map_err(|(_, error)| error)?;
    let first = posting_ids.first().copied().unwrap_or(Uuid::from_bytes([0; 16]));
    let reason = Some("captured as its event completed");
    let mut changes = Vec::with_capacity(liens.len());
    for lien in &liens {
        write_status(lien, LienStatus::Captured, reason, Some((lien.amount, first)));
        changes.push(lien_change(lien, Some(lien.status), LienStatus::Captured));
    }
    Ok(changes)
}

const DUE_LIENS: &str = "
    SELECT id FROM cte_ctel.cte_liens
     WHERE status IN ('pending', 'active') AND expires_at <= pg_catalog.statement_timestamp()
     ORDER BY expires_at LIMIT $1";

/// Up to `limit` liens past `expires_at`, oldest first (candidates: each is re-read under its
/// lock before it changes).
pub fn due(limit: i64) -> Vec<Uuid> {
    Spi::connect_mut(|client| {
        let table = run_cached(client, DUE_LIENS, &[limit.into()], false);
        table.filter_map(|row| spi(row.get::<Uuid>(1), DUE_LIENS)).collect()
    })
}

const STILL_DUE: &str = "SELECT status IN ('pending', 'active')
                                AND expires_at <= pg_catalog.statement_timestamp()
                           FROM cte_ctel.cte_liens WHERE id = $1";

/// Expires one lien if, locked now, it is still due; `Ok(None)` when another session holds it
/// or it no longer is (its event ended, it was captured): the read before the lock was stale.
pub fn expire_if_due(lien_id: Uuid) -> Result<Option<LienRow>, CteError> {
    let Some(lien) = lock(lien_id, LockWait::Skip)? else {
        return Ok(None);
    };
    let still_due: Option<bool> =
        Spi::connect_mut(|client| update_one(client, STILL_DUE, &[lien_id.into()]));
    if still_due != Some(true) {
        return Ok(None);
    }
    change(&lien, LienInput::Expire, Some("expired"), LockWait::Skip)?;
    Ok(Some(lien))
}
