//! Currencies, accounts and balances in SQL. Money moves through `postings`, the one writer.

use cte_ctel_core::ledger::wallets::WalletState;
use cte_ctel_core::ledger::{AccountId, AccountOpening, Posting};
use cte_ctel_core::limits::SYSTEM_DELTAS_PER_FOLD_MAX;
use cte_ctel_core::money::Currency;
use cte_ctel_core::CteError;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, JsonB};
use rust_decimal::Decimal;

use super::{required, run_cached, select_one, spi, update_one, Row};

/// A balance as the API reports it.
pub struct BalanceRow {
    pub currency: String,
    pub balance: AnyNumeric,
    pub reserved: AnyNumeric,
    pub available: AnyNumeric,
}

const CURRENCY_SCALE: &str = "SELECT scale FROM cte_ctel.cte_currencies WHERE code = $1";

thread_local! {
    /// Scales of currencies this backend has read. A registered currency's scale never changes
    /// and no function removes one, so an entry stays true, except one read from a row this
    /// backend inserted and then rolled back: every (sub)transaction abort empties the cache.
    static SCALES: std::cell::RefCell<std::collections::HashMap<String, i64>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The registered currency `code` (read once per backend).
pub fn currency(code: &str) -> Result<Currency, CteError> {
    let code = Currency::parse_code(code)?;
    if let Some(scale) = SCALES.with(|scales| scales.borrow().get(&code).copied()) {
        return Currency::new(&code, scale);
    }
    let scale: Option<i32> = select_one(CURRENCY_SCALE, &[code.as_str().into()]);
    let scale = scale.ok_or_else(|| CteError::CurrencyUnknown { currency: code.clone() })?;
    let currency = Currency::new(&code, i64::from(scale))?;
    SCALES.with(|scales| scales.borrow_mut().insert(code, i64::from(scale)));
    Ok(currency)
}

#[pg_guard]
unsafe extern "C-unwind" fn forget_scales_on_abort(
    event: pg_sys::XactEvent::Type,
    _argument: *mut std::ffi::c_void,
) {
    if event == pg_sys::XactEvent::XACT_EVENT_ABORT
        || event == pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
    {
        SCALES.with(|scales| scales.borrow_mut().clear());
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn forget_scales_on_subabort(
    event: pg_sys::SubXactEvent::Type,
    _subtransaction: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _argument: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        SCALES.with(|scales| scales.borrow_mut().clear());
    }
}

/// Registers the callbacks that keep the currency cache true (once per backend, at load).
pub fn init_currency_cache() {
    // SAFETY: registering callbacks that only clear a backend-local map.
    unsafe {
        pg_sys::RegisterXactCallback(Some(forget_scales_on_abort), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(forget_scales_on_subabort), std::ptr::null_mut());
    }
}

const CURRENCY_INSERT: &str = "
    WITH registered AS (
        INSERT INTO cte_ctel.cte_currencies (code, scale) VALUES ($1, $2)
        ON CONFLICT (code) DO NOTHING RETURNING code)
    SELECT count(*) FROM registered";

/// Registers `currency`; registering it again with the same scale changes nothing.
pub fn create_currency(currency: &Currency) -> Result<(), CteError> {
    let scale = i32::try_from(currency.scale()).unwrap_or(i32::MAX);
    let args = [currency.code().into(), scale.into()];
    let inserted: Option<i64> =
        Spi::connect_mut(|client| update_one(client, CURRENCY_INSERT, &args));
    if inserted == Some(1) {
        return Ok(());
    }
    let registered = self::currency(currency.code())?;
    if registered.scale() != currency.scale() {
        return Err(CteError::CurrencyExists {
            currency: currency.code().to_string(),
            scale_registered: registered.scale(),
            scale_requested: currency.scale(),
        });
    }
    Ok(())
}

const CURRENCIES_UNKNOWN: &str = "
    SELECT c.code FROM pg_catalog.unnest($1::text[]) AS c(code)
     WHERE NOT EXISTS (SELECT 1 FROM cte_ctel.cte_currencies r WHERE r.code = c.code)
     ORDER BY c.code LIMIT 1";

const ACCOUNT_INSERT: &str = "
    WITH account AS (
        INSERT INTO cte_ctel.cte_accounts (id, allow_negative, metadata) VALUES ($1, $2, $3)
        ON CONFLICT (id) DO NOTHING RETURNING id),
    balances AS (
        INSERT INTO cte_ctel.cte_balances
               (account_id, currency, allow_negative, balance, reserved, min_balance)
        SELECT account.id, r.code, $2, pg_catalog.round(0, r.scale), pg_catalog.round(0, r.scale),
               pg_catalog.round(0, r.scale)
          FROM account, cte_ctel.cte_currencies r WHERE r.code = ANY ($4::text[]))
    SELECT count(*) FROM account";

/// Opens a wallet with a zero balance in each of its currencies.
pub fn create_account(opening: &AccountOpening) -> Result<(), CteError> {
    let unknown: Option<String> =
        select_one(CURRENCIES_UNKNOWN, &[opening.currencies.clone().into()]);
    if let Some(currency) = unknown {
        return Err(CteError::CurrencyUnknown { currency });
    }
    let metadata = opening.metadata.value().cloned().map(JsonB);
    let args = [
        opening.account_id.as_str().into(),
        opening.allow_negative.into(),
        metadata.into(),
        opening.currencies.clone().into(),
    ];
    let inserted: Option<i64> =
        Spi::connect_mut(|client| update_one(client, ACCOUNT_INSERT, &args));
    if inserted != Some(1) {
        return Err(CteError::AccountExists {
            account_id: opening.account_id.as_str().to_string(),
        });
    }
    Ok(())
}

const ACCOUNT_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM cte_ctel.cte_accounts WHERE id = $1)";

/// Why a wallet is missing: the account is unknown, or it does not hold `currency`.
pub fn account_missing_or_currency_not_held(account_id: &str, currency: &str) -> CteError {
    let exists: Option<bool> = select_one(ACCOUNT_EXISTS, &[account_id.into()]);
    if exists == Some(true) {
        CteError::CurrencyNotHeld {
            account_id: account_id.to_string(),
            currency: currency.to_string(),
        }
    } else {
        CteError::AccountUnknown { account_id: account_id.to_string() }
    }
}

const ACCOUNT_BALANCES: &str = "
    SELECT currency, balance, reserved, available FROM cte_ctel.cte_ledger_balances
     WHERE account_id = $1 AND ($2::text IS NULL OR currency = $2) ORDER BY currency";

/// The balances of `account`, or only its balance in `currency`.
pub fn balances(
    account: &AccountId,
    currency: Option<&Currency>,
) -> Result<Vec<BalanceRow>, CteError> {
    let code = currency.map(Currency::code);
    let args = [account.as_str().into(), code.into()];
    let rows: Vec<BalanceRow> = Spi::connect(|client| {
        let table = spi(client.select(ACCOUNT_BALANCES, None, &args), ACCOUNT_BALANCES);
        table
            .map(|row| {
                let figure = |ordinal, what| {
                    let value = spi(row.get::<AnyNumeric>(ordinal), ACCOUNT_BALANCES);
                    required(value, ACCOUNT_BALANCES, what)
                };
                let currency = spi(row.get::<String>(1), ACCOUNT_BALANCES);
                BalanceRow {
                    currency: required(currency, ACCOUNT_BALANCES, "currency"),
                    balance: figure(2, "balance"),
                    reserved: figure(3, "reserved"),
                    available: figure(4, "available"),
                }
            })
            .collect()
    });
    if rows.is_empty() {
        return Err(match code {
            Some(code) => account_missing_or_currency_not_held(account.as_str(), code),
            None => CteError::AccountUnknown { account_id: account.as_str().to_string() },
        });
    }
    Ok(rows)
}

const SYSTEM_FOLD: &str = "
    WITH moved AS (
        DELETE FROM cte_ctel.cte_system_deltas
         WHERE id IN (SELECT id FROM cte_ctel.cte_system_deltas ORDER BY id LIMIT $1)
        RETURNING account_id, currency, amount),
    sums AS (
        SELECT account_id, currency, sum(amount) AS total, count(*) AS deltas
          FROM moved GROUP BY account_id, currency),
    folded AS (
        INSERT INTO cte_ctel.cte_system_balances AS b
               (account_id, currency, folded_balance, folded_at)
        SELECT account_id, currency, total, pg_catalog.now() FROM sums
        ON CONFLICT (account_id, currency) DO UPDATE
           SET folded_balance = b.folded_balance + EXCLUDED.folded_balance,
               folded_at = EXCLUDED.folded_at)
    SELECT COALESCE(sum(deltas), 0)::bigint FROM sums";

// 0.3.0: folds take turns on the one row of cte_fold_lock (sql/ledger.sql), which only the
// extension's owner may lock. Before the update a database has no such table.
const FOLD_LOCK_TABLE: &str = "SELECT pg_catalog.to_regclass('cte_ctel.cte_fold_lock') IS NOT NULL";
const FOLD_LOCK_WAIT: &str = "SELECT true FROM cte_ctel.cte_fold_lock FOR UPDATE";
const FOLD_LOCK_SKIP: &str = "SELECT true FROM cte_ctel.cte_fold_lock FOR UPDATE SKIP LOCKED";

/// Folds up to `SYSTEM_DELTAS_PER_FOLD_MAX` system deltas into the system balances; returns
/// how many. Deltas are deleted and added in one statement, so a reader never sees both or none.
/// Two folds would wait on each other's rows (the deltas, the system balances) until the first
/// commits: each takes the fold lock first, and with `wait` false (the feed worker) one held by
/// another transaction (an administrator's fold left open) skips the fold rather than wait:
/// the deltas wait for the next pass, and nothing else the pass does waits for them (SPEC §12).
pub fn fold_system_balances(wait: bool) -> i64 {
    let args = [SYSTEM_DELTAS_PER_FOLD_MAX.into()];
    Spi::connect_mut(|client| {
        let lockable = update_one::<bool>(client, FOLD_LOCK_TABLE, &[]) == Some(true);
        let lock = if wait { FOLD_LOCK_WAIT } else { FOLD_LOCK_SKIP };
        if lockable && update_one::<bool>(client, lock, &[]) != Some(true) {
            return 0;
        }
        update_one(client, SYSTEM_FOLD, &args).unwrap_or(0)
    })
}

/// Decimal text (from a checked `Decimal`) as a SQL numeric.
pub fn numeric(text: &str) -> AnyNumeric {
    match AnyNumeric::try_from(text) {
        Ok(value) => value,
        Err(error) => panic!("decimal text {text} is a valid numeric: {error}"),
    }
}

const WALLETS_MISSING: &str = "
    SELECT e.account_id, e.currency, a.id IS NOT NULL
      FROM unnest($1::text[], $2::text[]) AS e(account_id, currency)
      LEFT JOIN cte_ctel.cte_accounts a ON a.id = e.account_id
      LEFT JOIN cte_ctel.cte_balances b
             ON b.account_id = e.account_id AND b.currency = e.currency
     WHERE b.account_id IS NULL
     LIMIT 1";

/// Checks that a wallet exists and holds `currency`.
pub fn check_wallet(account_id: &str, currency: &str) -> Result<(), CteError> {
    missing_wallet(vec![account_id.to_string()], vec![currency.to_string()])
}

/// Checks that every wallet the postings touch exists and holds the posting's currency.
pub fn check_wallets(postings: &[Posting]) -> Result<(), CteError> {
    let wallet_entries = postings.iter().flat_map(|posting| {
        posting.entries.iter().filter(|entry| !entry.is_system()).map(move |entry| (entry, posting))
    });
    let (accounts, currencies): (Vec<String>, Vec<String>) = wallet_entries
        .map(|(entry, posting)| (entry.account_id.clone(), posting.currency.clone()))
        .unzip();
    missing_wallet(accounts, currencies)
}

fn missing_wallet(accounts: Vec<String>, currencies: Vec<String>) -> Result<(), CteError> {
    let args = [accounts.into(), currencies.into()];
    let missing = Spi::connect_mut(|client| {
        let table = run_cached(client, WALLETS_MISSING, &args, false);
        if table.is_empty() {
            return None;
        }
        Some(Row::first_of(table, WALLETS_MISSING, |row| {
            let held = row.required::<bool>(3, "whether the account exists");
            (row.required(1, "account_id"), row.required(2, "currency"), held)
        }))
    });
    match missing {
        None => Ok(()),
        Some((account_id, currency, true)) => {
            Err(CteError::CurrencyNotHeld { account_id, currency })
        }
        Some((account_id, _, false)) => Err(CteError::AccountUnknown { account_id }),
    }
}

/// An account as read under its row lock (`cte_freeze_account`, `cte_close_account`, …).
pub struct AccountRow {
    pub allow_negative: bool,
    pub status: WalletState,
}

const ACCOUNT_LOCK: &str = "
    SELECT allow_negative, status FROM cte_ctel.cte_accounts WHERE id = $1 FOR UPDATE";

/// Locks an account's row: account-wide changes (status, currencies) are one at a time, and
/// come before any of its balance rows in the lock order.
pub fn lock_account(account: &AccountId) -> Result<AccountRow, CteError> {
    let row = Spi::connect_mut(|client| {
        let table = run_cached(client, ACCOUNT_LOCK, &[account.as_str().into()], true);
        table.first().get_two::<bool, String>().ok()
    });
    let Some((Some(allow_negative), Some(status))) = row else {
        return Err(CteError::AccountUnknown { account_id: account.as_str().to_string() });
    };
    let status = WalletState::parse(&status);
    assert!(status.is_some(), "a domain keeps account statuses known");
    Ok(AccountRow { allow_negative, status: status.unwrap_or(WalletState::Closed) })
}

const BALANCE_ADD: &str = "
    INSERT INTO cte_ctel.cte_balances
           (account_id, currency, allow_negative, balance, reserved, min_balance)
    SELECT $1, r.code, $2, pg_catalog.round(0, r.scale), pg_catalog.round(0, r.scale),
           pg_catalog.round(0, r.scale)
      FROM cte_ctel.cte_currencies r WHERE r.code = $3
    ON CONFLICT (account_id, currency) DO NOTHING
    RETURNING currency";

/// Opens a zero balance in `currency` on a locked account; `false` if it already held one.
pub fn add_balance(account: &AccountId, allow_negative: bool, currency: &Currency) -> bool {
    let args = [account.as_str().into(), allow_negative.into(), currency.code().into()];
    let added: Option<String> = Spi::connect_mut(|client| update_one(client, BALANCE_ADD, &args));
    added.is_some()
}

const FLOOR_WRITE: &str = "
    UPDATE cte_ctel.cte_balances SET allow_negative = $3, min_balance = $4
     WHERE account_id = $1 AND currency = $2";

/// Writes a (locked) balance's floor: `None` for none at all.
pub fn write_floor(account: &AccountId, currency: &str, floor: Option<Decimal>) {
    // No floor at all: min_balance 0, which `allow_negative` makes moot.
    let min_balance = numeric(&floor.unwrap_or(Decimal::ZERO).to_string());
    let args =
        [account.as_str().into(), currency.into(), floor.is_none().into(), min_balance.into()];
    Spi::connect_mut(|client| {
        run_cached(client, FLOOR_WRITE, &args, true);
    });
}

const ACCOUNT_CURRENCIES: &str = "
    SELECT coalesce(array_agg(currency ORDER BY currency COLLATE \"C\"), '{}')
      FROM cte_ctel.cte_balances WHERE account_id = $1";

/// The currencies an account holds, in the lock order.
pub fn currencies_of(account: &AccountId) -> Vec<String> {
    let held: Option<Vec<String>> = select_one(ACCOUNT_CURRENCIES, &[account.as_str().into()]);
    required(held, ACCOUNT_CURRENCIES, "a list (empty for none)")
}

const STATUS_WRITE: &str = "
    WITH account AS (
        UPDATE cte_ctel.cte_accounts
           SET status = $2, status_reason = $3,
               status_changed_at = pg_catalog.clock_timestamp()
         WHERE id = $1)
    UPDATE cte_ctel.cte_balances SET status = $2 WHERE account_id = $1";

/// Writes a locked account's status, and its copy on each of its (locked) balance rows.
pub fn write_status(account: &AccountId, status: WalletState, reason: Option<&str>) {
    let args = [account.as_str().into(), status.as_str().into(), reason.into()];
    Spi::connect_mut(|client| {
        run_cached(client, STATUS_WRITE, &args, true);
    });
}

// What keeps an account from closing: money or holds on it, or an event that posted to it and
// has not finished (it could still compensate into it).
const CLOSE_BLOCKERS: &str = "
    SELECT (SELECT string_agg(format('%s balance %s, reserved %s', currency, balance, reserved),
                              '; ' ORDER BY currency)
              FROM cte_ctel.cte_balances
             WHERE account_id = $1 AND (balance <> 0 OR reserved <> 0)),
           (SELECT count(*) FROM cte_ctel.cte_liens
             WHERE account_id = $1 AND status IN ('pending', 'active')),
           (SELECT count(DISTINCT e.id)
              FROM cte_ctel.cte_entries j
              JOIN cte_ctel.cte_transactions t ON t.id = j.transaction_id
              JOIN cte_ctel.cte_events e ON e.id = t.event_id
             WHERE j.account_id = $1
               AND e.status IN ('running', 'waiting', 'compensating', 'failed'))";

/// Why a (locked) account cannot close, if anything keeps it open.
pub fn close_blockers(account: &AccountId) -> Option<String> {
    let row = Spi::connect_mut(|client| {
        let table = run_cached(client, CLOSE_BLOCKERS, &[account.as_str().into()], false);
        table.first().get_three::<String, i64, i64>().ok()
    });
    let (money, liens, events) = row.unwrap_or((None, None, None));
    if let Some(money) = money {
        return Some(format!("it still holds money ({money})"));
    }
    match (liens.unwrap_or(0), events.unwrap_or(0)) {
        (0, 0) => None,
        (liens, 0) => Some(format!("{liens} liens on it are pending or active")),
        (_, events) => Some(format!("{events} events that posted to it have not finished")),
    }
}
