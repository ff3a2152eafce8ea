//! Liens in SQL. Reserving is a guarded UPDATE of the balance's `reserved` under the balance
//! row's lock (taken in the same global order as postings), so two sessions racing for the same
//! funds cannot both win; a lien's own row is locked before any change of its status.

use cte_ctel_core::engine::executors::StepPlan;
use cte_ctel_core::ledger::{
    capture_split, lien_transition, wallet_debits, AccountId, LienInput, LienStatus, Metadata,
    Posting,
};
use cte_ctel_core::money::Amount;
use cte_ctel_core::CteError;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, JsonB, Uuid};

use super::{ledger, run_cached, select_one, spi, update_one};

const RESERVE: &str = "
    UPDATE cte_ctel.cte_balances SET reserved = reserved + $3
     WHERE account_id = $1 AND currency = $2
       AND (allow_negative OR balance - reserved - $3 >= 0)
    RETURNING 1";

const UNRESERVE: &str = "
    UPDATE cte_ctel.cte_balances SET reserved = reserved - $3
     WHERE account_id = $1 AND currency = $2
    RETURNING 1";

/// Counts `amount` into the wallet's reserved funds, refused if they do not cover it.
fn reserve(account_id: &str, currency: &str, amount: &str) -> Result<(), CteError> {
    let args = [account_id.into(), currency.into(), ledger::numeric(amount).into()];
    let done: Option<i32> = Spi::connect_mut(|client| update_one(client, RESERVE, &args));
    match done {
        Some(_) => Ok(()),
        None => Err(ledger::refusal(account_id, currency, amount)),
    }
}

fn unreserve(account_id: &str, currency: &str, amount: &str) {
    let args = [account_id.into(), currency.into(), ledger::numeric(amount).into()];
    let done: Option<i32> = Spi::connect_mut(|client| update_one(client, UNRESERVE, &args));
    assert!(done.is_some(), "an active lien's balance row exists");
}

/// A lien as read under its row lock.
pub struct LienRow {
    pub id: Uuid,
    pub transaction_id: Option<Uuid>,
    pub account_id: String,
    pub currency: String,
    /// The held amount as decimal text, exactly as stored.
    pub amount: String,
    pub status: LienStatus,
}

fn lien_row(row: &pgrx::spi::SpiHeapTupleData, query: &str) -> LienRow {
    let text = |ordinal| spi(row.get::<String>(ordinal), query).unwrap_or_default();
    let status = LienStatus::parse(&text(6));
    assert!(status.is_some(), "a CHECK keeps lien statuses known");
    LienRow {
        id: spi(row.get::<Uuid>(1), query).unwrap_or(Uuid::from_bytes([0; 16])),
        transaction_id: spi(row.get::<Uuid>(2), query),
        account_id: text(3),
        currency: text(4),
        amount: text(5),
        status: status.unwrap_or(LienStatus::Expired),
    }
}

/// Locks and reads the liens a query selects (by `$1`), in the order it gives.
fn lock_liens(query: &'static str, key: Uuid) -> Vec<LienRow> {
    Spi::connect_mut(|client| {
        let table = run_cached(client, query, &[key.into()], true);
        table.map(|row| lien_row(&row, query)).collect()
    })
}

const LIEN_LOCK: &str = "SELECT id, transaction_id, account_id, currency, amount::text, status
    FROM cte_ctel.cte_liens WHERE id = $1 FOR UPDATE";

/// Locks one lien for the rest of the transaction.
pub fn lock(lien_id: Uuid) -> Result<LienRow, CteError> {
    let mut rows = lock_liens(LIEN_LOCK, lien_id);
    rows.pop().ok_or_else(|| CteError::LienUnknown { lien_id: lien_id.to_string() })
}

const LIEN_FINISH: &str = "
    UPDATE cte_ctel.cte_liens
       SET status = $2, reason = $3, captured_amount = $4, capture_posting_id = $5,
           finished_at = CASE WHEN $2 IN ('captured', 'released', 'expired') THEN now() END
     WHERE id = $1";

/// Moves a locked lien by `input`, giving back its reservation if it held one.
fn change(
    lien: &LienRow,
    input: LienInput,
    reason: Option<&str>,
    capture: Option<(&str, Uuid)>,
) -> Result<LienStatus, CteError> {
    let to = lien_transition(lien.status, input)?;
    if lien.status.reserves() && !to.reserves() {
        unreserve(&lien.account_id, &lien.currency, &lien.amount);
    }
    if !lien.status.reserves() && to.reserves() {
        reserve(&lien.account_id, &lien.currency, &lien.amount)?;
    }
    let captured_amount = capture.map(|(amount, _)| ledger::numeric(amount));
    let args = [
        lien.id.into(),
        to.as_str().into(),
        reason.into(),
        captured_amount.into(),
        capture.map(|(_, posting)| posting).into(),
    ];
    Spi::connect_mut(|client| {
        run_cached(client, LIEN_FINISH, &args, true);
    });
    Ok(to)
}

const LIEN_INSERT: &str = "
    INSERT INTO cte_ctel.cte_liens
           (event_id, transaction_id, account_id, currency, amount, status, expires_at, metadata)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    RETURNING id";

const EXPIRY_VALID: &str = "SELECT $1 > now()";

/// A new lien on `account`. `active` reserves its funds now (refused if they do not cover
/// it); otherwise it is `pending` until its event starts.
#[allow(clippy::too_many_arguments)]
pub fn create(
    event_id: Option<Uuid>,
    step_id: Option<Uuid>,
    account: &AccountId,
    amount: &Amount,
    expires_at: Option<TimestampWithTimeZone>,
    metadata: &Metadata,
    active: bool,
) -> Result<Uuid, CteError> {
    if let Some(expires_at) = expires_at {
        if select_one::<bool>(EXPIRY_VALID, &[expires_at.into()]) != Some(true) {
            return Err(CteError::ExpiryInvalid { expires_at: expires_at.to_string() });
        }
    }
    let amount_text = amount.to_string();
    if active {
        reserve(account.as_str(), amount.currency(), &amount_text)?;
    } else {
        ledger::check_wallet(account.as_str(), amount.currency())?;
    }
    let status = if active { LienStatus::Active } else { LienStatus::Pending };
    let args = [
        event_id.into(),
        step_id.into(),
        account.as_str().into(),
        amount.currency().into(),
        ledger::numeric(&amount_text).into(),
        status.as_str().into(),
        expires_at.into(),
        metadata.value().cloned().map(JsonB).into(),
    ];
    let id: Option<Uuid> = Spi::connect_mut(|client| update_one(client, LIEN_INSERT, &args));
    assert!(id.is_some(), "a lien insert returns its id");
    Ok(id.unwrap_or(Uuid::from_bytes([0; 16])))
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

/// Gives a lien's funds back (`ctel_release_lien`).
pub fn release(lien_id: Uuid, reason: Option<&str>) -> Result<(), CteError> {
    let lien = lock(lien_id)?;
    refuse_step_lien(&lien, "release")?;
    change(&lien, LienInput::Release, reason.or(Some("released")), None).map(|_| ())
}

/// Moves up to the held amount to `destination`; the remainder is given back. Returns the
/// capture's posting id.
pub fn capture(
    lien_id: Uuid,
    destination: &AccountId,
    requested: Option<AnyNumeric>,
) -> Result<Uuid, CteError> {
    let lien = lock(lien_id)?;
    refuse_step_lien(&lien, "capture")?;
    lien_transition(lien.status, LienInput::Capture)?;
    let currency = ledger::currency(&lien.currency)?;
    let held = Amount::parse(&lien.amount, &currency)?;
    let requested =
        requested.map(|amount| Amount::parse(&amount.to_string(), &currency)).transpose()?;
    let (captured, remainder) = capture_split(&held, requested.as_ref())?;
    let captured = Amount::parse(&captured.to_string(), &currency)?;
    let source = AccountId::parse(&lien.account_id)?;
    let posting = Posting::transfer(&source, destination, &captured)?;
    // Both wallets in the global order before either is touched: giving the hold back locks
    // the source, and the posting would otherwise lock the destination after it.
    ledger::lock_wallets(vec![
        (lien.account_id.clone(), lien.currency.clone()),
        (destination.as_str().to_string(), lien.currency.clone()),
    ]);
    // Give the hold back first: the capture's own debit is then checked like any posting.
    unreserve(&lien.account_id, &lien.currency, &lien.amount);
    let posting_id = ledger::post(&posting, None, None)?;
    let reason = format!("captured {captured}, released {remainder}");
    let released = LienRow { status: LienStatus::Pending, ..lien };
    finish_captured(&released, &reason, &captured.to_string(), posting_id);
    Ok(posting_id)
}

// The reservation is already given back, so the status changes without touching it again.
fn finish_captured(lien: &LienRow, reason: &str, captured: &str, posting_id: Uuid) {
    let args = [
        lien.id.into(),
        LienStatus::Captured.as_str().into(),
        reason.into(),
        ledger::numeric(captured).into(),
        posting_id.into(),
    ];
    Spi::connect_mut(|client| {
        run_cached(client, LIEN_FINISH, &args, true);
    });
}

// Wallet order (bytewise, as Rust sorts) is the global lock order of balance rows.
const PENDING_OF_EVENT: &str =
    "SELECT id, transaction_id, account_id, currency, amount::text, status
    FROM cte_ctel.cte_liens WHERE event_id = $1 AND status = 'pending'
    ORDER BY account_id COLLATE \"C\", currency COLLATE \"C\", id FOR UPDATE";

/// Activates an event's pending liens as it starts, checking their funds; the first that
/// cannot be covered refuses the start.
pub fn activate_pending(event_id: Uuid) -> Result<(), CteError> {
    for lien in lock_liens(PENDING_OF_EVENT, event_id) {
        change(&lien, LienInput::Activate, None, None)?;
    }
    Ok(())
}

const HELD_OF_EVENT: &str = "SELECT id, transaction_id, account_id, currency, amount::text, status
    FROM cte_ctel.cte_liens WHERE event_id = $1 AND status IN ('pending', 'active')
    ORDER BY account_id COLLATE \"C\", currency COLLATE \"C\", id FOR UPDATE";

const HELD_OF_STEP: &str = "SELECT id, transaction_id, account_id, currency, amount::text, status
    FROM cte_ctel.cte_liens WHERE transaction_id = $1 AND status IN ('pending', 'active')
    ORDER BY account_id COLLATE \"C\", currency COLLATE \"C\", id FOR UPDATE";

/// Releases every lien an event still holds: none outlives its event.
pub fn release_of_event(event_id: Uuid, reason: &str) -> Result<(), CteError> {
    for lien in lock_liens(HELD_OF_EVENT, event_id) {
        change(&lien, LienInput::Release, Some(reason), None)?;
    }
    Ok(())
}

/// Releases what a step holds (its compensation before the event completed).
pub fn release_of_step(step_id: Uuid, reason: &str) -> Result<(), CteError> {
    for lien in lock_liens(HELD_OF_STEP, step_id) {
        change(&lien, LienInput::Release, Some(reason), None)?;
    }
    Ok(())
}

/// Holds the funds a step's postings will take out of wallets, until its event completes.
pub fn hold_for_step(
    event_id: Uuid,
    step_id: Uuid,
    plan: &StepPlan,
) -> Result<Vec<Uuid>, CteError> {
    let mut ids = Vec::new();
    for (account_id, currency_code, amount) in wallet_debits(&plan.postings) {
        let currency = ledger::currency(&currency_code)?;
        let amount = Amount::parse(&amount.to_string(), &currency)?;
        let account = AccountId::parse(&account_id)?;
        ids.push(create(
            Some(event_id),
            Some(step_id),
            &account,
            &amount,
            None,
            &Metadata::parse(None, 0)?,
            true,
        )?);
    }
    Ok(ids)
}

/// At its event's completion: gives back a step's holds and makes its postings, marking each
/// lien captured. The funds cannot go elsewhere in between: their rows stay locked.
pub fn capture_step(
    step_id: Uuid,
    plan: &StepPlan,
    reference: Option<&str>,
) -> Result<Vec<Uuid>, CteError> {
    let liens = lock_liens(HELD_OF_STEP, step_id);
    for lien in &liens {
        assert_eq!(
            lien.status,
            LienStatus::Active,
            "a held step's liens are active until captured"
        );
        unreserve(&lien.account_id, &lien.currency, &lien.amount);
    }
    let mut posting_ids = Vec::with_capacity(plan.postings.len());
    for posting in &plan.postings {
        posting_ids.push(ledger::post(posting, reference, Some(step_id))?);
    }
    let first = posting_ids.first().copied().unwrap_or(Uuid::from_bytes([0; 16]));
    for lien in &liens {
        finish_captured(lien, "captured as its event completed", &lien.amount, first);
    }
    Ok(posting_ids)
}

const DUE_LIENS: &str = "SELECT id, transaction_id, account_id, currency, amount::text, status
    FROM cte_ctel.cte_liens
    WHERE status IN ('pending', 'active') AND expires_at <= now()
    ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED";

/// Locks up to `limit` liens past `expires_at` (skipping any another session holds).
pub fn lock_due(limit: i64) -> Vec<LienRow> {
    Spi::connect_mut(|client| {
        let table = spi(client.update(DUE_LIENS, None, &[limit.into()]), DUE_LIENS);
        table.map(|row| lien_row(&row, DUE_LIENS)).collect()
    })
}

/// Expires locked, due liens; returns how many.
pub fn expire(liens: Vec<LienRow>) -> usize {
    let mut expired = 0;
    for lien in liens {
        if change(&lien, LienInput::Expire, Some("expired"), None).is_ok() {
            expired += 1;
        }
    }
    expired
}

const WALLETS_OF_EVENT_LIENS: &str = "
    SELECT account_id, currency FROM cte_ctel.cte_liens
     WHERE event_id = $1 AND status IN ('pending', 'active')";

/// The wallets an event's pending and active liens are on.
pub fn wallets_of_event(event_id: Uuid) -> Vec<(String, String)> {
    Spi::connect_mut(|client| {
        let table = run_cached(client, WALLETS_OF_EVENT_LIENS, &[event_id.into()], true);
        table
            .map(|row| {
                let text = |ordinal| {
                    spi(row.get::<String>(ordinal), WALLETS_OF_EVENT_LIENS).unwrap_or_default()
                };
                (text(1), text(2))
            })
            .collect()
    })
}
