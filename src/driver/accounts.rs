//! Account controls: a currency added, a balance's floor, freezing and closing. Each locks the
//! account's row first (account-wide changes are one at a time), then the balance rows it
//! changes in the global wallet order, the same rows every posting locks and reads: a posting
//! in flight finishes before the change, and one after it sees the change. Each change is
//! recorded in the feed.

use cte_ctel_core::ledger::wallets::WalletState;
use cte_ctel_core::ledger::AccountId;
use cte_ctel_core::money::{Amount, Currency};
use cte_ctel_core::CteError;

use super::holds::refuse_system_account;
use super::Context;
use crate::store::changes::{self, Batch, Change, Kind};
use crate::store::ledger::{self, AccountRow};
use crate::store::{postings, LockWait};

fn record(account: &AccountId, from: WalletState, to: WalletState, reason: String, ctx: &Context) {
    changes::record(&Batch {
        account_id: Some(account.as_str().to_string()),
        actor: ctx.actor.clone(),
        reason: Some(reason),
        changes: vec![Change {
            kind: Kind::Account,
            transaction_id: None,
            lien_id: None,
            old_status: Some(from.as_str()),
            new_status: to.as_str(),
        }],
        ..Batch::default()
    });
}

/// The account locked, refused if it is a system account or closed.
fn locked_open(account: &AccountId) -> Result<AccountRow, CteError> {
    refuse_system_account(account)?;
    let row = ledger::lock_account(account)?;
    if row.status == WalletState::Closed {
        return Err(CteError::AccountClosed { account_id: account.as_str().to_string() });
    }
    Ok(row)
}

/// Opens a zero balance in `currency` on an open account (the account's `allow_negative`
/// decides its floor); adding one it holds changes nothing. Returns whether it was added.
pub fn add_currency(
    account: &AccountId,
    currency: &Currency,
    ctx: &Context,
) -> Result<bool, CteError> {
    let row = locked_open(account)?;
    if row.status == WalletState::Frozen {
        return Err(CteError::AccountFrozen { account_id: account.as_str().to_string() });
    }
    let added = ledger::add_balance(account, row.allow_negative, currency);
    if added {
        record(account, row.status, row.status, format!("holds {} now", currency.code()), ctx);
    }
    Ok(added)
}

/// Sets a balance's floor: `Some(floor)` (zero, negative for an overdraft line of that size,
/// positive for a minimum the balance must keep), or `None` for no floor at all. Refused if the
/// balance could not spend down to it now.
pub fn set_limits(
    account: &AccountId,
    currency: &Currency,
    floor: Option<&str>,
    ctx: &Context,
) -> Result<(), CteError> {
    let row = locked_open(account)?;
    let floor = floor.map(|text| Amount::parse_signed(text, currency)).transpose()?;
    let wallet = (account.as_str().to_string(), currency.code().to_string());
    let read = postings::lock_wallets(vec![wallet.clone()], LockWait::Wait)?;
    let Some(locked) = read.get(&wallet) else {
        return Err(ledger::account_missing_or_currency_not_held(&wallet.0, &wallet.1));
    };
    // Both are figures of a wallet that was read exactly: their difference always fits.
    let Ok(available) = locked.available() else {
        panic!("{} less {} fits a decimal", locked.balance, locked.reserved);
    };
    if let Some(floor) = floor {
        if floor > available {
            return Err(CteError::FloorAboveAvailable {
                account_id: wallet.0,
                currency: wallet.1,
                floor: floor.to_string(),
                available: available.to_string(),
            });
        }
    }
    ledger::write_floor(account, currency.code(), floor);
    let said = floor.map_or("no floor".to_string(), |floor| format!("floor {floor}"));
    record(account, row.status, row.status, format!("{} {said}", currency.code()), ctx);
    Ok(())
}

/// Locks every balance row of a locked account, in the global order.
fn lock_balances(account: &AccountId) -> Result<(), CteError> {
    let wallets = ledger::currencies_of(account)
        .into_iter()
        .map(|currency| (account.as_str().to_string(), currency))
        .collect();
    postings::lock_wallets(wallets, LockWait::Wait).map(|_| ())
}

/// Moves an open or frozen account to `to` (open or frozen); the same status again changes
/// nothing. Returns the status.
pub fn set_frozen(
    account: &AccountId,
    to: WalletState,
    reason: Option<&str>,
    ctx: &Context,
) -> Result<&'static str, CteError> {
    assert!(to != WalletState::Closed, "closing has its own checks");
    let row = locked_open(account)?;
    if row.status != to {
        lock_balances(account)?;
        ledger::write_status(account, to, reason);
        let why = reason.map_or_else(|| to.as_str().to_string(), str::to_string);
        record(account, row.status, to, why, ctx);
    }
    Ok(to.as_str())
}

/// Closes an account for good: only at zero balance in every currency, with no pending or
/// active lien and no unfinished event that posted to it. A closed account takes nothing.
pub fn close(account: &AccountId, reason: Option<&str>, ctx: &Context) -> Result<(), CteError> {
    let row = locked_open(account)?;
    lock_balances(account)?;
    if let Some(why) = ledger::close_blockers(account) {
        return Err(CteError::AccountNotEmpty { account_id: account.as_str().to_string(), why });
    }
    ledger::write_status(account, WalletState::Closed, reason);
    let why = reason.unwrap_or("closed").to_string();
    record(account, row.status, WalletState::Closed, why, ctx);
    Ok(())
}
