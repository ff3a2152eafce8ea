//! What wallets may hold, decided in one place: postings applied to wallets read (and locked)
//! beforehand, one entry at a time in each posting's lock order, and reservations made or
//! given back by liens. One posting and a batch of a thousand take the same path: lock and read
//! the wallets, apply here, write the results. The table's CHECK is the backstop. Pure
//! arithmetic on exact decimals; a figure `Decimal` cannot hold is refused, never rounded.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::Posting;
use crate::money::{exact_add, exact_sub};

/// Whether a wallet's account takes money. A frozen account takes no new debit and no new
/// lien (credits still post, and so do postings that settle what was agreed before: reversals,
/// refunds, captures of liens); a closed one takes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletState {
    Open,
    Frozen,
    Closed,
}

impl WalletState {
    pub const ALL: [WalletState; 3] = [WalletState::Open, WalletState::Frozen, WalletState::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            WalletState::Open => "open",
            WalletState::Frozen => "frozen",
            WalletState::Closed => "closed",
        }
    }

    /// The state named `text`; `None` for a name that is not one (a domain prevents it).
    pub fn parse(text: &str) -> Option<WalletState> {
        WalletState::ALL.into_iter().find(|state| state.as_str() == text)
    }
}

/// A wallet balance row as read, locked, before the postings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub balance: Decimal,
    pub reserved: Decimal,
    /// The least its available balance may be (a negative floor is an overdraft line);
    /// `None`: no floor at all (the account was opened with `allow_negative`).
    pub floor: Option<Decimal>,
    pub state: WalletState,
    /// The last link of its entries' hash chain (`chain::GENESIS` before the first).
    pub head: super::chain::Link,
    /// When its last entry was written, in microseconds since the Unix epoch (0 before the
    /// first): the next is never stamped earlier, so on a wallet time grows with id even if the
    /// server's clock steps back.
    pub last_entry_at: i64,
}

/// Why a posting could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Posting `posting` would take `account_id` below its floor; `available` is what it could
    /// spend then (after the postings before it): down to its floor.
    Funds { posting: usize, account_id: String, available: Decimal, amount: Decimal },
    /// Posting `posting` names a wallet that was not read: unknown account or currency not held.
    Missing { posting: usize, account_id: String },
    /// Posting `posting` (or a lien) would debit a frozen account, or touch a closed one.
    State { posting: usize, account_id: String, state: WalletState },
    /// A figure left `Decimal`'s 28 significant digits (a balance beyond what any currency's
    /// amounts can reach in practice): refused, never rounded.
    Overflow,
}

impl Wallet {
    /// An open wallet with a floor of zero: what `cte_create_account` makes by default.
    pub fn open(balance: Decimal, reserved: Decimal) -> Wallet {
        Wallet {
            balance,
            reserved,
            floor: Some(Decimal::ZERO),
            state: WalletState::Open,
            head: super::chain::GENESIS,
            last_entry_at: 0,
        }
    }

    /// The one rule of what a wallet may hold: what it could spend (balance less reserved)
    /// never goes below its floor.
    pub fn admits(&self, available: Decimal) -> bool {
        self.floor.is_none_or(|floor| available >= floor)
    }

    /// What the wallet holds free of liens: its balance less what they reserve.
    pub fn available(&self) -> Result<Decimal, Refused> {
        // Liens reserve positive amounts and give back no more than they took (`release`); the
        // column's domain (`cte_reserved`, >= 0) holds a read row to the same.
        assert!(!self.reserved.is_sign_negative(), "a wallet never reserves less than nothing");
        exact_sub(self.balance, self.reserved).ok_or(Refused::Overflow)
    }

    /// What a debit may take now: the available balance down to the floor (all of it with none;
    /// reported as the available balance then).
    fn spendable(&self, available: Decimal) -> Decimal {
        match self.floor {
            Some(floor) => available.checked_sub(floor).unwrap_or(available),
            None => available,
        }
    }

    /// Reserves `amount` for a lien, if the wallet can spare it and takes new liens.
    pub fn reserve(&mut self, amount: Decimal) -> Result<(), Refused> {
        assert!(
            amount.is_sign_positive() && !amount.is_zero(),
            "a lien reserves a positive amount"
        );
        if self.state != WalletState::Open {
            return Err(Refused::State {
                posting: 0,
                account_id: String::new(),
                state: self.state,
            });
        }
        let available = self.available()?;
        let available_after = exact_sub(available, amount).ok_or(Refused::Overflow)?;
        if !self.admits(available_after) {
            assert!(self.floor.is_some(), "only a floor refuses a lien");
            return Err(Refused::Funds {
                posting: 0,
                account_id: String::new(),
                available: self.spendable(available),
                amount,
            });
        }
        self.reserved = exact_add(self.reserved, amount).ok_or(Refused::Overflow)?;
        // Only an open wallet takes a lien, and only down to its floor.
        assert_eq!(self.state, WalletState::Open);
        assert!(self.admits(available_after));
        Ok(())
    }

    /// Gives back `amount` a lien reserved.
    pub fn release(&mut self, amount: Decimal) -> Result<(), Refused> {
        // What a lien still holds: its amount less its captures, positive while it is active (a
        // capture that takes the rest ends it).
        assert!(amount > Decimal::ZERO, "a lien gives back a positive amount");
        let reserved = exact_sub(self.reserved, amount).ok_or(Refused::Overflow)?;
        assert!(!reserved.is_sign_negative(), "a wallet never gives back more than it reserved");
        self.reserved = reserved;
        Ok(())
    }

    /// Whether an entry of `amount` may touch this wallet in its state; `settles`: the posting
    /// settles what was agreed before (a reversal, a refund, a lien's capture).
    fn takes(&self, amount: Decimal, settles: bool) -> bool {
        match self.state {
            WalletState::Open => true,
            WalletState::Frozen => settles || !amount.is_sign_negative(),
            WalletState::Closed => false,
        }
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
    // Keys of a map: each once, so strictly in order.
    assert_eq!(rows.len(), wallets.len());
    assert!(rows.windows(2).all(|pair| pair[0].0 < pair[1].0));
    rows
}

/// Applies one posting (`postings[index]` of independent ones: a bulk call's items) to
/// `wallets`, or changes nothing: its balance after each entry, or why it is refused (naming
/// `index`). Unlike `apply`, a refusal leaves every wallet as it was, for the next posting.
pub fn apply_one(
    posting: &Posting,
    index: usize,
    wallets: &mut HashMap<(String, String), Wallet>,
) -> Result<Vec<Option<Decimal>>, Refused> {
    let keys: Vec<(String, String)> = posting
        .entries
        .iter()
        .filter(|entry| !entry.is_system())
        .map(|entry| (entry.account_id.clone(), posting.currency.clone()))
        .collect();
    let touched: HashMap<(String, String), Wallet> = keys
        .iter()
        .filter_map(|key| wallets.get(key).map(|wallet| (key.clone(), wallet.clone())))
        .collect();
    let applied =
        apply(std::slice::from_ref(posting), touched).map_err(|refused| match refused {
            Refused::Funds { account_id, available, amount, .. } => {
                Refused::Funds { posting: index, account_id, available, amount }
            }
            Refused::Missing { account_id, .. } => Refused::Missing { posting: index, account_id },
            Refused::State { account_id, state, .. } => {
                Refused::State { posting: index, account_id, state }
            }
            Refused::Overflow => Refused::Overflow,
        })?;
    // A balanced posting moves no money in or out of the wallets it touches but through its
    // system legs: what the wallets gained is what the system legs lost.
    let before: Option<Decimal> = applied
        .final_balances
        .iter()
        .try_fold(Decimal::ZERO, |sum, (key, _)| sum.checked_add(wallets[key].balance));
    for (key, balance) in &applied.final_balances {
        let wallet = wallets.get_mut(key);
        assert!(wallet.is_some(), "a wallet a posting moved was read");
        if let Some(wallet) = wallet {
            wallet.balance = *balance;
        }
    }
    let after: Option<Decimal> = applied
        .final_balances
        .iter()
        .try_fold(Decimal::ZERO, |sum, (_, balance)| sum.checked_add(*balance));
    let system: Option<Decimal> = posting
        .entries
        .iter()
        .filter(|entry| entry.is_system())
        .try_fold(Decimal::ZERO, |sum, entry| sum.checked_add(entry.amount));
    if let (Some(before), Some(after), Some(system)) = (before, after, system) {
        assert_eq!(after - before, -system, "a posting's wallets gain what its system legs lose");
    }
    let mut balances_after = applied.balances_after;
    assert_eq!(balances_after.len(), 1, "one posting, one set of balances after");
    Ok(balances_after.swap_remove(0))
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
            if !wallet.takes(entry.amount, posting.settles) {
                let state = wallet.state;
                return Err(Refused::State { posting: index, account_id: key.0, state });
            }
            let available = wallet.available()?;
            let available_after = exact_add(available, entry.amount).ok_or(Refused::Overflow)?;
            // A credit never makes a wallet worse off, whatever its floor.
            if entry.amount.is_sign_negative() && !wallet.admits(available_after) {
                assert!(wallet.floor.is_some(), "only a floor refuses a debit");
                return Err(Refused::Funds {
                    posting: index,
                    account_id: key.0,
                    available: wallet.spendable(available),
                    amount: entry.amount.abs(),
                });
            }
            wallet.balance = exact_add(wallet.balance, entry.amount).ok_or(Refused::Overflow)?;
            // The rule was checked on `available_after`: a debit leaves the wallet admitted.
            assert!(!entry.amount.is_sign_negative() || wallet.admits(available_after));
            let position = posting.entries.iter().position(|e| std::ptr::eq(e, entry));
            assert!(position.is_some(), "a lock-order entry is one of the posting's");
            if let Some(position) = position {
                after[position] = Some(wallet.balance);
            }
            touched.push(key);
        }
        // A balance after each wallet entry, none for the system legs.
        let wallet_legs = posting.entries.iter().filter(|entry| !entry.is_system()).count();
        assert_eq!(after.iter().filter(|balance| balance.is_some()).count(), wallet_legs);
        balances_after.push(after);
    }
    assert_eq!(balances_after.len(), postings.len());
    let touched = super::in_lock_order(touched);
    let final_balances = touched
        .into_iter()
        .map(|key| {
            let balance = wallets[&key].balance;
            (key, balance)
        })
        .collect::<Vec<_>>();
    assert!(final_balances.windows(2).all(|pair| pair[0].0 < pair[1].0));
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
                let mut wallet = Wallet::open(
                    Decimal::from_str(balance).unwrap(),
                    Decimal::from_str(reserved).unwrap(),
                );
                if *allow_negative {
                    wallet.floor = None;
                }
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
        let mut wallet = Wallet::open(dec("10.00"), dec("4.00"));
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
        let mut credit = Wallet { floor: None, ..Wallet::open(dec("0"), dec("0")) };
        credit.reserve(dec("50")).unwrap();
        assert_eq!(credit.available(), Ok(dec("-50")));
    }

    #[test]
    #[should_panic(expected = "never gives back more")]
    fn giving_back_more_than_was_reserved_is_a_bug() {
        let mut wallet = Wallet::open(dec("1"), dec("1"));
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

    #[test]
    fn a_floor_is_an_overdraft_line_of_its_size() {
        let mut map = wallets(&[("a", "10", "0", false), ("b", "0", "0", false)]);
        map.get_mut(&("a".to_string(), "USD".to_string())).unwrap().floor = Some(dec("-50"));
        let applied = apply(&[transfer("a", "b", "60")], map.clone()).unwrap();
        assert_eq!(applied.balances_after[0][0], Some(dec("-50.00")));
        let refused = apply(&[transfer("a", "b", "60.01")], map).unwrap_err();
        assert!(matches!(refused, Refused::Funds { ref account_id, .. } if account_id == "a"));
    }

    #[test]
    fn a_positive_floor_keeps_a_minimum_balance() {
        let mut map = wallets(&[("a", "100", "0", false), ("b", "0", "0", false)]);
        map.get_mut(&("a".to_string(), "USD".to_string())).unwrap().floor = Some(dec("25"));
        assert!(apply(&[transfer("a", "b", "75")], map.clone()).is_ok());
        assert!(apply(&[transfer("a", "b", "75.01")], map).is_err());
    }

    #[test]
    fn a_credit_is_never_refused_for_funds() {
        // Below its floor (reserved more than it holds): a credit still lands.
        let applied = apply(
            &[transfer("b", "a", "1")],
            wallets(&[("a", "0", "5", false), ("b", "1", "0", false)]),
        )
        .unwrap();
        assert_eq!(applied.balances_after[0][1], Some(dec("1.00")));
    }

    #[test]
    fn a_frozen_wallet_takes_credits_and_settlements_but_no_new_debit_nor_lien() {
        let mut map = wallets(&[("a", "10", "0", false), ("b", "10", "0", false)]);
        map.get_mut(&("a".to_string(), "USD".to_string())).unwrap().state = WalletState::Frozen;
        let debit = apply(&[transfer("a", "b", "1")], map.clone()).unwrap_err();
        assert_eq!(
            debit,
            Refused::State { posting: 0, account_id: "a".into(), state: WalletState::Frozen }
        );
        assert!(apply(&[transfer("b", "a", "1")], map.clone()).is_ok());
        let settlement = transfer("b", "a", "1").reversal();
        assert!(settlement.settles);
        assert!(apply(&[settlement], map.clone()).is_ok());
        let mut frozen = map[&("a".to_string(), "USD".to_string())].clone();
        assert!(matches!(frozen.reserve(dec("1")), Err(Refused::State { .. })));
    }

    #[test]
    fn a_closed_wallet_takes_nothing() {
        let mut map = wallets(&[("a", "0", "0", false), ("b", "10", "0", false)]);
        map.get_mut(&("a".to_string(), "USD".to_string())).unwrap().state = WalletState::Closed;
        for posting in [transfer("b", "a", "1"), transfer("a", "b", "1").reversal()] {
            let refused = apply(&[posting], map.clone()).unwrap_err();
            assert!(matches!(refused, Refused::State { state: WalletState::Closed, .. }));
        }
        for state in WalletState::ALL {
            assert_eq!(WalletState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn apply_one_refuses_an_item_and_leaves_the_wallets_for_the_next() {
        let mut held = wallets(&[("a", "10.00", "0", false), ("b", "0", "0", false)]);
        let first = apply_one(&transfer("a", "b", "6.00"), 0, &mut held).unwrap();
        assert_eq!(first, vec![Some(dec("4.00")), Some(dec("6.00"))]);
        // Not enough left: refused, naming its own index; nothing of it applied.
        let refused = apply_one(&transfer("a", "b", "5.00"), 1, &mut held).unwrap_err();
        assert!(matches!(refused, Refused::Funds { posting: 1, .. }));
        assert_eq!(held[&("a".to_string(), "USD".to_string())].balance, dec("4.00"));
        assert_eq!(held[&("b".to_string(), "USD".to_string())].balance, dec("6.00"));
        // A later item sees the earlier ones: b spends what a gave it.
        let third = apply_one(&transfer("b", "a", "6.00"), 2, &mut held).unwrap();
        assert_eq!(third, vec![Some(dec("0.00")), Some(dec("10.00"))]);
        // A wallet never read is missing, and the other is left as it was.
        let missing = apply_one(&transfer("a", "z", "1.00"), 3, &mut held).unwrap_err();
        assert!(matches!(missing, Refused::Missing { posting: 3, .. }));
        assert_eq!(held[&("a".to_string(), "USD".to_string())].balance, dec("10.00"));
    }
}
