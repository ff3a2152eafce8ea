//! Postings: balanced groups of journal entries, planned before anything is written.
//!
//! A plan is built and checked here (every posting sums to zero in one currency); the shell
//! writes it. Wallet entries are applied in `lock_order`, the one global order in which every
//! session locks balance rows, so two postings over the same accounts cannot deadlock.

use std::cmp::Ordering;

use rust_decimal::Decimal;

use super::{is_system_account, AccountId, SYSTEM_ACCOUNT_WORLD};
use crate::error::CteError;
use crate::money::Amount;

/// What a posting records, as written in the journal's `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostingKind {
    Deposit,
    Withdrawal,
    Transfer,
    Exchange,
    Fee,
    /// A compensation: the mirror image of an earlier posting.
    Reversal,
    /// A refund (`cte_reverse_event`): the mirror image of a completed event's posting, or of
    /// part of it.
    Refund,
}

impl PostingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PostingKind::Deposit => "deposit",
            PostingKind::Withdrawal => "withdrawal",
            PostingKind::Transfer => "transfer",
            PostingKind::Exchange => "exchange",
            PostingKind::Fee => "fee",
            PostingKind::Reversal => "reversal",
            PostingKind::Refund => "refund",
        }
    }
}

/// One line of the journal: a signed change to one account's balance in the posting's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub account_id: String,
    pub amount: Decimal,
}

impl Entry {
    pub fn is_system(&self) -> bool {
        is_system_account(&self.account_id)
    }
}

/// A balanced group of entries in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub kind: PostingKind,
    pub currency: String,
    pub entries: Vec<Entry>,
    /// It settles what was agreed before (a reversal, a refund, the capture of a lien), so a
    /// frozen account's debit in it still posts.
    pub settles: bool,
}

impl Posting {
    /// Money enters `account` from the outside world.
    pub fn deposit(account: &AccountId, amount: &Amount) -> Result<Posting, CteError> {
        refuse_system_account(account)?;
        let posting =
            Posting::balanced(PostingKind::Deposit, amount, SYSTEM_ACCOUNT_WORLD, account.as_str());
        // The wallet is credited, never debited, by a deposit: the money comes from `@world`.
        assert_eq!(posting.entries[1].account_id, account.as_str());
        assert!(posting.entries[1].amount.is_sign_positive());
        assert!(posting.entries[0].is_system());
        Ok(posting)
    }

    /// Money leaves `account` to the outside world.
    pub fn withdrawal(account: &AccountId, amount: &Amount) -> Result<Posting, CteError> {
        refuse_system_account(account)?;
        let posting = Posting::balanced(
            PostingKind::Withdrawal,
            amount,
            account.as_str(),
            SYSTEM_ACCOUNT_WORLD,
        );
        // The wallet is debited, never credited, by a withdrawal: the money goes to `@world`.
        assert_eq!(posting.entries[0].account_id, account.as_str());
        assert!(posting.entries[0].amount.is_sign_negative());
        assert!(posting.entries[1].is_system());
        Ok(posting)
    }

    /// Money moves from one wallet to another.
    pub fn transfer(
        source: &AccountId,
        destination: &AccountId,
        amount: &Amount,
    ) -> Result<Posting, CteError> {
        refuse_system_account(source)?;
        refuse_system_account(destination)?;
        if source == destination {
            return Err(CteError::SameAccount { account_id: source.as_str().to_string() });
        }
        let posting =
            Posting::balanced(PostingKind::Transfer, amount, source.as_str(), destination.as_str());
        // Two wallets, no system account: a transfer creates and destroys no money.
        assert!(posting.entries.iter().all(|entry| !entry.is_system()));
        assert_eq!(posting.wallet_entries_in_lock_order().len(), 2);
        Ok(posting)
    }

    /// One currency's side of an exchange: into or out of the `@exchange` system account.
    pub fn exchange_leg(
        account: &AccountId,
        amount: &Amount,
        into_exchange: bool,
    ) -> Result<Posting, CteError> {
        refuse_system_account(account)?;
        let exchange = super::SYSTEM_ACCOUNT_EXCHANGE;
        let posting = if into_exchange {
            Posting::balanced(PostingKind::Exchange, amount, account.as_str(), exchange)
        } else {
            Posting::balanced(PostingKind::Exchange, amount, exchange, account.as_str())
        };
        // One wallet leg and the `@exchange` leg: the currency's side balances through it.
        assert_eq!(posting.wallet_entries_in_lock_order().len(), 1);
        assert_eq!(posting.entries.iter().filter(|entry| entry.account_id == exchange).count(), 1);
        Ok(posting)
    }

    /// A fee moving from the payer to the fee account.
    pub fn fee(
        payer: &AccountId,
        fee_account: &AccountId,
        amount: &Amount,
    ) -> Result<Posting, CteError> {
        let mut posting = Posting::transfer(payer, fee_account, amount)?;
        posting.kind = PostingKind::Fee;
        assert_eq!(posting.entries[0].account_id, payer.as_str());
        assert_eq!(posting.entries[1].account_id, fee_account.as_str());
        Ok(posting)
    }

    /// A posting as the journal recorded it (amounts as decimal text), to be reversed.
    pub fn recorded(currency: String, accounts: &[String], amounts: &[String]) -> Posting {
        assert_eq!(accounts.len(), amounts.len());
        let entries = accounts
            .iter()
            .zip(amounts)
            .map(|(account_id, amount)| {
                let amount = Decimal::from_str_exact(amount);
                assert!(amount.is_ok(), "journal amounts are valid decimals");
                Entry { account_id: account_id.clone(), amount: amount.unwrap_or_default() }
            })
            .collect();
        // Its kind does not matter: only its reversal is posted.
        let posting = Posting { kind: PostingKind::Reversal, currency, entries, settles: true };
        posting.assert_balanced();
        posting
    }

    /// The posting that undoes this one: every entry negated.
    pub fn reversal(&self) -> Posting {
        // Balanced when it was built (or recorded); its mirror is checked again below.
        self.assert_balanced();
        let entries = self
            .entries
            .iter()
            .map(|entry| Entry { account_id: entry.account_id.clone(), amount: -entry.amount })
            .collect();
        let reversal = Posting {
            kind: PostingKind::Reversal,
            currency: self.currency.clone(),
            entries,
            settles: true,
        };
        reversal.assert_balanced();
        assert_eq!(reversal.entries.len(), self.entries.len());
        assert_eq!(reversal.moved(), self.moved());
        reversal
    }

    /// The refund of this posting: every entry negated, or for a posting of two entries, part
    /// of it (`part` at most what it moved). It settles what was agreed, so a frozen account's
    /// debit in it posts.
    pub fn refund(&self, part: Option<Decimal>) -> Posting {
        let mut refund = self.reversal();
        refund.kind = PostingKind::Refund;
        if let Some(part) = part {
            assert_eq!(self.entries.len(), 2, "only a posting of two entries is refunded in part");
            assert!(part.is_sign_positive() && !part.is_zero());
            for entry in &mut refund.entries {
                let moved = entry.amount.abs();
                assert!(part <= moved, "a refund returns at most what was moved");
                entry.amount = if entry.amount.is_sign_negative() { -part } else { part };
            }
        }
        refund.assert_balanced();
        // It returns what was asked, or all that was moved.
        assert_eq!(refund.moved(), part.unwrap_or(self.moved()));
        refund
    }

    /// What the posting moved: the sum of its credits.
    pub fn moved(&self) -> Decimal {
        let moved = self
            .entries
            .iter()
            .filter(|entry| entry.amount.is_sign_positive())
            .try_fold(Decimal::ZERO, |sum, entry| sum.checked_add(entry.amount));
        // Amounts are below 10^16 and a posting has at most a split's legs (SPLIT_LEGS_MAX) and
        // a remainder: their sum is far inside `Decimal`, never a figure to cap.
        assert!(moved.is_some(), "a posting's credits sum within Decimal");
        let moved = moved.unwrap_or_default();
        assert!(!moved.is_sign_negative());
        moved
    }

    /// One debit of `amount` from `source` and a credit to each account of `credits` (a split):
    /// the credits must add up to the amount, each to a wallet other than the source.
    pub fn split(
        source: &AccountId,
        credits: &[(AccountId, Decimal)],
        amount: &Amount,
    ) -> Result<Posting, CteError> {
        refuse_system_account(source)?;
        let mut entries =
            vec![Entry { account_id: source.as_str().to_string(), amount: -amount.value() }];
        for (account, part) in credits {
            refuse_system_account(account)?;
            if account == source {
                return Err(CteError::SameAccount { account_id: source.as_str().to_string() });
            }
            assert!(part.is_sign_positive() && !part.is_zero(), "a split's parts are positive");
            entries.push(Entry { account_id: account.as_str().to_string(), amount: *part });
        }
        let posting = Posting {
            kind: PostingKind::Transfer,
            currency: amount.currency().to_string(),
            entries,
            settles: false,
        };
        posting.assert_balanced();
        assert_eq!(posting.entries.len(), credits.len() + 1);
        assert_eq!(posting.moved(), amount.value());
        Ok(posting)
    }

    /// Two entries: `amount` out of `debited`, `amount` into `credited`.
    fn balanced(kind: PostingKind, amount: &Amount, debited: &str, credited: &str) -> Posting {
        // Callers refuse a system account as the wallet and a transfer to itself.
        assert_ne!(debited, credited);
        let value = amount.value();
        // An `Amount` is positive (its parser refuses the rest): `debited` is the one that pays.
        assert!(value > Decimal::ZERO);
        let entries = vec![
            Entry { account_id: debited.to_string(), amount: -value },
            Entry { account_id: credited.to_string(), amount: value },
        ];
        let currency = amount.currency().to_string();
        let posting = Posting { kind, currency, entries, settles: false };
        posting.assert_balanced();
        assert_eq!(posting.moved(), value, "it moves the amount, no more, no less");
        posting
    }

    /// The double-entry invariant; `cte_verify_ledger()` checks it again on what was written.
    pub fn assert_balanced(&self) {
        assert!(self.entries.len() >= 2);
        assert!(self.entries.iter().all(|entry| !entry.amount.is_zero()));
        let sum =
            self.entries.iter().try_fold(Decimal::ZERO, |sum, entry| sum.checked_add(entry.amount));
        assert_eq!(sum, Some(Decimal::ZERO), "posting does not balance");
    }

    /// Wallet entries in the global lock order (account id, then currency, which is one per
    /// posting), so that concurrent postings lock balance rows in the same sequence.
    pub fn wallet_entries_in_lock_order(&self) -> Vec<&Entry> {
        let mut wallet: Vec<&Entry> = self.entries.iter().filter(|e| !e.is_system()).collect();
        let currency = self.currency.as_str();
        wallet.sort_by(|a, b| lock_order((&a.account_id, currency), (&b.account_id, currency)));
        assert!(wallet.len() <= self.entries.len());
        assert!(wallet.windows(2).all(|pair| pair[0].account_id <= pair[1].account_id));
        wallet
    }
}

/// What a set of postings takes out of wallets: (account, currency, amount) summed per wallet
/// and currency, in the global lock order. These are the funds a lien holds for a step whose
/// postings wait for its event to complete.
pub fn wallet_debits(postings: &[Posting]) -> Vec<(String, String, Decimal)> {
    let mut debits: Vec<(String, String, Decimal)> = Vec::new();
    for posting in postings {
        for entry in
            posting.entries.iter().filter(|e| !e.is_system() && e.amount.is_sign_negative())
        {
            let key = (entry.account_id.as_str(), posting.currency.as_str());
            let amount = -entry.amount;
            match debits.iter_mut().find(|(a, c, _)| (a.as_str(), c.as_str()) == key) {
                Some((_, _, total)) => {
                    let sum = total.checked_add(amount);
                    assert!(sum.is_some(), "debits of one step stay within Decimal");
                    *total = sum.unwrap_or(*total);
                }
                None => debits.push((key.0.to_string(), key.1.to_string(), amount)),
            }
        }
    }
    debits.sort_by(|a, b| lock_order((&a.0, &a.1), (&b.0, &b.1)));
    // What a lien holds for them: positive, one per wallet (the key was searched before a push).
    assert!(debits.iter().all(|(_, _, amount)| amount.is_sign_positive() && !amount.is_zero()));
    assert!(debits.windows(2).all(|pair| lock_order(
        (&pair[0].0, &pair[0].1),
        (&pair[1].0, &pair[1].1)
    )
    .is_lt()));
    debits
}

/// The one global order in which balance rows are locked: account id, then currency, compared
/// bytewise (SQL's `COLLATE "C"`). Every path that locks more than one row follows it, so no two
/// of them can wait on each other in a cycle.
pub fn lock_order(a: (&str, &str), b: (&str, &str)) -> Ordering {
    (a.0.as_bytes(), a.1.as_bytes()).cmp(&(b.0.as_bytes(), b.1.as_bytes()))
}

/// Wallets (account id, currency) sorted in the global lock order, each once.
pub fn in_lock_order(mut wallets: Vec<(String, String)>) -> Vec<(String, String)> {
    wallets.sort_by(|a, b| lock_order((&a.0, &a.1), (&b.0, &b.1)));
    wallets.dedup();
    assert!(wallets.windows(2).all(|pair| pair[0] < pair[1]));
    wallets
}

fn refuse_system_account(account: &AccountId) -> Result<(), CteError> {
    if is_system_account(account.as_str()) {
        return Err(CteError::SystemAccountRefused { account_id: account.as_str().to_string() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn id(text: &str) -> AccountId {
        AccountId::parse(text).unwrap()
    }

    fn usd(text: &str) -> Amount {
        Amount::parse(text, &Currency::new("USD", 2).unwrap()).unwrap()
    }

    fn sum(posting: &Posting) -> Decimal {
        posting.entries.iter().map(|e| e.amount).sum()
    }

    #[test]
    fn a_deposit_credits_the_wallet_and_debits_the_world() {
        let posting = Posting::deposit(&id("alice"), &usd("100.50")).unwrap();
        assert_eq!(posting.kind.as_str(), "deposit");
        assert_eq!(posting.currency, "USD");
        assert_eq!(
            posting.entries[0],
            Entry {
                account_id: "@world".into(),
                amount: usd("100.50").value() * Decimal::NEGATIVE_ONE
            }
        );
        assert_eq!(posting.entries[1].account_id, "alice");
        assert_eq!(sum(&posting), Decimal::ZERO);
    }

    #[test]
    fn a_withdrawal_is_the_mirror_of_a_deposit() {
        let posting = Posting::withdrawal(&id("alice"), &usd("5")).unwrap();
        assert_eq!(posting.entries[0].account_id, "alice");
        assert!(posting.entries[0].amount.is_sign_negative());
        assert_eq!(sum(&posting), Decimal::ZERO);
    }

    #[test]
    fn a_transfer_moves_between_two_wallets() {
        let posting = Posting::transfer(&id("bob"), &id("alice"), &usd("1.25")).unwrap();
        let order: Vec<&str> =
            posting.wallet_entries_in_lock_order().iter().map(|e| e.account_id.as_str()).collect();
        assert_eq!(order, vec!["alice", "bob"]);
        assert_eq!(sum(&posting), Decimal::ZERO);
    }

    #[test]
    fn refuses_self_transfers_and_system_accounts() {
        let same = Posting::transfer(&id("alice"), &id("alice"), &usd("1")).unwrap_err();
        assert_eq!(same.reason(), "same_account");
        let system = Posting::deposit(&id("@world"), &usd("1")).unwrap_err();
        assert_eq!(system.reason(), "system_account_refused");
        let system = Posting::transfer(&id("alice"), &id("@exchange"), &usd("1")).unwrap_err();
        assert_eq!(system.reason(), "system_account_refused");
    }

    #[test]
    fn wallet_debits_sum_per_wallet_and_currency_in_lock_order() {
        let postings = vec![
            Posting::transfer(&id("zed"), &id("bob"), &usd("1.00")).unwrap(),
            Posting::withdrawal(&id("alice"), &usd("2.50")).unwrap(),
            Posting::transfer(&id("zed"), &id("alice"), &usd("0.25")).unwrap(),
            Posting::deposit(&id("bob"), &usd("9")).unwrap(),
        ];
        let debits: Vec<(String, String, String)> = wallet_debits(&postings)
            .into_iter()
            .map(|(a, c, amount)| (a, c, amount.to_string()))
            .collect();
        assert_eq!(
            debits,
            vec![
                ("alice".into(), "USD".into(), "2.50".into()),
                ("zed".into(), "USD".into(), "1.25".into()),
            ]
        );
    }

    #[test]
    fn the_lock_order_is_bytewise_account_then_currency_each_once() {
        let wallets = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(a, c)| (a.to_string(), c.to_string())).collect()
        };
        let sorted = in_lock_order(wallets(&[
            ("b", "USD"),
            ("Z", "EUR"),
            ("b", "EUR"),
            ("é", "USD"),
            ("b", "USD"),
        ]));
        assert_eq!(sorted, wallets(&[("Z", "EUR"), ("b", "EUR"), ("b", "USD"), ("é", "USD")]));
    }

    #[test]
    fn a_reversal_mirrors_every_entry() {
        let posting = Posting::transfer(&id("bob"), &id("alice"), &usd("1.25")).unwrap();
        let reversal = posting.reversal();
        assert_eq!(reversal.kind, PostingKind::Reversal);
        for (entry, mirrored) in posting.entries.iter().zip(&reversal.entries) {
            assert_eq!(entry.account_id, mirrored.account_id);
            assert_eq!(entry.amount, -mirrored.amount);
        }
    }

    #[test]
    #[should_panic(expected = "posting does not balance")]
    fn an_unbalanced_posting_is_a_programmer_error() {
        let posting = Posting {
            kind: PostingKind::Transfer,
            currency: "USD".into(),
            entries: vec![
                Entry { account_id: "a".into(), amount: Decimal::ONE },
                Entry { account_id: "b".into(), amount: Decimal::ONE },
            ],
            settles: false,
        };
        posting.assert_balanced();
    }

    #[test]
    fn a_refund_mirrors_the_posting_or_a_part_of_it() {
        let posting = Posting::transfer(&id("bob"), &id("alice"), &usd("10.00")).unwrap();
        let full = posting.refund(None);
        assert_eq!(full.kind, PostingKind::Refund);
        assert!(full.settles);
        assert_eq!(full.entries, posting.reversal().entries);
        let part = posting.refund(Some(Decimal::new(250, 2)));
        assert_eq!(part.entries[0].account_id, "bob");
        assert_eq!(part.entries[0].amount, Decimal::new(250, 2));
        assert_eq!(part.entries[1].amount, Decimal::new(-250, 2));
        assert_eq!(posting.moved(), Decimal::new(1000, 2));
    }

    #[test]
    #[should_panic(expected = "at most what was moved")]
    fn a_refund_larger_than_the_posting_is_a_programmer_error() {
        let posting = Posting::transfer(&id("bob"), &id("alice"), &usd("1.00")).unwrap();
        let _ = posting.refund(Some(Decimal::new(101, 2)));
    }
}
