//! Account controls of SPEC §3 (v2): a currency added, a balance's floor, freezing, closing.

use cte_ctel_core::engine::checks;
use cte_ctel_core::ledger::wallets::WalletState;
use cte_ctel_core::ledger::AccountId;
use pgrx::prelude::*;
use pgrx::AnyNumeric;

use super::engine::client_context;
use super::{refused, required};
use crate::driver::accounts;
use crate::store::ledger;

/// Opens a zero balance in `currency` on an open account (its floor as the account's
/// `allow_negative` says). Returns whether it was added: false if the account held it already.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_add_currency(account_id: Option<String>, currency: Option<String>) -> bool {
    refused("cte_add_currency", move || {
        let account = AccountId::parse(&required(account_id, "account_id")?)?;
        super::security::refuse_foreign_account_change("cte_add_currency", account.as_str());
        let currency = ledger::currency(&required(currency, "currency")?)?;
        accounts::add_currency(&account, &currency, &client_context())
    })
}

/// Sets the floor of one balance: the least its available balance (balance less what liens
/// reserve) may be. Negative is an overdraft line of that size; positive a minimum it must
/// keep; NULL no floor at all (as `allow_negative` opens accounts). Refused if the balance
/// could not spend down to it now.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_set_limits(
    account_id: Option<String>,
    currency: Option<String>,
    min_balance: Option<AnyNumeric>,
) {
    refused("cte_set_limits", move || {
        let account = AccountId::parse(&required(account_id, "account_id")?)?;
        let currency = ledger::currency(&required(currency, "currency")?)?;
        let floor = min_balance.map(|floor| floor.to_string());
        accounts::set_limits(&account, &currency, floor.as_deref(), &client_context())
    })
}

/// Freezes an account: it takes no new debit and no new lien; credits, compensations, refunds
/// and captures of liens made before still post. Returns its status.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_freeze_account(account_id: Option<String>, reason: Option<String>) -> String {
    refused("cte_freeze_account", move || {
        let account = AccountId::parse(&required(account_id, "account_id")?)?;
        let reason = required(reason, "reason")?;
        checks::note(&reason, "reason")?;
        let status =
            accounts::set_frozen(&account, WalletState::Frozen, Some(&reason), &client_context())?;
        Ok(status.to_string())
    })
}

/// Lifts a freeze. Returns the account's status.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_unfreeze_account(
    account_id: Option<String>,
    reason: default!(Option<String>, "NULL"),
) -> String {
    refused("cte_unfreeze_account", move || {
        let account = AccountId::parse(&required(account_id, "account_id")?)?;
        checks::description(reason.as_deref(), "reason")?;
        let status = accounts::set_frozen(
            &account,
            WalletState::Open,
            reason.as_deref(),
            &client_context(),
        )?;
        Ok(status.to_string())
    })
}

/// Closes an account for good: only at zero balance in every currency, with no pending or
/// active lien and no unfinished event that posted to it. A closed account takes nothing.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_close_account(account_id: Option<String>, reason: default!(Option<String>, "NULL")) {
    refused("cte_close_account", move || {
        let account = AccountId::parse(&required(account_id, "account_id")?)?;
        checks::description(reason.as_deref(), "reason")?;
        accounts::close(&account, reason.as_deref(), &client_context())
    })
}
