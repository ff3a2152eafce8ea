//! An account's statement and its balance at an instant, from the journal. A wallet's entries
//! are written under its balance row's lock with the clock read then, so on each wallet they
//! grow in (created_at, id) together: the index on (account, currency, created_at, id) serves
//! both a time window and a stable keyset page (a posting made while a client pages sorts after
//! every entry it has seen).

use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, Uuid};

use super::{run_cached, select_one, Row};

/// One entry of a statement.
pub struct StatementRow {
    pub entry_id: i64,
    pub at: TimestampWithTimeZone,
    pub kind: String,
    pub amount: AnyNumeric,
    pub balance_after: Option<AnyNumeric>,
    pub reference: Option<String>,
    pub posting_id: Uuid,
    pub event_id: Option<Uuid>,
    pub event_name: Option<String>,
    pub transaction_id: Option<Uuid>,
    pub transaction_name: Option<String>,
    pub counterparty: Option<String>,
    pub lien_id: Option<Uuid>,
    /// The metadata of the event that posted it (SPEC §11), as JSON text.
    pub metadata: Option<String>,
}

/// What a statement page asks for.
pub struct Page {
    pub from: Option<TimestampWithTimeZone>,
    pub to: Option<TimestampWithTimeZone>,
    pub after_entry: Option<i64>,
    pub limit: i64,
}

const STATEMENT: &str = "
    SELECT j.id, j.created_at, j.kind, j.amount, j.balance_after, j.reference, j.posting_id,
           t.event_id, e.name, j.transaction_id, t.name,
           (SELECT string_agg(o.account_id, ', ' ORDER BY o.id) FROM cte_ctel.cte_entries o
             WHERE o.posting_id = j.posting_id AND o.id <> j.id),
           j.lien_id, e.metadata::text
      FROM cte_ctel.cte_entries j
      LEFT JOIN cte_ctel.cte_transactions t ON t.id = j.transaction_id
      LEFT JOIN cte_ctel.cte_events e ON e.id = t.event_id
     WHERE j.account_id = $1 AND j.currency = $2
       AND j.created_at > COALESCE($3, '-infinity'::timestamptz)
       AND j.created_at <= COALESCE($4, 'infinity'::timestamptz)
       AND (j.created_at, j.id) > (
           COALESCE((SELECT a.created_at FROM cte_ctel.cte_entries a WHERE a.id = $5),
                    '-infinity'::timestamptz), COALESCE($5, 0))
     ORDER BY j.created_at, j.id
     LIMIT $6";

/// A page of a wallet's (or system account's) entries, in order.
pub fn statement(account_id: &str, currency: &str, page: &Page) -> Vec<StatementRow> {
    let args = [
        account_id.into(),
        currency.into(),
        page.from.into(),
        page.to.into(),
        page.after_entry.into(),
        page.limit.into(),
    ];
    Spi::connect_mut(|client| {
        let table = run_cached(client, STATEMENT, &args, false);
        table
            .map(|row| {
                let row = Row::new(&row, STATEMENT);
                let text = |ordinal| row.optional::<String>(ordinal);
                let id = |ordinal| row.optional::<Uuid>(ordinal);
                StatementRow {
                    entry_id: row.required(1, "entry id"),
                    at: row.required::<TimestampWithTimeZone>(2, "at"),
                    kind: row.required(3, "kind"),
                    amount: row.required::<AnyNumeric>(4, "amount"),
                    balance_after: row.optional::<AnyNumeric>(5),
                    reference: text(6),
                    posting_id: row.required(7, "posting id"),
                    event_id: id(8),
                    event_name: text(9),
                    transaction_id: id(10),
                    transaction_name: text(11),
                    counterparty: text(12),
                    lien_id: id(13),
                    metadata: text(14),
                }
            })
            .collect()
    })
}

const ENTRY_OF: &str = "
    SELECT EXISTS (SELECT 1 FROM cte_ctel.cte_entries
                    WHERE id = $1 AND account_id = $2 AND currency = $3)";

/// Whether entry `entry_id` is one of this account's entries in this currency (a statement's
/// cursor must be).
pub fn is_entry_of(entry_id: i64, account_id: &str, currency: &str) -> bool {
    super::select_one::<bool>(ENTRY_OF, &[entry_id.into(), account_id.into(), currency.into()])
        == Some(true)
}

// A wallet's balance at an instant is the balance_after of its last entry by then; a system
// account's (no balance_after) the sum of its entries by then.
const BALANCE_AT: &str = "
    SELECT COALESCE(
        CASE WHEN left($1, 1) = '@' THEN
                (SELECT sum(amount) FROM cte_ctel.cte_entries
                  WHERE account_id = $1 AND currency = $2 AND created_at <= $3)
             ELSE (SELECT balance_after FROM cte_ctel.cte_entries
                    WHERE account_id = $1 AND currency = $2 AND created_at <= $3
                    ORDER BY created_at DESC, id DESC LIMIT 1) END,
        pg_catalog.round(0, (SELECT scale FROM cte_ctel.cte_currencies WHERE code = $2)))";

/// The posted balance of `account_id` in `currency` at `at` (zero before its first entry).
pub fn balance_at(account_id: &str, currency: &str, at: TimestampWithTimeZone) -> AnyNumeric {
    let args = [account_id.into(), currency.into(), at.into()];
    let balance: Option<AnyNumeric> = select_one(BALANCE_AT, &args);
    balance.unwrap_or_else(|| super::ledger::numeric("0"))
}
