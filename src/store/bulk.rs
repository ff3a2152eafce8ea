//! Many postings in three statements, for a batch: lock and read every wallet they touch in the
//! global order (`ledger::lock_wallets`), apply them in memory with the core's rule
//! (`ledger::wallets::apply`, the same guard as the one-posting update), then write the final
//! balances, and all the entries with their system deltas. A sum beyond `Decimal` falls back to
//! posting one at a time in SQL.

use std::collections::HashMap;

use cte_ctel_core::ledger::wallets::{self, Applied, Refused, Wallet};
use cte_ctel_core::ledger::Posting;
use cte_ctel_core::CteError;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, Uuid};
use rust_decimal::Decimal;

use super::ledger::{self, numeric};
use super::{new_id, run_cached};

const BALANCES_WRITE: &str = "
    UPDATE cte_ctel.cte_balances b SET balance = w.balance
      FROM unnest($1::text[], $2::text[], $3::numeric[]) AS w(account_id, currency, balance)
     WHERE b.account_id = w.account_id AND b.currency = w.currency";

const ENTRIES_WRITE: &str = "
    WITH entries AS (
        INSERT INTO cte_ctel.cte_entries
               (posting_id, kind, account_id, currency, amount, balance_after, reference,
                transaction_id)
        SELECT e.posting_id, e.kind, e.account_id, e.currency, e.amount, e.balance_after,
               e.reference, $8
          FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::numeric[],
                      $6::numeric[], $7::text[])
                   WITH ORDINALITY AS e(posting_id, kind, account_id, currency, amount,
                                        balance_after, reference, n)
         ORDER BY e.n
        RETURNING account_id, currency, amount, balance_after)
    INSERT INTO cte_ctel.cte_system_deltas (account_id, currency, amount)
    SELECT account_id, currency, amount FROM entries WHERE balance_after IS NULL";

/// Posts `postings` in order, each with its reference, for `step`; returns their ids, or the
/// index of the posting refused and why (nothing is written then).
pub fn post_all(
    postings: &[Posting],
    references: &[Option<&str>],
    step: Uuid,
) -> Result<Vec<Uuid>, (usize, CteError)> {
    assert_eq!(postings.len(), references.len(), "one reference per posting");
    let wanted = postings
        .iter()
        .flat_map(|posting| {
            posting
                .entries
                .iter()
                .filter(|entry| !entry.is_system())
                .map(|entry| (entry.account_id.clone(), posting.currency.clone()))
        })
        .collect();
    let Some(read) = read_locked(wanted) else {
        return one_at_a_time(postings, references, step);
    };
    match wallets::apply(postings, read) {
        Ok(applied) => Ok(write(postings, references, step, &applied)),
        Err(Refused::Funds { posting, account_id, available, amount }) => {
            let currency = postings[posting].currency.clone();
            let (available, amount) = (available.to_string(), amount.to_string());
            Err((posting, CteError::InsufficientFunds { account_id, currency, available, amount }))
        }
        Err(Refused::Missing { posting, account_id }) => {
            let currency = postings[posting].currency.as_str();
            Err((posting, ledger::account_missing_or_currency_not_held(&account_id, currency)))
        }
        Err(Refused::Overflow) => one_at_a_time(postings, references, step),
    }
}

/// The wanted wallets that exist, locked in the global order; `None` if a figure is beyond
/// `Decimal` (read exactly, never rounded: such a batch is posted in SQL numeric instead).
fn read_locked(wanted: Vec<(String, String)>) -> Option<HashMap<(String, String), Wallet>> {
    ledger::lock_wallets(wanted)
        .into_iter()
        .map(|locked| {
            let wallet = Wallet {
                balance: Decimal::from_str_exact(&locked.balance).ok()?,
                reserved: Decimal::from_str_exact(&locked.reserved).ok()?,
                allow_negative: locked.allow_negative,
            };
            Some(((locked.account_id, locked.currency), wallet))
        })
        .collect()
}

fn write(
    postings: &[Posting],
    references: &[Option<&str>],
    step: Uuid,
    applied: &Applied,
) -> Vec<Uuid> {
    let ids: Vec<Uuid> = postings.iter().map(|_| new_id()).collect();
    let (mut posting_ids, mut kinds, mut accounts, mut currencies) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut amounts, mut after, mut refs) = (Vec::new(), Vec::new(), Vec::new());
    for (index, posting) in postings.iter().enumerate() {
        for (entry, balance_after) in posting.entries.iter().zip(&applied.balances_after[index]) {
            posting_ids.push(ids[index]);
            kinds.push(posting.kind.as_str());
            accounts.push(entry.account_id.as_str());
            currencies.push(posting.currency.as_str());
            amounts.push(numeric(&entry.amount.to_string()));
            after.push(balance_after.map(|b| numeric(&b.to_string())));
            refs.push(references[index]);
        }
    }
    let finals = &applied.final_balances;
    let wallet_accounts: Vec<&str> =
        finals.iter().map(|((account, _), _)| account.as_str()).collect();
    let wallet_currencies: Vec<&str> =
        finals.iter().map(|((_, currency), _)| currency.as_str()).collect();
    let balances: Vec<AnyNumeric> =
        finals.iter().map(|(_, balance)| numeric(&balance.to_string())).collect();
    let balance_args = [wallet_accounts.into(), wallet_currencies.into(), balances.into()];
    let entry_args = [
        posting_ids.into(),
        kinds.into(),
        accounts.into(),
        currencies.into(),
        amounts.into(),
        after.into(),
        refs.into(),
        step.into(),
    ];
    Spi::connect_mut(|client| {
        run_cached(client, BALANCES_WRITE, &balance_args, true);
        run_cached(client, ENTRIES_WRITE, &entry_args, true);
    });
    ids
}

fn one_at_a_time(
    postings: &[Posting],
    references: &[Option<&str>],
    step: Uuid,
) -> Result<Vec<Uuid>, (usize, CteError)> {
    let mut ids = Vec::with_capacity(postings.len());
    for (index, (posting, reference)) in postings.iter().zip(references).enumerate() {
        ids.push(ledger::post(posting, *reference, Some(step)).map_err(|error| (index, error))?);
    }
    Ok(ids)
}
