//! Liens in SQL. A lien's row is locked before any change of its status, then its wallet's (the
//! global lock order is event, then lien, then wallet); its reservation is counted in the
//! wallet's `reserved` through `postings`, the one writer, so two sessions racing for the same
//! funds cannot both win. Every status change is returned as a `Change` for the feed.

use cte_ctel_core::ledger::{
    lien_handle, AccountId, CaptureRecorded, Lien, LienAsk, LienEffects, LienStatus, Metadata,
    Reserve,
};
use cte_ctel_core::money::Amount;
use cte_ctel_core::CteError;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};
use rust_decimal::Decimal;

use super::changes::{Change, Kind};
use super::postings::{self, WalletKey};
use super::{ledger, required, run_cached, select_one, spi, stored_decimal, LockWait, Row};

/// A lien as read under its row lock.
pub struct LienRow {
    pub id: Uuid,
    pub event_id: Option<Uuid>,
    pub transaction_id: Option<Uuid>,
    pub account_id: String,
    pub currency: String,
    /// The amount first held.
    pub amount: Decimal,
    pub status: LienStatus,
    /// What captures have taken of it so far.
    pub captured: Decimal,
    /// Its `expires_at` in microseconds since the Unix epoch, read within 1970 ..= 200000 AD
    /// (an earlier time, `-infinity` included, has passed; a later one, `infinity` included,
    /// never comes, and would not fit the count); `None`: never.
    pub expires_at: Option<i64>,
    /// The statement's time as it was read, in the same unit: the lien machine's `now`.
    pub read_at: i64,
}

impl LienRow {
    pub fn wallet(&self) -> WalletKey {
        (self.account_id.clone(), self.currency.clone())
    }

    /// The lien as its machine sees it.
    fn machine(&self) -> Lien {
        Lien {
            status: self.status,
            amount: self.amount,
            captured: self.captured,
            expires_at: self.expires_at,
            of_step: self.transaction_id.is_some(),
        }
    }

    /// What `ask` does to this lien now: decided by the core's lien machine.
    pub fn handle(&self, ask: LienAsk) -> Result<Option<LienEffects>, CteError> {
        lien_handle(&self.machine(), ask, self.read_at)
    }
}

fn lien_row(row: &pgrx::spi::SpiHeapTupleData, query: &'static str) -> LienRow {
    let row = Row::new(row, query);
    // A domain keeps lien statuses known.
    let status = LienStatus::parse(&row.required::<String>(7, "status"));
    LienRow {
        id: row.required(1, "id"),
        event_id: row.optional(2),
        transaction_id: row.optional(3),
        account_id: row.required(4, "account_id"),
        currency: row.required(5, "currency"),
        amount: row.decimal(6, "amount"),
        status: required(status, query, "a known lien status"),
        captured: row.decimal(8, "captured amount"),
        expires_at: row.optional(9),
        read_at: row.required(10, "the statement's time"),
    }
}

/// What "overdue" means for a lien, in SQL: its `expires_at` has passed at the statement's
/// time. The store's queries that look for candidates are built with this fragment (the views
/// in `sql/liens.sql` and `sql/stats.sql` say the same); whether a locked lien is overdue is
/// decided by the core (`Lien::overdue`) from its `expires_at` and the statement's time.
macro_rules! overdue {
    () => {
        "expires_at <= pg_catalog.statement_timestamp()"
    };
}

macro_rules! lien_columns {
    () => {
        concat!(
            "SELECT id, event_id, transaction_id, account_id, currency, amount::text, status,
                coalesce(captured_amount, 0)::text,
                CASE WHEN expires_at IS NOT NULL THEN (extract(epoch FROM
                     LEAST(GREATEST(expires_at, '1970-01-01 00:00:00+00'::timestamptz),
                           '200000-01-01 00:00:00+00'::timestamptz)) * 1000000)::int8 END,
                (extract(epoch FROM pg_catalog.statement_timestamp()) * 1000000)::int8
           FROM cte_ctel.cte_liens "
        )
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
       SET status = $2, reason = $3, captured_amount = coalesce($4, captured_amount),
           capture_posting_id = coalesce($5, capture_posting_id),
           finished_at = CASE WHEN $2 IN ('captured', 'released', 'expired')
                              THEN pg_catalog.statement_timestamp() END
     WHERE id = $1";

/// Writes a lien's status; `capture`: the captured total so far and the last capture's posting.
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

/// Performs a move the machine decided, but a capture's posting: the wallet's reserve first
/// (lien before wallet, the global order), then the lien's row; returns the change.
fn apply(
    lien: &LienRow,
    effects: &LienEffects,
    capture: Option<Uuid>,
    wait: LockWait,
) -> Result<Change, CteError> {
    match effects.reserve {
        Reserve::Unchanged => {}
        Reserve::Hold(amount) => postings::change_reserved(&lien.wallet(), amount, true, wait)?,
        Reserve::GiveBack(amount) => {
            postings::change_reserved(&lien.wallet(), amount, false, wait)?
        }
    }
    let capture = capture.map(|posting| (effects.captured, posting));
    write_status(lien, effects.to, effects.reason.as_deref(), capture);
    Ok(lien_change(lien, Some(effects.from), effects.to))
}

/// Moves a locked lien as `ask` has it, the machine deciding; `None`: nothing to do.
fn change(lien: &LienRow, ask: LienAsk, wait: LockWait) -> Result<Option<Change>, CteError> {
    lien.handle(ask)?.map(|effects| apply(lien, &effects, None, wait)).transpose()
}

/// A move that always does something for the liens its query selected (held, or pending).
fn change_held(lien: &LienRow, ask: LienAsk, wait: LockWait) -> Result<Change, CteError> {
    let change = change(lien, ask, wait)?;
    // Only a release sent again or an expiry not due do nothing; the liens here are held.
    Ok(required(change, "a held lien's move", "a change"))
}

// A key names one lien: a second insert with it waits for the first's commit, then does
// nothing, and the lien the key names is returned (or the call refused if it asked for another).
const LIEN_INSERT: &str = "
    INSERT INTO cte_ctel.cte_liens
           (id, event_id, transaction_id, account_id, currency, amount, status, expires_at,
            metadata, idempotency_key)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id";

const LIEN_BY_KEY: &str = "
    SELECT id, account_id, currency, amount::text, event_id
      FROM cte_ctel.cte_liens WHERE idempotency_key = $1";

const EXPIRY_VALID: &str = "SELECT $1 > pg_catalog.statement_timestamp()";

const EVENT_LIENS: &str = "SELECT count(*) FROM cte_ctel.cte_liens
                            WHERE event_id = $1 AND transaction_id IS NULL";

/// What a new lien is: where, how much, for what.
pub struct NewLien<'a> {
    pub event_id: Option<Uuid>,
    pub step_id: Option<Uuid>,
    pub account: &'a AccountId,
    pub amount: &'a Amount,
    pub expires_at: Option<TimestampWithTimeZone>,
    pub metadata: &'a Metadata,
    pub idempotency_key: Option<&'a str>,
    /// It reserves its funds now (refused if the wallet cannot spare them); otherwise it is
    /// `pending` until its event starts.
    pub active: bool,
}

fn check_new(lien: &NewLien) -> Result<(), CteError> {
    if let Some(expires_at) = lien.expires_at {
        if select_one::<bool>(EXPIRY_VALID, &[expires_at.into()]) != Some(true) {
            return Err(CteError::ExpiryInvalid { expires_at: expires_at.to_string() });
        }
    }
    if let (Some(event_id), None) = (lien.event_id, lien.step_id) {
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
    Ok(())
}

const LIEN_KEY_TAKEN: &str =
    "SELECT EXISTS (SELECT 1 FROM cte_ctel.cte_liens WHERE idempotency_key = $1)";

/// The lien `key` already names, if any: its id when it is the same hold (a replay); an
/// `idempotency_conflict` when it is another.
pub fn replay_by_key(key: &str, lien: &NewLien) -> Result<Option<Uuid>, CteError> {
    if select_one::<bool>(LIEN_KEY_TAKEN, &[key.into()]) != Some(true) {
        return Ok(None);
    }
    existing_by_key(key, lien).map(Some)
}

/// The lien an idempotency key already names, if it is the same hold (account, currency,
/// amount, event); otherwise the call is refused.
fn existing_by_key(key: &str, lien: &NewLien) -> Result<Uuid, CteError> {
    let row = Spi::connect(|client| {
        let table = spi(client.select(LIEN_BY_KEY, Some(1), &[key.into()]), LIEN_BY_KEY);
        let row = table.first();
        let text = |ordinal, what| {
            required(spi(row.get::<String>(ordinal), LIEN_BY_KEY), LIEN_BY_KEY, what)
        };
        (
            // A key that conflicted names a lien.
            required(spi(row.get::<Uuid>(1), LIEN_BY_KEY), LIEN_BY_KEY, "the lien"),
            text(2, "account_id"),
            text(3, "currency"),
            text(4, "amount"),
            spi(row.get::<Uuid>(5), LIEN_BY_KEY),
        )
    });
    let (id, account_id, currency, amount, event_id) = row;
    let amount = stored_decimal(&amount, LIEN_BY_KEY);
    let same = account_id == lien.account.as_str()
        && currency == lien.amount.currency()
        && amount == lien.amount.value()
        && event_id == lien.event_id;
    if same {
        return Ok(id);
    }
    Err(CteError::IdempotencyConflict {
        key: key.to_string(),
        original: format!("lien {id}"),
        held: format!("a lien of {amount} {currency} on {account_id:?}"),
        requested: format!(
            "{} {} on {:?}",
            lien.amount,
            lien.amount.currency(),
            lien.account.as_str()
        ),
    })
}

/// A new lien and the change that made it; `None` for the change when its idempotency key
/// already named this very hold (its id is returned, nothing changes).
pub fn create(lien: &NewLien, wait: LockWait) -> Result<(Uuid, Option<Change>), CteError> {
    check_new(lien)?;
    let wallet = (lien.account.as_str().to_string(), lien.amount.currency().to_string());
    // Before the row: its foreign key would otherwise refuse an unknown wallet in its own words.
    ledger::check_wallet(lien.account.as_str(), lien.amount.currency())?;
    let status = if lien.active { LienStatus::Active } else { LienStatus::Pending };
    let id = super::new_id();
    let args = [
        id.into(),
        lien.event_id.into(),
        lien.step_id.into(),
        lien.account.as_str().into(),
        lien.amount.currency().into(),
        ledger::numeric(&lien.amount.to_string()).into(),
        status.as_str().into(),
        lien.expires_at.into(),
        lien.metadata.value().cloned().map(JsonB).into(),
        lien.idempotency_key.into(),
    ];
    let inserted: Option<Uuid> =
        Spi::connect_mut(|client| super::update_one(client, LIEN_INSERT, &args));
    if inserted.is_none() {
        // Only a key can conflict: an insert without one always inserts.
        let key = required(lien.idempotency_key, LIEN_INSERT, "the key it conflicted on");
        return Ok((existing_by_key(key, lien)?, None));
    }
    // The row first, then its funds (lien before wallet, the global order): a refusal here
    // aborts the statement, the row with it.
    if lien.active {
        postings::change_reserved(&wallet, lien.amount.value(), true, wait)?;
    }
    let row = LienRow {
        id,
        event_id: lien.event_id,
        transaction_id: lien.step_id,
        account_id: wallet.0,
        currency: wallet.1,
        amount: lien.amount.value(),
        status,
        captured: Decimal::ZERO,
        expires_at: None,
        read_at: 0,
    };
    Ok((id, Some(lien_change(&row, None, status))))
}

/// Gives a lien's funds back (`ctel_release_lien`); returns the change, or `None` when the
/// lien was released already (the release sent again).
pub fn release(lien: &LienRow, reason: Option<&str>) -> Result<Option<Change>, CteError> {
    change(lien, LienAsk::Release { reason }, LockWait::Wait)
}

/// Writes a capture the machine decided and the shell posted (`posting_id`: the capture's
/// posting, or a step's first): the lien's status, captured total and last capture; returns the change (a lien that stays active records one
/// too, active to active).
pub fn write_capture(lien: &LienRow, effects: &LienEffects, posting_id: Uuid) -> Change {
    assert!(matches!(effects.to, LienStatus::Active | LienStatus::Captured), "a capture's end");
    write_status(lien, effects.to, effects.reason.as_deref(), Some((effects.captured, posting_id)));
    lien_change(lien, Some(effects.from), effects.to)
}

// The capture of a lien made under a reference (its debit on the lien's wallet, made after the
// lien: the account index's range from the lien's birth, an hour of clock skew allowed), with
// what it did to the lien.
const CAPTURE_BY_REFERENCE: &str = "
    SELECT d.posting_id, c.account_id, c.amount::text,
           coalesce(l.status = 'captured' AND l.capture_posting_id = d.posting_id, false),
           coalesce(l.status = 'captured' AND l.capture_posting_id = d.posting_id
                    AND l.captured_amount < l.amount, false)
      FROM cte_ctel.cte_liens l
      JOIN cte_ctel.cte_entries d
        ON d.account_id = l.account_id AND d.currency = l.currency
       AND d.created_at >= l.created_at - interval '1 hour'
       AND d.lien_id = l.id AND d.reference = $2 AND d.amount < 0
      JOIN cte_ctel.cte_entries c ON c.posting_id = d.posting_id AND c.amount > 0
     WHERE l.id = $1
     ORDER BY d.id LIMIT 1";

/// The capture of `lien_id` made under `reference`, if any: its posting id and what it did.
pub fn capture_by_reference(lien_id: Uuid, reference: &str) -> Option<(Uuid, CaptureRecorded)> {
    Spi::connect(|client| {
        let args = [lien_id.into(), reference.into()];
        let table = spi(client.select(CAPTURE_BY_REFERENCE, Some(1), &args), CAPTURE_BY_REFERENCE);
        if table.is_empty() {
            return None;
        }
        let row = table.first();
        let posting = spi(row.get::<Uuid>(1), CAPTURE_BY_REFERENCE)?;
        let text = |ordinal| spi(row.get::<String>(ordinal), CAPTURE_BY_REFERENCE);
        let flag = |ordinal| spi(row.get::<bool>(ordinal), CAPTURE_BY_REFERENCE);
        let amount = required(text(3), CAPTURE_BY_REFERENCE, "a recorded capture's amount");
        let recorded = CaptureRecorded {
            destination: required(text(2), CAPTURE_BY_REFERENCE, "the capture's destination"),
            amount: stored_decimal(&amount, CAPTURE_BY_REFERENCE),
            ended_lien: flag(4).unwrap_or(false),
            released_rest: flag(5).unwrap_or(false),
        };
        Some((posting, recorded))
    })
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
/// cannot be covered refuses the start. One whose `expires_at` has passed expires instead.
pub fn activate_pending(event_id: Uuid, wait: LockWait) -> Result<Vec<Change>, CteError> {
    let liens = lock_liens(PENDING_OF_EVENT, event_id);
    liens.iter().map(|lien| change_held(lien, LienAsk::EventStarts, wait)).collect()
}

/// Releases every lien an event still holds: none outlives it.
pub fn release_of_event(
    event_id: Uuid,
    reason: &str,
    wait: LockWait,
) -> Result<Vec<Change>, CteError> {
    let liens = lock_liens(HELD_OF_EVENT, event_id);
    liens.iter().map(|lien| change_held(lien, LienAsk::Ended { reason }, wait)).collect()
}

/// Releases what a step holds (its compensation before the event completed).
pub fn release_of_step(
    step_id: Uuid,
    reason: &str,
    wait: LockWait,
) -> Result<Vec<Change>, CteError> {
    let liens = lock_liens(HELD_OF_STEP, step_id);
    liens.iter().map(|lien| change_held(lien, LienAsk::Ended { reason }, wait)).collect()
}

/// Locks the liens a step still holds (its event's drive, after the event's row).
pub fn lock_of_step(step_id: Uuid) -> Vec<LienRow> {
    lock_liens(HELD_OF_STEP, step_id)
}

const DUE_LIENS: &str = concat!(
    "
    SELECT id FROM cte_ctel.cte_liens
     WHERE status IN ('pending', 'active') AND ",
    overdue!(),
    "
     ORDER BY expires_at LIMIT $1"
);

/// Up to `limit` liens past `expires_at`, oldest first (candidates: each is re-read under its
/// lock before it changes).
pub fn due(limit: i64) -> Vec<Uuid> {
    Spi::connect_mut(|client| {
        let table = run_cached(client, DUE_LIENS, &[limit.into()], false);
        table.filter_map(|row| spi(row.get::<Uuid>(1), DUE_LIENS)).collect()
    })
}

/// Expires one lien if, locked now, it is still due; false when another session holds it or it
/// no longer is (its event ended, it was captured): the read before the lock was stale.
/// The one way a lien expires, for the maintenance pass and for a posting that finds funds
/// held by overdue liens alike: its transition in the core, its reserve given back through the
/// wallet, its change recorded in the feed (`actor`: who expired it). True if it expired.
pub fn expire_if_due(lien_id: Uuid, actor: Option<String>) -> Result<bool, CteError> {
    let Some(lien) = lock(lien_id, LockWait::Skip)? else {
        return Ok(false);
    };
    // Read under its lock: the machine decides whether it is still due.
    let Some(change) = change(&lien, LienAsk::ExpireIfDue, LockWait::Skip)? else {
        return Ok(false);
    };
    assert_eq!(change.new_status, "expired", "an expiry ends a lien expired");
    super::changes::record(&super::changes::Batch {
        event_id: lien.event_id,
        actor,
        reason: Some("its expires_at passed".into()),
        changes: vec![change],
        ..super::changes::Batch::default()
    });
    Ok(true)
}

// A wallet's active liens past their expires_at (candidates: `expire_if_due` decides).
const OVERDUE_ON_WALLET: &str = concat!(
    "
    SELECT id FROM cte_ctel.cte_liens
     WHERE account_id = $1 AND currency = $2 AND status = 'active' AND ",
    overdue!(),
    "
     ORDER BY id"
);

/// Expires a locked wallet's overdue active liens (funds they hold count as free); returns how
/// many. A lien another session holds is skipped: whoever holds it is handling it.
pub fn expire_overdue_on(wallet: &WalletKey) -> Result<usize, CteError> {
    let args = [wallet.0.as_str().into(), wallet.1.as_str().into()];
    let due: Vec<Uuid> = Spi::connect_mut(|client| {
        let table = run_cached(client, OVERDUE_ON_WALLET, &args, false);
        table.filter_map(|row| spi(row.get::<Uuid>(1), OVERDUE_ON_WALLET)).collect()
    });
    let mut expired = 0;
    for lien_id in due {
        if expire_if_due(lien_id, None)? {
            expired += 1;
        }
    }
    Ok(expired)
}
