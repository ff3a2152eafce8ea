//! Ledger functions of SPEC §3: currencies, accounts, balances, system-balance folding.

use cte_ctel_core::ledger::{AccountId, AccountOpening};
use cte_ctel_core::limits::STATEMENT_ROWS_MAX;
use cte_ctel_core::money::Currency;
use cte_ctel_core::CteError;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, Uuid};

use super::json_text::{JsonbOut, JsonbText};

use super::security::refuse_unreadable_account;
use super::{page_limit, refused, required};
use crate::store;
use crate::store::statements;

/// Registers a currency and the most decimals its amounts may have. Registering a currency
/// again with the same scale changes nothing; with another scale it is refused.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_create_currency(code: Option<String>, scale: Option<i32>) {
    refused("cte_create_currency", move || {
        let code = required(code, "code")?;
        let currency = Currency::new(&code, i64::from(required(scale, "scale")?))?;
        store::ledger::create_currency(&currency)
    })
}

/// Opens a wallet account holding one balance per listed currency; returns its id.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_create_account(
    account_id: Option<String>,
    currencies: Option<Vec<Option<String>>>,
    allow_negative: default!(Option<bool>, false),
    metadata: default!(Option<JsonbText>, "NULL"),
) -> String {
    refused("cte_create_account", move || {
        let account_id = required(account_id, "account_id")?;
        let currencies = required(currencies, "currencies")?;
        let allow_negative = required(allow_negative, "allow_negative")?;
        let metadata = super::engine::metadata_of(metadata)?;
        let opening = AccountOpening::new(&account_id, &currencies, allow_negative, metadata)?;
        store::ledger::create_account(&opening)?;
        Ok(account_id)
    })
}

/// The posted balance of an account in one currency.
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_balance(account_id: Option<String>, currency: Option<String>) -> AnyNumeric {
    refused("cte_balance", move || {
        balance_in("cte_balance", account_id, currency).map(|row| row.balance)
    })
}

/// The balance less what active liens reserve: what the account can spend now.
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_available_balance(account_id: Option<String>, currency: Option<String>) -> AnyNumeric {
    refused("cte_available_balance", move || {
        balance_in("cte_available_balance", account_id, currency).map(|row| row.available)
    })
}

fn balance_in(
    function: &'static str,
    account_id: Option<String>,
    currency: Option<String>,
) -> Result<store::ledger::BalanceRow, CteError> {
    let account = AccountId::parse(&required(account_id, "account_id")?)?;
    refuse_unreadable_account(function, account.as_str());
    let currency = store::ledger::currency(&required(currency, "currency")?)?;
    let mut rows = store::ledger::balances(&account, Some(&currency))?;
    assert_eq!(rows.len(), 1);
    Ok(rows.remove(0))
}

/// Every balance of an account, one row per currency it holds.
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_account_balances(
    account_id: Option<String>,
) -> TableIterator<
    'static,
    (
        name!(currency, String),
        name!(balance, AnyNumeric),
        name!(reserved, AnyNumeric),
        name!(available, AnyNumeric),
    ),
> {
    let rows = refused("cte_account_balances", move || {
        let account = AccountId::parse(&required(account_id, "account_id")?)?;
        refuse_unreadable_account("cte_account_balances", account.as_str());
        store::ledger::balances(&account, None)
    });
    TableIterator::new(
        rows.into_iter().map(|row| (row.currency, row.balance, row.reserved, row.available)),
    )
}

/// Folds pending system-account deltas into their balances; returns how many were folded.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_fold_system_balances() -> i64 {
    store::ledger::fold_system_balances(true)
}

/// The wallet or system account (and currency) a journal read names, checked to exist and to
/// be readable by the caller.
fn journal_of(
    function: &'static str,
    account_id: Option<String>,
    currency: Option<String>,
) -> Result<(AccountId, Currency), CteError> {
    let account = AccountId::parse(&required(account_id, "account_id")?)?;
    refuse_unreadable_account(function, account.as_str());
    let currency = store::ledger::currency(&required(currency, "currency")?)?;
    store::ledger::balances(&account, Some(&currency))?;
    Ok((account, currency))
}

// pgrx reads the row's column names from this signature, so it is spelled out here.
#[allow(clippy::type_complexity)]
/// An account's entries in one currency, in the order they were posted on it (for a wallet:
/// the order of its balance's lock; for a system account, entries of concurrent postings are
/// ordered by the time each was written), each with its running balance (NULL for system
/// accounts), kind, reference, the event and step that posted it, the other accounts of its
/// posting, and the lien a capture came from. `from`/`to` bound the entries' time: (from, to],
/// as `cte_balance_at` counts them (an entry at `from` is in the opening balance); page on by
/// passing the last `entry_id` as `after_entry`. `metadata` is the posting event's (SPEC §11).
#[pg_extern(name = "cte_account_statement", security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_account_statement_with_metadata(
    account_id: Option<String>,
    currency: Option<String>,
    from: default!(Option<TimestampWithTimeZone>, "NULL"),
    to: default!(Option<TimestampWithTimeZone>, "NULL"),
    after_entry: default!(Option<i64>, "NULL"),
    limit: default!(Option<i32>, 100),
) -> TableIterator<
    'static,
    (
        name!(entry_id, i64),
        name!(at, TimestampWithTimeZone),
        name!(kind, String),
        name!(amount, AnyNumeric),
        name!(balance_after, Option<AnyNumeric>),
        name!(reference, Option<String>),
        name!(posting_id, Uuid),
        name!(event_id, Option<Uuid>),
        name!(event_name, Option<String>),
        name!(transaction_id, Option<Uuid>),
        name!(transaction_name, Option<String>),
        name!(counterparty, Option<String>),
        name!(lien_id, Option<Uuid>),
        name!(metadata, Option<JsonbOut>),
    ),
> {
    let rows = refused("cte_account_statement", move || {
        statement_rows(account_id, currency, from, to, after_entry, limit)
    });
    TableIterator::new(rows.into_iter().map(|r| {
        (
            r.entry_id,
            r.at,
            r.kind,
            r.amount,
            r.balance_after,
            r.reference,
            r.posting_id,
            r.event_id,
            r.event_name,
            r.transaction_id,
            r.transaction_name,
            r.counterparty,
            r.lien_id,
            r.metadata.map(JsonbOut),
        )
    }))
}

/// 0.2.0's `cte_account_statement` (thirteen columns, no metadata), serving 0.2.0's SQL until
/// the update.
#[allow(clippy::type_complexity)]
#[pg_extern(sql = false)]
fn cte_account_statement(
    account_id: Option<String>,
    currency: Option<String>,
    from: Option<TimestampWithTimeZone>,
    to: Option<TimestampWithTimeZone>,
    after_entry: Option<i64>,
    limit: Option<i32>,
) -> TableIterator<
    'static,
    (
        name!(entry_id, i64),
        name!(at, TimestampWithTimeZone),
        name!(kind, String),
        name!(amount, AnyNumeric),
        name!(balance_after, Option<AnyNumeric>),
        name!(reference, Option<String>),
        name!(posting_id, Uuid),
        name!(event_id, Option<Uuid>),
        name!(event_name, Option<String>),
        name!(transaction_id, Option<Uuid>),
        name!(transaction_name, Option<String>),
        name!(counterparty, Option<String>),
        name!(lien_id, Option<Uuid>),
    ),
> {
    let rows = refused("cte_account_statement", move || {
        statement_rows(account_id, currency, from, to, after_entry, limit)
    });
    TableIterator::new(rows.into_iter().map(|r| {
        (
            r.entry_id,
            r.at,
            r.kind,
            r.amount,
            r.balance_after,
            r.reference,
            r.posting_id,
            r.event_id,
            r.event_name,
            r.transaction_id,
            r.transaction_name,
            r.counterparty,
            r.lien_id,
        )
    }))
}

fn statement_rows(
    account_id: Option<String>,
    currency: Option<String>,
    from: Option<TimestampWithTimeZone>,
    to: Option<TimestampWithTimeZone>,
    after_entry: Option<i64>,
    limit: Option<i32>,
) -> Result<Vec<statements::StatementRow>, CteError> {
    let (account, currency) = journal_of("cte_account_statement", account_id, currency)?;
    let limit = page_limit(limit, STATEMENT_ROWS_MAX)?;
    // A cursor names an entry of this statement: another (lost to a restore, a rolled-back id,
    // another account's) has no place in it to resume from.
    if let Some(entry) = after_entry {
        if !statements::is_entry_of(entry, account.as_str(), currency.code()) {
            return Err(CteError::IdentifierInvalid {
                what: "after_entry",
                value: entry.to_string(),
                why: "not an entry of this account in this currency",
            });
        }
    }
    let page = statements::Page { from, to, after_entry, limit };
    Ok(statements::statement(account.as_str(), currency.code(), &page))
}

/// The posted balance of an account in one currency at an instant: the balance after its last
/// entry written by then (zero before its first). Liens are not counted.
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_balance_at(
    account_id: Option<String>,
    currency: Option<String>,
    at: Option<TimestampWithTimeZone>,
) -> AnyNumeric {
    refused("cte_balance_at", move || {
        let (account, currency) = journal_of("cte_balance_at", account_id, currency)?;
        let at = required(at, "at")?;
        Ok(statements::balance_at(account.as_str(), currency.code(), at))
    })
}
