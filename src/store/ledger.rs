//! Currencies, accounts and balances in SQL. Money moves through `postings`, the one writer.

use cte_ctel_core::ledger::{AccountId, AccountOpening, Posting};
use cte_ctel_core::limits::SYSTEM_DELTAS_PER_FOLD_MAX;
use cte_ctel_core::money::Currency;
use cte_ctel_core::CteError;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, JsonB};

use super::{run_cached, select_one, spi, update_one};

/// A balance as the API reports it.
pub struct BalanceRow {
    pub currency: String,
    pub balance: AnyNumeric,
    pub reserved: AnyNumeric,
    pub available: AnyNumeric,
}

const CURRENCY_SCALE: &str = "SELECT scale FROM cte_ctel.cte_currencies WHERE code = $1";

/// The registered currency `code`.
pub fn currency(code: &str) -> Result<Currency, CteError> {
    let code = Currency::parse_code(code)?;
    let scale: Option<i32> = select_one(CURRENCY_SCALE, &[code.as_str().into()]);
    let scale = scale.ok_or_else(|| CteError::CurrencyUnknown { currency: code.clone() })?;
    Currency::new(&code, i64::from(scale))
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
        INSERT INTO cte_ctel.cte_balances (account_id, currency, allow_negative, balance, reserved)
        SELECT account.id, r.code, $2, pg_catalog.round(0, r.scale), pg_catalog.round(0, r.scale)
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
            .map(|row| BalanceRow {
                currency: spi(row.get(1), ACCOUNT_BALANCES).unwrap_or_default(),
                balance: spi(row.get(2), ACCOUNT_BALANCES).unwrap_or_default(),
                reserved: spi(row.get(3), ACCOUNT_BALANCES).unwrap_or_default(),
                available: spi(row.get(4), ACCOUNT_BALANCES).unwrap_or_default(),
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

/// Folds up to `SYSTEM_DELTAS_PER_FOLD_MAX` system deltas into the system balances; returns
/// how many. Deltas are deleted and added in one statement, so a reader never sees both or none.
pub fn fold_system_balances() -> i64 {
    let args = [SYSTEM_DELTAS_PER_FOLD_MAX.into()];
    Spi::connect_mut(|client| update_one(client, SYSTEM_FOLD, &args)).unwrap_or(0)
}

/// Decimal text (from a checked `Decimal`) as a SQL numeric.
pub fn numeric(text: &str) -> AnyNumeric {
    let value = AnyNumeric::try_from(text);
    assert!(value.is_ok(), "decimal text {text} is a valid numeric");
    value.unwrap_or_default()
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
        let row = table.first();
        let text = |ordinal| spi(row.get::<String>(ordinal), WALLETS_MISSING).unwrap_or_default();
        Some((text(1), text(2), spi(row.get::<bool>(3), WALLETS_MISSING) == Some(true)))
    });
    match missing {
        None => Ok(()),
        Some((account_id, currency, true)) => {
            Err(CteError::CurrencyNotHeld { account_id, currency })
        }
        Some((account_id, _, false)) => Err(CteError::AccountUnknown { account_id }),
    }
}
