//! What wallets may hold, decided in one place: postings applied to wallets read (and locked)
//! beforehand, one entry at a time in each posting's lock order, and reservations made or
//! given back by liens. One posting and a batch of a thousand take the same path: lock and read
//! the wallets, apply here, write the results. The table's CHECK is the backstop. Pure
//! arithmetic on exact decimals; a figure `Decimal` cannot hold is refused, never rounded.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::Posting;

/// A wallet balance row as read, locked, before the postings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub balance: Decimal,
    pub reserved: Decimal,
    pub allow_negative: bool,
}

/// Why a posting could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Posting `posting` would take `account_id` below what it may hold; `available` is what it
    /// had then (after the postings before it).
    Funds { posting: usize, account_id: String, available: Decimal, amount: Decimal },
    /// Posting `posting` names a wallet that was not read: unknown account or currency not held.
    Missing { posting: usize, account_id: String },
    /// A figure left `Decimal`'s 28 significant digits (a balance beyond what any currency's
    /// amounts can reach in practice): refused, never rounded.
    Overflow,
}

impl Wallet {
    /// The one rule of what a wallet may hold: what it could spend (balance less reserved)
    /// never goes below zero, unless the account may go negative.
    pub fn admits(&self, available: Decimal) -> bool {
        self.allow_negative || !available.is_sign_negative()
    }

    /// What the wallet can spend now: its balance less what liens reserve.
    pub fn available(&self) -> Result<Decimal, Refused> {
        self.balance.checked_sub(self.reserved).ok_or(Refused::Overflow)
    }

    /// Reserves `amount` for a lien, if the wallet can spare it.
    pub fn reserve(&mut self, amount: Decimal) -> Result<(), Refused> {
        assert!(
            amount.is_sign_positive() && !amount.is_zero(),
            "a lien reserves a positive amount"
        );
        let available = self.available()?;
        let available_after = available.checked_sub(amount).ok_or(Refused::Overflow)?;
        if !self.admits(available_after) {
            return Err(Refused::Funds {
                posting: 0,
                account_id: String::new(),
                available,
                amount,
            });
        }
        self.reserved = self.reserved.checked_add(amount).ok_or(Refused::Overflow)?;
        Ok(())
    }

    /// Gives back `amount` a lien reserved.
    pub fn release(&mut self, amount: Decimal) -> Result<(), Refused> {
        let reserved = self.reserved.checked_sub(amount).ok_or(Refused::Overflow)?;
        assert!(!reserved.is_sign_negative(), "a wallet never gives back more than it reserved");
        self.reserved = reserved;
        Ok(())
    }
}

/// The postings applied: each entry's balance after it (`None` for system accounts), and each
/// wallet's final balance, in the global lock order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub balances_after: Vec<Vec<Option<Decimal>>>,
    pub final_balances: Vec<((String, String), Decimal)>,
}

/// Each wallet's figures after `wallets` changed them, in the global lock order, for writing.
pub fn in_write_order(
    wallets: &HashMap<(String, String), Wallet>,
) -> Vec<(&(String, String), &Wallet)> {
    let mut rows: Vec<_> = wallets.iter().collect();
    rows.sort_by(|a, b| super::lock_order((&a.0 .0, &a.0 .1), (&b.0 .0, &b.0 .1)));
    rows
}

/// Applies `postings` in order to `wallets` (keyed by account id and currency).
pub fn apply(
    postings: &[Posting],
    mut wallets: HashMap<(String, String), Wallet>,
) -> Result<Applied, Refused> {
    let mut touched: Vec<(String, String)> = Vec::new();
    let mut balances_after = Vec::with_capacity(postings.len());
    for (index, posting) in postings.iter().enumerate() {
        posting.assert_balanced();
        let mut after: Vec<Option<Decimal>> = vec![None; posting.entries.len()];
        for entry in posting.wallet_entries_in_lock_order() {
            let key = (entry.account_id.clone(), posting.currency.clone());
            let Some(wallet) = wallets.get_mut(&key) else {
                return Err(Refused::Missing { posting: index, account_id: key.0 });
            };
            let available = wallet.available()?;
            let available_after = available.checked_add(entry.amount).ok_or(Refused::Overflow)?;
            if !wallet.admits(available_after) {
                return Err(Refused::Funds {
                    posting: index,
                    account_id: key.0,
                    available,
                    amount: entry.amount.abs(),
                });
            }
            wallet.balance = wallet.balance.checked_add(entry.amount).ok_or(Refused::Overflow)?;
            let position = posting.entries.iter().position(|e| std::ptr::eq(e, entry));
            assert!(position.is_some(), "a lock-order entry is one of the posting's");
            if let Some(position) = position {
                after[position] = Some(wallet.balance);
            }
            touched.push(key);
        }
        balances_after.push(after);
    }
    let touched = super::in_lock_order(touched);
    let final_balances = touched
        .into_iter()
        .map(|key| {
            let balance = wallets[&key].balance;
            (key, balance)
        })
        .collect();
    Ok(Applied { balances_after, final_balances })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{AccountId, Posting};
    use crate::money::{Amount, Currency};
    use std::str::FromStr;

    fn usd(text: &str) -> Amount {
        Amount::parse(text, &Currency::new("USD", 2).unwrap()).unwrap()
    }

    fn transfer(from: &str, to: &str, amount: &str) -> Posting {
        let (from, to) = (AccountId::parse(from).unwrap(), AccountId::parse(to).unwrap());
        Posting::transfer(&from, &to, &usd(amount)).unwrap()
    }

    fn wallets(rows: &[(&str, &str, &str, bool)]) -> HashMap<(String, String), Wallet> {
        rows.iter()
            .map(|(id, balance, reserved, allow_negative)| {
                let wallet = Wallet {
                    balance: Decimal::from_str(balance).unwrap(),
                    reserved: Decimal::from_str(reserved).unwrap(),
                    allow_negative: *allow_negative,
                };
                ((id.to_string(), "USD".to_string()), wallet)
            })
            .collect()
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn applies_in_order_with_running_balances() {
        let postings = [transfer("a", "b", "6.00"), transfer("b", "c", "7.50")];
        let applied = apply(
            &postings,
            wallets(&[
                ("a", "10.00", "0", false),
                ("b", "2.00", "0", false),
                ("c", "0", "0", false),
            ]),
        )
        .unwrap();
        // Entries in posting order: source, then destination.
        assert_eq!(applied.balances_after[0], vec![Some(dec("4.00")), Some(dec("8.00"))]);
        assert_eq!(applied.balances_after[1], vec![Some(dec("0.50")), Some(dec("7.50"))]);
        let finals: Vec<_> = applied
            .final_balances
            .iter()
            .map(|((id, _), b)| (id.as_str(), b.to_string()))
            .collect();
        assert_eq!(finals, vec![("a", "4.00".into()), ("b", "0.50".into()), ("c", "7.50".into())]);
    }

    #[test]
    fn a_later_posting_may_spend_what_an_earlier_one_brought() {
        let postings = [transfer("a", "b", "5"), transfer("b", "a", "5"), transfer("a", "b", "5")];
        let applied =
            apply(&postings, wallets(&[("a", "5", "0", false), ("b", "0", "0", false)])).unwrap();
        assert_eq!(applied.final_balances[0].1, dec("0"));
        assert_eq!(applied.final_balances[1].1, dec("5"));
    }

    #[test]
    fn refuses_what_the_guarded_update_refuses_counting_reserved() {
        let postings = [transfer("a", "b", "3"), transfer("a", "b", "3")];
        let refused = apply(&postings, wallets(&[("a", "10", "5", false), ("b", "0", "0", false)]));
        assert_eq!(
            refused,
            Err(Refused::Funds {
                posting: 1,
                account_id: "a".into(),
                available: dec("2.00"),
                amount: dec("3.00"),
            })
        );
    }

    #[test]
    fn an_account_allowed_negative_goes_below_zero() {
        let applied = apply(
            &[transfer("a", "b", "3")],
            wallets(&[("a", "1", "0", true), ("b", "0", "0", false)]),
        )
        .unwrap();
        assert_eq!(applied.balances_after[0][0], Some(dec("-2.00")));
    }

    #[test]
    fn a_wallet_not_read_is_missing() {
        let refused = apply(&[transfer("a", "zed", "1")], wallets(&[("a", "5", "0", false)]));
        assert_eq!(refused, Err(Refused::Missing { posting: 0, account_id: "zed".into() }));
    }

    #[test]
    fn system_accounts_get_no_balance_after() {
        let deposit = Posting::deposit(&AccountId::parse("a").unwrap(), &usd("2")).unwrap();
        let applied = apply(&[deposit], wallets(&[("a", "0", "0", false)])).unwrap();
        assert_eq!(applied.balances_after[0], vec![None, Some(dec("2.00"))]);
        assert_eq!(applied.final_balances.len(), 1);
    }

    #[test]
    fn a_lien_reserves_only_what_the_wallet_can_spare_and_gives_it_back() {
        let mut wallet =
            Wallet { balance: dec("10.00"), reserved: dec("4.00"), allow_negative: false };
        assert_eq!(
            wallet.reserve(dec("6.01")),
            Err(Refused::Funds {
                posting: 0,
                account_id: String::new(),
                available: dec("6.00"),
                amount: dec("6.01")
            })
        );
        wallet.reserve(dec("6.00")).unwrap();
        assert_eq!(wallet.available(), Ok(dec("0.00")));
        wallet.release(dec("10.00")).unwrap();
        assert_eq!(wallet.reserved, dec("0.00"));
        let mut credit = Wallet { balance: dec("0"), reserved: dec("0"), allow_negative: true };
        credit.reserve(dec("50")).unwrap();
        assert_eq!(credit.available(), Ok(dec("-50")));
    }

    #[test]
    #[should_panic(expected = "never gives back more")]
    fn giving_back_more_than_was_reserved_is_a_bug() {
        let mut wallet = Wallet { balance: dec("1"), reserved: dec("1"), allow_negative: false };
        let _ = wallet.release(dec("2"));
    }

    #[test]
    fn a_balance_beyond_decimal_is_refused() {
        let huge = Decimal::MAX.to_string();
        let refused = apply(
            &[transfer("b", "a", "1")],
            wallets(&[("a", &huge, "0", false), ("b", "5", "0", false)]),
        );
        assert_eq!(refused, Err(Refused::Overflow));
    }
}
