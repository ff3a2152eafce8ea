//! The one writer of money: postings (one or a batch's thousands) and lien reservations.
//!
//! Every change to a wallet takes the same three steps: lock and read the wallets it touches,
//! in the global lock order (`cte_ctel_core::ledger::lock_order`, bytewise on account id then
//! currency), so that two writers over the same wallets cannot deadlock; let the core decide
//! (`ledger::wallets`, the one place the "what a wallet may hold" rule lives); write the
//! results, and for postings all their journal entries and system-account deltas, one
//! statement each. The table's CHECK constraint is the backstop. System accounts have no row
//! to lock: their entries append a delta.

use std::collections::{HashMap, HashSet};

use cte_ctel_core::ledger::chain::{self, Link};
use cte_ctel_core::ledger::wallets::{self, Applied, Refused, Wallet, WalletState};
use cte_ctel_core::ledger::{in_lock_order, Posting};
use cte_ctel_core::CteError;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, Uuid};
use rust_decimal::Decimal;

use super::ledger::{account_missing_or_currency_not_held, numeric};
use super::{new_id, required, run_cached, spi, stored_decimal, LockWait};

/// A wallet: (account id, currency).
pub type WalletKey = (String, String);

// Rows are locked as the sort emits them (LockRows sits above Sort): bytewise order, the same
// order Rust sorts account ids in.
macro_rules! wallets_lock {
    ($mode:literal) => {
        concat!(
            "SELECT b.account_id, b.currency, b.balance::text, b.reserved::text, b.allow_negative,
                    b.min_balance::text, b.status, b.chain_head,
                    (extract(epoch FROM b.last_entry_at) * 1000000)::bigint, b.monitored
               FROM cte_ctel.cte_balances b
               JOIN unnest($1::text[], $2::text[]) AS w(account_id, currency)
                 ON w.account_id = b.account_id AND w.currency = b.currency
              ORDER BY b.account_id COLLATE \"C\", b.currency COLLATE \"C\"
                FOR NO KEY UPDATE OF b",
            $mode
        )
    };
}
const WALLETS_LOCK: &str = wallets_lock!("");
const WALLETS_LOCK_NOWAIT: &str = wallets_lock!(" NOWAIT");

/// Locks wallet balance rows in the global lock order and reads them exactly; returns those
/// that exist. With `LockWait::Skip`, a wallet another session holds fails the statement at
/// once (55P03) instead of waiting.
pub fn lock_wallets(
    wanted: Vec<WalletKey>,
    wait: LockWait,
) -> Result<HashMap<WalletKey, Wallet>, CteError> {
    lock_wallets_watched(wanted, wait).map(|(wallets, _)| wallets)
}

/// `lock_wallets`, and which of the wallets have a balance monitor (`cte_balances.monitored`).
fn lock_wallets_watched(
    wanted: Vec<WalletKey>,
    wait: LockWait,
) -> Result<(HashMap<WalletKey, Wallet>, HashSet<WalletKey>), CteError> {
    let (accounts, currencies): (Vec<String>, Vec<String>) =
        in_lock_order(wanted).into_iter().unzip();
    if accounts.is_empty() {
        return Ok((HashMap::new(), HashSet::new()));
    }
    let query = match wait {
        LockWait::Wait => WALLETS_LOCK,
        LockWait::Skip => WALLETS_LOCK_NOWAIT,
    };
    let args = [accounts.into(), currencies.into()];
    type Row = (WalletKey, [String; 3], bool, String, Option<Vec<u8>>, i64, bool);
    let rows: Vec<Row> = Spi::connect_mut(|client| {
        let table = run_cached(client, query, &args, true);
        table
            .map(|row| {
                let text =
                    |ordinal| required(spi(row.get::<String>(ordinal), query), query, "text");
                let allow_negative = spi(row.get::<bool>(5), query) == Some(true);
                let head = spi(row.get::<Vec<u8>>(8), query);
                let last_entry_at = spi(row.get::<i64>(9), query).unwrap_or(0);
                let texts = [text(3), text(4), text(6)]; // balance, reserved, min_balance
                let monitored = spi(row.get::<bool>(10), query) == Some(true);
                let key = (text(1), text(2));
                (key, texts, allow_negative, text(7), head, last_entry_at, monitored)
            })
            .collect()
    });
    let monitored: HashSet<WalletKey> =
        rows.iter().filter(|row| row.6).map(|row| row.0.clone()).collect();
    let wallets = rows
        .into_iter()
        .map(|(key, [balance, reserved, floor], allow_negative, status, head, last_entry_at, _)| {
            let exact =
                |text: &str| Decimal::from_str_exact(text).map_err(|_| beyond_decimal(text));
            let state = WalletState::parse(&status);
            assert!(state.is_some(), "a domain keeps account statuses known");
            let wallet = Wallet {
                balance: exact(&balance)?,
                reserved: exact(&reserved)?,
                floor: if allow_negative { None } else { Some(exact(&floor)?) },
                state: state.unwrap_or(WalletState::Closed),
                // No head yet: the chain starts at genesis. A head that is not a link is a
                // corrupt row, never read as genesis (0.3.0 before: it was).
                head: head.map_or(chain::GENESIS, |bytes| {
                    required(chain::from_bytes(&bytes), query, "a chain head of 32 bytes")
                }),
                last_entry_at,
            };
            Ok((key, wallet))
        })
        .collect::<Result<_, CteError>>()?;
    Ok((wallets, monitored))
}

/// A stored figure `Decimal` cannot hold exactly (more than 28 significant digits).
fn beyond_decimal(figure: &str) -> CteError {
    CteError::LimitExceeded {
        what: "significant digits of a wallet's balance",
        value: figure.trim_start_matches('-').replace('.', "").len(),
        limit: 28,
    }
}

/// The error for a core refusal on posting `postings[index]` (or a reservation, with
/// `currency`).
fn refusal(refused: Refused, currency: &str) -> CteError {
    match refused {
        Refused::Funds { account_id, available, amount, .. } => CteError::InsufficientFunds {
            account_id,
            currency: currency.to_string(),
            available: available.to_string(),
            amount: amount.to_string(),
        },
        Refused::Missing { account_id, .. } => {
            account_missing_or_currency_not_held(&account_id, currency)
        }
        Refused::State { account_id, state: WalletState::Frozen, .. } => {
            CteError::AccountFrozen { account_id }
        }
        Refused::State { account_id, .. } => CteError::AccountClosed { account_id },
        Refused::Overflow => CteError::LimitExceeded {
            what: "significant digits of a wallet's balance",
            value: 29,
            limit: 28,
        },
    }
}

// A wallet's reserve is written with its balance: a capture gives its hold back and posts in
// this one update, so a balance monitor never sees the hold given back before the debit.
const BALANCES_WRITE: &str = "
    UPDATE cte_ctel.cte_balances b
       SET balance = w.balance, reserved = w.reserved, chain_head = w.head, last_entry_at = $5
      FROM unnest($1::text[], $2::text[], $3::numeric[], $4::bytea[], $6::numeric[])
           AS w(account_id, currency, balance, head, reserved)
     WHERE b.account_id = w.account_id AND b.currency = w.currency";

// Entries are stamped with the clock read under their wallets' locks, never earlier than a
// wallet's last entry, so that on every wallet they grow with id (a statement that orders by
// time agrees with one that orders by id), and the time is in each entry's hash link.
const ENTRIES_WRITE: &str = "
    WITH entries AS (
        INSERT INTO cte_ctel.cte_entries
               (posting_id, kind, account_id, currency, amount, balance_after, reference,
                transaction_id, lien_id, created_at, link)
        SELECT e.posting_id, e.kind, e.account_id, e.currency, e.amount, e.balance_after,
               e.reference, e.transaction_id, e.lien_id, $11, e.link
          FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::numeric[],
                      $6::numeric[], $7::text[], $8::uuid[], $9::uuid[], $10::bytea[])
                   WITH ORDINALITY AS e(posting_id, kind, account_id, currency, amount,
                                        balance_after, reference, transaction_id, lien_id,
                                        link, n)
         ORDER BY e.n
        RETURNING account_id, currency, amount, balance_after)
    INSERT INTO cte_ctel.cte_system_deltas (account_id, currency, amount)
    SELECT account_id, currency, amount FROM entries WHERE balance_after IS NULL";

/// What made a posting: an event's step, or a lien's capture (its entries say so).
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin {
    pub step: Option<Uuid>,
    pub lien: Option<Uuid>,
}

/// The wallets a set of postings touches (system accounts have none).
fn wallets_of(postings: &[Posting]) -> Vec<WalletKey> {
    postings
        .iter()
        .flat_map(|posting| {
            posting
                .entries
                .iter()
                .filter(|entry| !entry.is_system())
                .map(|entry| (entry.account_id.clone(), posting.currency.clone()))
        })
        .collect()
}

/// Posts `postings` in order, each with its reference, for `origin`; returns their ids, or
/// the index of the posting refused and why (nothing is written then). Funds held by a lien
/// whose `expires_at` has passed count as free: a posting they would stop is retried once
/// after they are expired here.
pub fn post(
    postings: &[Posting],
    references: &[Option<&str>],
    origin: Origin,
    wait: LockWait,
) -> Result<Vec<Uuid>, (usize, CteError)> {
    post_releasing(postings, references, origin, &[], wait)
}

/// `post`, giving back first what `releases` held on wallets the postings touch (a capture:
/// its lien's hold), written in the same update as the balances. A release on a wallet the
/// postings do not touch is written on its own, before them.
pub fn post_releasing(
    postings: &[Posting],
    references: &[Option<&str>],
    origin: Origin,
    releases: &[(WalletKey, Decimal)],
    wait: LockWait,
) -> Result<Vec<Uuid>, (usize, CteError)> {
    assert_eq!(postings.len(), references.len(), "one reference per posting");
    let posted_on = wallets_of(postings);
    for (wallet, amount) in releases.iter().filter(|(wallet, _)| !posted_on.contains(wallet)) {
        change_reserved(wallet, *amount, false, wait).map_err(|error| (0, error))?;
    }
    let mut retried = false;
    loop {
        let mut read = lock_wallets(posted_on.clone(), wait).map_err(|error| (0, error))?;
        for (wallet, amount) in releases {
            if let Some(locked) = read.get_mut(wallet) {
                locked.release(*amount).map_err(|refused| (0, refusal(refused, &wallet.1)))?;
            }
        }
        let kept: HashMap<WalletKey, Kept> = read
            .iter()
            .map(|(key, wallet)| {
                (key.clone(), Kept { head: wallet.head, reserved: wallet.reserved })
            })
            .collect();
        // The entries' time: the clock, but never before a wallet's last entry (a clock stepped
        // back), so that on each wallet time and id grow together.
        let at = read.values().map(|wallet| wallet.last_entry_at).fold(super::clock_us(), i64::max);
        let refused = match wallets::apply(postings, read) {
            Ok(applied) => {
                let origins = vec![origin; postings.len()];
                return Ok(write(postings, references, &origins, &applied, kept, at));
            }
            Err(refused) => refused,
        };
        let index = match &refused {
            Refused::Funds { posting, .. }
            | Refused::Missing { posting, .. }
            | Refused::State { posting, .. } => *posting,
            Refused::Overflow => 0,
        };
        let currency = postings[index].currency.clone();
        if let (Refused::Funds { account_id, .. }, false) = (&refused, retried) {
            retried = true;
            let wallet = (account_id.clone(), currency.clone());
            if super::liens::expire_overdue_on(&wallet).map_err(|error| (index, error))? > 0 {
                continue;
            }
        }
        return Err((index, refusal(refused, &currency)));
    }
}

// A monitored wallet's balance as one item of a bulk call left it, so that its monitors see
// every crossing (the one write of its final balance would show only the last).
const BALANCE_PASSED: &str = "
    UPDATE cte_ctel.cte_balances SET balance = $3 WHERE account_id = $1 AND currency = $2";

/// Independent postings (a bulk call's items) on wallets locked once, in the global lock order:
/// each applied in memory or refused on its own (`apply`), then all written at once (`write`).
pub struct Each {
    wallets: HashMap<WalletKey, Wallet>,
    monitored: HashSet<WalletKey>,
    /// Wallets whose overdue liens were expired already (once per wallet and call).
    expired: HashSet<WalletKey>,
    /// The balances monitored wallets passed through, in order.
    passed: Vec<(WalletKey, Decimal)>,
    wait: LockWait,
}

impl Each {
    /// Locks and reads every wallet the postings touch.
    pub fn lock(postings: &[&Posting], wait: LockWait) -> Result<Each, CteError> {
        let wanted: Vec<WalletKey> = postings
            .iter()
            .flat_map(|posting| wallets_of(std::slice::from_ref(*posting)))
            .collect();
        let (wallets, monitored) = lock_wallets_watched(wanted, wait)?;
        let (expired, passed) = (HashSet::new(), Vec::new());
        Ok(Each { wallets, monitored, expired, passed, wait })
    }

    /// Applies `posting` (item `index`) to the wallets, or refuses it and leaves them as they
    /// were; returns its balance after each entry. Funds held by a lien whose `expires_at` has
    /// passed count as free: a posting they would stop is tried again once they are expired.
    pub fn apply(
        &mut self,
        posting: &Posting,
        index: usize,
    ) -> Result<Vec<Option<Decimal>>, CteError> {
        loop {
            let refused = match wallets::apply_one(posting, index, &mut self.wallets) {
                Ok(after) => {
                    for wallet in wallets_of(std::slice::from_ref(posting)) {
                        if self.monitored.contains(&wallet) {
                            let balance = self.wallets[&wallet].balance;
                            self.passed.push((wallet, balance));
                        }
                    }
                    return Ok(after);
                }
                Err(refused) => refused,
            };
            if let Refused::Funds { account_id, .. } = &refused {
                let wallet = (account_id.clone(), posting.currency.clone());
                if !self.expired.insert(wallet.clone()) {
                    return Err(refusal(refused, &posting.currency));
                }
                // Expiring writes the wallet's reserve, which its monitors see against its
                // stored balance: the balances it passed so far are written first, in order.
                let (now, later): (Vec<_>, Vec<_>) =
                    self.passed.drain(..).partition(|(key, _)| *key == wallet);
                self.passed = later;
                write_passed(&now);
                if super::liens::expire_overdue_on(&wallet)? > 0 {
                    // Expiring gave back what the liens reserved; the balance read here stays
                    // (the items before this one moved it, unwritten yet).
                    let read = lock_wallets(vec![wallet.clone()], self.wait)?;
                    let (Some(fresh), Some(held)) =
                        (read.get(&wallet), self.wallets.get_mut(&wallet))
                    else {
                        panic!("a wallet locked for a bulk call is read again");
                    };
                    assert!(fresh.reserved <= held.reserved, "expiring liens reserves less");
                    held.reserved = fresh.reserved;
                    continue;
                }
            }
            return Err(refusal(refused, &posting.currency));
        }
    }

    /// Writes the postings `apply` accepted (in the order applied, each with its balances after,
    /// reference and origin): the wallets' final balances and chain heads, then every entry.
    /// Returns the postings' ids.
    pub fn write(
        self,
        postings: &[&Posting],
        references: &[Option<&str>],
        origins: &[Origin],
        balances_after: Vec<Vec<Option<Decimal>>>,
    ) -> Vec<Uuid> {
        assert_eq!(postings.len(), balances_after.len(), "balances after for each posting");
        if postings.is_empty() {
            return Vec::new();
        }
        let touched: Vec<WalletKey> = postings
            .iter()
            .flat_map(|posting| wallets_of(std::slice::from_ref(*posting)))
            .collect();
        let final_balances: Vec<(WalletKey, Decimal)> = in_lock_order(touched)
            .into_iter()
            .map(|key| {
                let balance = self.wallets[&key].balance;
                (key, balance)
            })
            .collect();
        let applied = Applied { balances_after, final_balances };
        let kept: HashMap<WalletKey, Kept> = self
            .wallets
            .iter()
            .map(|(key, wallet)| {
                (key.clone(), Kept { head: wallet.head, reserved: wallet.reserved })
            })
            .collect();
        let at = self
            .wallets
            .values()
            .map(|wallet| wallet.last_entry_at)
            .fold(super::clock_us(), i64::max);
        write_passed(&self.passed);
        write(postings, references, origins, &applied, kept, at)
    }
}

/// Writes the balances monitored wallets passed through, in order (each crossing is told).
fn write_passed(passed: &[(WalletKey, Decimal)]) {
    if passed.is_empty() {
        return;
    }
    Spi::connect_mut(|client| {
        for ((account, currency), balance) in passed {
            let balance = numeric(&balance.to_string());
            let args = [account.as_str().into(), currency.as_str().into(), balance.into()];
            run_cached(client, BALANCE_PASSED, &args, true);
        }
    });
}

/// What `write` keeps of a locked wallet besides the postings' results: its chain's head
/// (advanced as entries are linked) and its reserve (lowered by a capture's release).
struct Kept {
    head: Link,
    reserved: Decimal,
}

/// The journal rows of applied postings, column by column as `ENTRIES_WRITE` takes them.
#[derive(Default)]
struct EntryRows<'p> {
    posting_ids: Vec<Uuid>,
    kinds: Vec<&'p str>,
    accounts: Vec<&'p str>,
    currencies: Vec<&'p str>,
    amounts: Vec<AnyNumeric>,
    after: Vec<Option<AnyNumeric>>,
    refs: Vec<Option<&'p str>>,
    steps: Vec<Option<Uuid>>,
    liens: Vec<Option<Uuid>>,
    links: Vec<Option<Vec<u8>>>,
}

/// Builds one posting's journal rows: each entry with its amount and, for a wallet entry, its
/// balance after and its link in the wallet's chain (advancing the chain's head in `kept`).
fn entry_rows<'p>(
    rows: &mut EntryRows<'p>,
    (id, posting): (Uuid, &'p Posting),
    reference: Option<&'p str>,
    origin: Origin,
    balances_after: &[Option<Decimal>],
    kept: &mut HashMap<WalletKey, Kept>,
    at: i64,
) {
    let amount_texts: Vec<String> =
        posting.entries.iter().map(|entry| chain::decimal_text(&entry.amount)).collect();
    let (step, lien) = (origin.step.map(|id| id.to_string()), origin.lien.map(|id| id.to_string()));
    let entry_texts: Vec<chain::EntryText<'_>> = posting
        .entries
        .iter()
        .zip(&amount_texts)
        .map(|(entry, amount)| chain::EntryText {
            account_id: &entry.account_id,
            kind: posting.kind.as_str(),
            currency: &posting.currency,
            amount,
            reference,
            transaction_id: step.as_deref(),
            lien_id: lien.as_deref(),
            created_at_us: at,
        })
        .collect();
    let canonical = chain::canonical(&id.to_string(), &entry_texts);
    assert_eq!(balances_after.len(), posting.entries.len(), "a balance after per entry");
    for ((entry, amount), balance_after) in
        posting.entries.iter().zip(&amount_texts).zip(balances_after)
    {
        // Each figure is printed once: the same text is hashed and stored.
        let balance_text = balance_after.map(|balance| chain::decimal_text(&balance));
        let link = balance_text.as_deref().map(|balance| {
            let key = (entry.account_id.clone(), posting.currency.clone());
            let wallet = kept.get_mut(&key);
            assert!(wallet.is_some(), "a wallet entry's wallet was locked and read");
            let previous = wallet.as_ref().map_or(chain::GENESIS, |wallet| wallet.head);
            let link = chain::link(&previous, &canonical, &entry.account_id, balance);
            if let Some(wallet) = wallet {
                wallet.head = link;
            }
            link.to_vec()
        });
        rows.posting_ids.push(id);
        rows.kinds.push(posting.kind.as_str());
        rows.accounts.push(entry.account_id.as_str());
        rows.currencies.push(posting.currency.as_str());
        rows.amounts.push(numeric(amount));
        rows.after.push(balance_text.as_deref().map(numeric));
        rows.refs.push(reference);
        rows.steps.push(origin.step);
        rows.liens.push(origin.lien);
        rows.links.push(link);
    }
}

/// Writes applied postings: the wallets' new balances, reserves and chain heads, then every
/// entry (a wallet entry with its link) and system delta.
fn write<P: std::borrow::Borrow<Posting>>(
    postings: &[P],
    references: &[Option<&str>],
    origins: &[Origin],
    applied: &Applied,
    mut kept: HashMap<WalletKey, Kept>,
    at: i64,
) -> Vec<Uuid> {
    assert_eq!(postings.len(), origins.len(), "one origin per posting");
    let ids: Vec<Uuid> = postings.iter().map(|_| new_id()).collect();
    let mut rows = EntryRows::default();
    for (index, posting) in postings.iter().enumerate() {
        let balances_after = &applied.balances_after[index];
        let posting = (ids[index], posting.borrow());
        let reference = references[index];
        entry_rows(&mut rows, posting, reference, origins[index], balances_after, &mut kept, at);
    }
    let at = super::timestamp_us(at);
    let finals = &applied.final_balances;
    let balance_args = (!finals.is_empty()).then(|| balance_args(finals, &kept, at));
    let entry_args = [
        rows.posting_ids.into(),
        rows.kinds.into(),
        rows.accounts.into(),
        rows.currencies.into(),
        rows.amounts.into(),
        rows.after.into(),
        rows.refs.into(),
        rows.steps.into(),
        rows.liens.into(),
        rows.links.into(),
        at.into(),
    ];
    Spi::connect_mut(|client| {
        if let Some(balance_args) = &balance_args {
            run_cached(client, BALANCES_WRITE, balance_args, true);
        }
        run_cached(client, ENTRIES_WRITE, &entry_args, true);
    });
    ids
}

/// `BALANCES_WRITE`'s arguments: each written wallet's final balance, chain head and reserve.
fn balance_args<'a>(
    finals: &[(WalletKey, Decimal)],
    kept: &HashMap<WalletKey, Kept>,
    at: TimestampWithTimeZone,
) -> [DatumWithOid<'a>; 6] {
    let wallet_accounts: Vec<&str> =
        finals.iter().map(|((account, _), _)| account.as_str()).collect();
    let wallet_currencies: Vec<&str> =
        finals.iter().map(|((_, currency), _)| currency.as_str()).collect();
    let balances: Vec<AnyNumeric> =
        finals.iter().map(|(_, balance)| numeric(&balance.to_string())).collect();
    let written: Vec<&Kept> = finals
        .iter()
        .filter_map(|(key, _)| {
            let wallet = kept.get(key);
            assert!(wallet.is_some(), "every wallet written was locked and read");
            wallet
        })
        .collect();
    let final_heads: Vec<Vec<u8>> = written.iter().map(|wallet| wallet.head.to_vec()).collect();
    let final_reserved: Vec<AnyNumeric> =
        written.iter().map(|wallet| numeric(&wallet.reserved.to_string())).collect();
    [
        wallet_accounts.into(),
        wallet_currencies.into(),
        balances.into(),
        final_heads.into(),
        at.into(),
        final_reserved.into(),
    ]
}

const RESERVED_WRITE: &str = "
    UPDATE cte_ctel.cte_balances SET reserved = $3 WHERE account_id = $1 AND currency = $2";

/// Reserves `amount` on a wallet for a lien (`reserve` true), or gives it back; refused if the
/// wallet cannot spare it.
pub fn change_reserved(
    wallet: &WalletKey,
    amount: Decimal,
    reserve: bool,
    wait: LockWait,
) -> Result<(), CteError> {
    let mut retried = false;
    loop {
        let mut read = lock_wallets(vec![wallet.clone()], wait)?;
        let Some(locked) = read.get_mut(wallet) else {
            return Err(account_missing_or_currency_not_held(&wallet.0, &wallet.1));
        };
        let changed = if reserve { locked.reserve(amount) } else { locked.release(amount) };
        match changed {
            Ok(()) => {
                let args = [
                    wallet.0.as_str().into(),
                    wallet.1.as_str().into(),
                    numeric(&locked.reserved.to_string()).into(),
                ];
                Spi::connect_mut(|client| {
                    run_cached(client, RESERVED_WRITE, &args, true);
                });
                return Ok(());
            }
            // Funds held by overdue liens count as free: expire them and try once more.
            Err(Refused::Funds { .. })
                if !retried && super::liens::expire_overdue_on(wallet)? > 0 =>
            {
                retried = true;
            }
            Err(refused) => {
                let refused = match refused {
                    Refused::Funds { available, amount, .. } => Refused::Funds {
                        posting: 0,
                        account_id: wallet.0.clone(),
                        available,
                        amount,
                    },
                    Refused::State { state, .. } => {
                        Refused::State { posting: 0, account_id: wallet.0.clone(), state }
                    }
                    other => other,
                };
                return Err(refusal(refused, &wallet.1));
            }
        }
    }
}

const POSTINGS_OF_STEP: &str = "
    SELECT currency, array_agg(account_id ORDER BY id), array_agg(amount::text ORDER BY id),
           min(reference)
      FROM cte_ctel.cte_entries
     WHERE transaction_id = $1 AND kind <> 'reversal'
     GROUP BY posting_id, currency
     ORDER BY min(id) DESC";

/// Posts the reversal of every posting a step made, newest first, each with the reference of
/// the posting it reverses. Returns the reversal ids.
pub fn reverse_postings_of(step: Uuid, wait: LockWait) -> Result<Vec<Uuid>, CteError> {
    type Recorded = (String, Vec<String>, Vec<String>, Option<String>);
    let recorded: Vec<Recorded> = Spi::connect_mut(|client| {
        let table = run_cached(client, POSTINGS_OF_STEP, &[step.into()], false);
        table
            .map(|row| {
                (
                    required(spi(row.get(1), POSTINGS_OF_STEP), POSTINGS_OF_STEP, "currency"),
                    required(spi(row.get(2), POSTINGS_OF_STEP), POSTINGS_OF_STEP, "accounts"),
                    required(spi(row.get(3), POSTINGS_OF_STEP), POSTINGS_OF_STEP, "amounts"),
                    spi(row.get::<String>(4), POSTINGS_OF_STEP),
                )
            })
            .collect()
    });
    let reversals: Vec<Posting> = recorded
        .iter()
        .map(|(currency, accounts, amounts, _)| {
            Posting::recorded(currency.clone(), accounts, amounts).reversal()
        })
        .collect();
    let references: Vec<Option<&str>> =
        recorded.iter().map(|(_, _, _, reference)| reference.as_deref()).collect();
    let origin = Origin { step: Some(step), lien: None };
    post(&reversals, &references, origin, wait).map_err(|(_, error)| error)
}

// A completed event's own postings (not its compensations' nor its refunds'), oldest first.
const POSTINGS_OF_EVENT: &str = "
    SELECT j.currency, array_agg(j.account_id ORDER BY j.id), array_agg(j.amount::text ORDER BY j.id)
      FROM cte_ctel.cte_entries j JOIN cte_ctel.cte_transactions t ON t.id = j.transaction_id
     WHERE t.event_id = $1 AND j.kind NOT IN ('reversal', 'refund')
     GROUP BY j.posting_id, j.currency
     ORDER BY min(j.id)";

/// The postings an event made, as recorded, oldest first.
pub fn postings_of_event(event_id: Uuid) -> Vec<Posting> {
    Spi::connect_mut(|client| {
        let table = run_cached(client, POSTINGS_OF_EVENT, &[event_id.into()], false);
        table
            .map(|row| {
                let get = |ordinal, what| {
                    let value = spi(row.get::<Vec<String>>(ordinal), POSTINGS_OF_EVENT);
                    required(value, POSTINGS_OF_EVENT, what)
                };
                let currency = spi(row.get::<String>(1), POSTINGS_OF_EVENT);
                let currency = required(currency, POSTINGS_OF_EVENT, "currency");
                Posting::recorded(currency, &get(2, "accounts"), &get(3, "amounts"))
            })
            .collect()
    })
}

// What the refunds of an event have given back so far: the sum of their credits.
const REFUNDED: &str = "
    SELECT coalesce(sum(j.amount), 0)::text
      FROM cte_ctel.cte_events e
      JOIN cte_ctel.cte_transactions t ON t.event_id = e.id
      JOIN cte_ctel.cte_entries j ON j.transaction_id = t.id
     WHERE e.refund_of = $1 AND e.status = 'completed' AND j.kind = 'refund' AND j.amount > 0";

// What the refunds of an event moved, per account (payees negative, payers positive).
const REFUNDED_BY_ACCOUNT: &str = "
    SELECT j.account_id, sum(j.amount)::text
      FROM cte_ctel.cte_events e
      JOIN cte_ctel.cte_transactions t ON t.event_id = e.id
      JOIN cte_ctel.cte_entries j ON j.transaction_id = t.id
     WHERE e.refund_of = $1 AND e.status = 'completed' AND j.kind = 'refund'
     GROUP BY j.account_id ORDER BY j.account_id";

/// What the refunds of `event_id` moved so far, per account.
pub fn refunded_by_account(event_id: Uuid) -> Vec<(String, Decimal)> {
    Spi::connect(|client| {
        let args = [event_id.into()];
        let table = spi(client.select(REFUNDED_BY_ACCOUNT, None, &args), REFUNDED_BY_ACCOUNT);
        table
            .map(|row| {
                let account = spi(row.get::<String>(1), REFUNDED_BY_ACCOUNT);
                let sum = spi(row.get::<String>(2), REFUNDED_BY_ACCOUNT);
                let sum = required(sum, REFUNDED_BY_ACCOUNT, "sum");
                (
                    required(account, REFUNDED_BY_ACCOUNT, "account"),
                    stored_decimal(&sum, REFUNDED_BY_ACCOUNT),
                )
            })
            .collect()
    })
}

// A capture of a lien made by ctel_capture_lien: its lien and its two entries (the lien's
// account, then the destination).
const CAPTURE_POSTING: &str = "
    SELECT min(j.lien_id::text)::uuid, min(j.currency),
           array_agg(j.account_id ORDER BY j.id), array_agg(j.amount::text ORDER BY j.id)
      FROM cte_ctel.cte_entries j
     WHERE j.posting_id = $1 AND j.lien_id IS NOT NULL AND j.transaction_id IS NULL
     HAVING count(*) = 2";

/// The capture `posting_id` names, if it is one: its lien and its posting.
pub fn capture_posting(posting_id: Uuid) -> Option<(Uuid, Posting)> {
    Spi::connect(|client| {
        let table =
            spi(client.select(CAPTURE_POSTING, None, &[posting_id.into()]), CAPTURE_POSTING);
        if table.is_empty() {
            return None;
        }
        let row = table.first();
        let lien = spi(row.get::<Uuid>(1), CAPTURE_POSTING)?;
        let currency = required(spi(row.get(2), CAPTURE_POSTING), CAPTURE_POSTING, "currency");
        let accounts: Vec<String> =
            required(spi(row.get(3), CAPTURE_POSTING), CAPTURE_POSTING, "accounts");
        let amounts: Vec<String> =
            required(spi(row.get(4), CAPTURE_POSTING), CAPTURE_POSTING, "amounts");
        Some((lien, Posting::recorded(currency, &accounts, &amounts)))
    })
}

// What the refunds of a capture (refund steps naming it) have returned: their credits.
const REFUNDED_OF_CAPTURE: &str = "
    SELECT coalesce(sum(j.amount), 0)::text
      FROM cte_ctel.cte_transactions t
      JOIN cte_ctel.cte_entries j ON j.transaction_id = t.id
     WHERE t.type = 'wallet.refund' AND t.status = 'completed'
       AND t.payload ->> 'capture_id' = $1::text AND j.amount > 0";

/// What refunds of the capture `posting_id` have returned so far.
pub fn refunded_of_capture(posting_id: Uuid) -> Decimal {
    refunded_sum(REFUNDED_OF_CAPTURE, posting_id)
}

/// A refunded sum (`coalesce(sum, 0)::text`: one row, never NULL), read exactly. 0.3.0 before:
/// a sum it could not read was 0.
fn refunded_sum(query: &'static str, id: Uuid) -> Decimal {
    let sum: Option<String> = super::select_one(query, &[id.into()]);
    stored_decimal(&required(sum, query, "the sum"), query)
}

const REFUND_CAPTURE_OF: &str = "
    SELECT (t.payload ->> 'capture_id')::uuid FROM cte_ctel.cte_transactions t
     WHERE t.event_id = $1 AND t.type = 'wallet.refund'";

/// The capture a refund event refunds, if it refunds one.
pub fn refund_of_capture(refund_event: Uuid) -> Option<Uuid> {
    super::select_one(REFUND_CAPTURE_OF, &[refund_event.into()])
}

/// What refunds of `event_id` have returned so far (the sum of their credits).
pub fn refunded_of(event_id: Uuid) -> Decimal {
    refunded_sum(REFUNDED, event_id)
}
