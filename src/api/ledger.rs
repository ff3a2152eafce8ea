//! Ledger functions of SPEC §3: currencies, accounts, balances, system-balance folding.

use cte_ctel_core::ledger::{AccountId, AccountOpening};
use cte_ctel_core::money::Currency;
use cte_ctel_core::CteError;
use pgrx::prelude::*;
use pgrx::AnyNumeric;

use super::json_text::JsonbText;

use super::{refused, required};
use crate::store;

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
    refused("cte_balance", move || balance_in(account_id, currency).map(|row| row.balance))
}

/// The balance less what active liens reserve: what the account can spend now.
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_available_balance(account_id: Option<String>, currency: Option<String>) -> AnyNumeric {
    refused("cte_available_balance", move || {
        balance_in(account_id, currency).map(|row| row.available)
    })
}

fn balance_in(
    account_id: Option<String>,
    currency: Option<String>,
) -> Result<store::ledger::BalanceRow, CteError> {
    let account = AccountId::parse(&required(account_id, "account_id")?)?;
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
    store::ledger::fold_system_balances()
}
