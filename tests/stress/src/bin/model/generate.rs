//! The seeded generator of calls, biased towards trouble: replays of earlier calls (the same
//! key and request, amounts sometimes spelled differently), conflicting reuses of a key,
//! partial and final captures, captures and releases of liens that have ended, refunds of
//! escrow checkouts (escrow is empty after one: only a newest-first refund can undo it),
//! partial refunds, over-refunds, amounts beyond what a wallet has, bad amounts.
//!
//! It reads the model only to aim (which liens are active, what is left to refund); it never
//! decides what an answer should be.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::calls::{Call, Checkout};
use super::ledger::{minus, plus, Event, EventKind, Lien, LienStatus, Model, GHOST, WALLETS};
use super::random::Random;

/// Whether `cte_start_event` is sent again to refund events too. Off while the extension
/// answers that with `payload_invalid` (L0027: "a wallet.refund step is made only by
/// cte_reverse_event") instead of `transition_not_allowed` (L0023), as for every other event
/// that already ran: the model found it (seed 1); turn it on once that is fixed.
const START_AGAIN_REFUNDS: bool = true;

/// A cent, the smallest USD amount.
const CENT: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

pub struct Generator {
    random: Random,
    /// Every call made so far: what replays and conflicts reuse.
    history: Vec<Call>,
    /// Numbers the keys: every new key is new.
    keys: u64,
}

/// Cents of an amount, for picking amounts below it.
fn cents(amount: Decimal) -> i64 {
    amount.checked_mul(Decimal::from(100)).and_then(|cents| cents.trunc().to_i64()).unwrap_or(0)
}

/// An amount's canonical text: two decimals.
fn text(amount: Decimal) -> String {
    let mut amount = amount;
    amount.rescale(2);
    amount.to_string()
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator { random: Random::new(seed), history: Vec::new(), keys: 0 }
    }

    pub fn random(&mut self) -> &mut Random {
        &mut self.random
    }

    fn key(&mut self, prefix: &str) -> String {
        self.keys += 1;
        format!("{prefix}-{}", self.keys)
    }

    fn wallet(&mut self) -> String {
        self.random.pick(&WALLETS).map_or(WALLETS[0], |wallet| wallet).to_string()
    }

    fn wallet_other_than(&mut self, taken: &[&str]) -> String {
        let free: Vec<&str> = WALLETS.iter().copied().filter(|w| !taken.contains(w)).collect();
        self.random.pick(&free).map_or(WALLETS[0], |wallet| wallet).to_string()
    }

    /// 0.01 up to `limit` (at least 0.01).
    fn up_to(&mut self, limit: Decimal) -> Decimal {
        let most = cents(limit).max(1);
        Decimal::new(self.random.between(1, most), 2)
    }

    /// An amount to spend from `available`: mostly within it, sometimes all of it, sometimes
    /// more (insufficient funds).
    fn spend(&mut self, available: Decimal) -> Decimal {
        let roll = self.random.below(100);
        if roll < 70 || available < CENT {
            let half = available.checked_div(Decimal::TWO).unwrap_or_default();
            return self.up_to(half.max(Decimal::ONE));
        }
        if roll < 85 {
            return available;
        }
        plus(available, self.up_to(Decimal::from(50)))
    }

    /// A call for the one-at-a-time phase; it is remembered for later replays.
    pub fn next(&mut self, model: &Model) -> Call {
        let roll = self.random.below(100);
        let call = match roll {
            0..=13 => self.replay(),
            14..=23 => self.conflict(model),
            24..=30 => Some(self.transfer(model)),
            31..=35 => Some(self.bulk(model)),
            36..=40 => Some(self.deposit()),
            41..=49 => Some(self.create_lien(model)),
            50..=61 => self.capture(model),
            62..=67 => self.release(model),
            68..=77 => Some(self.checkout(model)),
            78..=91 => self.refund(model),
            92..=94 => Some(self.bad_amount(model)),
            95..=96 => self.start_again(model),
            _ => Some(self.unknown_account(model)),
        };
        // A call refused for its input alone (a bad amount, an unknown account) is not sent
        // again under its key with other input: which refusal wins then, the input's or the
        // key's, is not in the contract.
        let bad_input = roll == 92 || roll == 93 || roll == 94 || roll >= 97;
        match call {
            Some(call) if bad_input => call,
            Some(call) => {
                self.history.push(call.clone());
                call
            }
            None => {
                let call = self.transfer(model);
                self.history.push(call.clone());
                call
            }
        }
    }

    /// Money in: a call that every run starts with, so that wallets have something to move.
    pub fn funding(&mut self, account: &str) -> Call {
        let call = Call::Deposit {
            account: account.to_string(),
            amount: "300.00".to_string(),
            reference: self.key("fund"),
        };
        self.history.push(call.clone());
        call
    }

    fn transfer(&mut self, model: &Model) -> Call {
        let source = self.wallet();
        let destination = self.wallet_other_than(&[&source]);
        let amount = text(self.spend(model.available(&source)));
        Call::Transfer { source, destination, amount, reference: self.key("t") }
    }

    /// A `cte_transfers` call of 2 to 6 items: new transfers (some spending the same wallet),
    /// earlier transfers sent again (the same request or another under its reference), and
    /// an item repeating an earlier item of the same call.
    fn bulk(&mut self, model: &Model) -> Call {
        let earlier: Vec<Call> = self
            .history
            .iter()
            .filter(|call| matches!(call, Call::Transfer { .. }))
            .cloned()
            .collect();
        let count = 2 + self.random.below(5);
        let mut items: Vec<Call> = Vec::new();
        for _ in 0..count {
            let roll = self.random.below(100);
            let item = match roll {
                0..=19 => self.random.pick(&earlier).cloned(),
                20..=29 => self.random.pick(&earlier).cloned().map(|call| variant(&call, 1)),
                30..=44 => self.random.pick(&items).cloned(),
                45..=54 => self.random.pick(&items).cloned().map(|call| variant(&call, 2)),
                _ => None,
            };
            items.push(item.unwrap_or_else(|| self.transfer(model)));
        }
        Call::Transfers { items }
    }

    fn deposit(&mut self) -> Call {
        let account = self.wallet();
        let amount = text(Decimal::new(self.random.between(2_000, 20_000), 2));
        Call::Deposit { account, amount, reference: self.key("d") }
    }

    fn create_lien(&mut self, model: &Model) -> Call {
        let account = self.wallet();
        let amount = text(self.spend(model.available(&account)));
        Call::CreateLien { account, amount, key: self.key("l") }
    }

    /// A capture of a lien, mostly an active one: partial and not final, partial and final,
    /// exactly what it holds, all of it (NULL), or more than it holds.
    fn capture(&mut self, model: &Model) -> Option<Call> {
        let liens = model.liens_made();
        let active: Vec<&String> = liens
            .iter()
            .filter(|(_, lien)| lien.status == LienStatus::Active)
            .map(|(id, _)| *id)
            .collect();
        let all: Vec<&String> = liens.iter().map(|(id, _)| *id).collect();
        let pool = if self.random.chance(85) && !active.is_empty() { active } else { all };
        let lien_id = (*self.random.pick(&pool)?).clone();
        let lien = model.liens.get(&lien_id)?;
        let destination = self.wallet_other_than(&[&lien.account]);
        let held = lien.outstanding();
        let roll = self.random.below(100);
        let (amount, last) = match roll {
            0..=44 => (Some(self.up_to(minus(held, CENT))), false),
            45..=64 => (Some(self.up_to(held)), true),
            65..=74 => (Some(held), self.random.chance(50)),
            75..=84 => (None, self.random.chance(50)),
            _ => (Some(plus(held, self.up_to(Decimal::TEN))), self.random.chance(50)),
        };
        let amount = amount.map(|amount| text(amount.max(CENT)));
        let reference = self.key("c");
        Some(Call::Capture { lien: lien_id, destination, amount, reference, last })
    }

    /// A release of a lien: mostly an active one, else any (already released: sent again;
    /// captured: refused).
    fn release(&mut self, model: &Model) -> Option<Call> {
        let liens = model.liens_made();
        let active: Vec<&String> = liens
            .iter()
            .filter(|(_, lien)| lien.status == LienStatus::Active)
            .map(|(id, _)| *id)
            .collect();
        let all: Vec<&String> = liens.iter().map(|(id, _)| *id).collect();
        let pool = if self.random.chance(60) && !active.is_empty() { active } else { all };
        let lien = (*self.random.pick(&pool)?).clone();
        Some(Call::Release { lien })
    }

    fn checkout(&mut self, model: &Model) -> Call {
        let buyer = self.wallet();
        let seller = self.wallet_other_than(&[&buyer]);
        let market = self.wallet_other_than(&[&buyer, &seller]);
        let available = model.available(&buyer);
        let price = if self.random.chance(80) {
            self.up_to(available).max(Decimal::TWO)
        } else {
            plus(available, Decimal::TEN)
        };
        let fee_most = price.checked_div(Decimal::from(5)).unwrap_or(CENT);
        let fee = self.up_to(fee_most);
        let key = self.key("e");
        Call::Checkout(Checkout { key, buyer, seller, market, price: text(price), fee: text(fee) })
    }

    fn start_again(&mut self, model: &Model) -> Option<Call> {
        let events = model
            .events_made()
            .into_iter()
            .filter(|(_, event)| START_AGAIN_REFUNDS || !matches!(event.kind, EventKind::Refund));
        let events: Vec<&String> = events.map(|(id, _)| id).collect();
        let event = (*self.random.pick(&events)?).clone();
        Some(Call::StartAgain { event })
    }

    /// A deposit to, or a transfer to, an account that does not exist. The transfer's source
    /// can pay: which of two refusals wins is not in the contract, so none is asked for.
    fn unknown_account(&mut self, model: &Model) -> Call {
        let reference = self.key("u");
        let source = self.wallet();
        if self.random.chance(50) || model.available(&source) < CENT {
            return Call::Deposit { account: GHOST.into(), amount: "5.00".into(), reference };
        }
        Call::Transfer { source, destination: GHOST.into(), amount: "0.01".into(), reference }
    }

    /// A refusal for the amount alone (zero, negative, three decimals), under a new key.
    fn bad_amount(&mut self, model: &Model) -> Call {
        let amount = self.random.pick(&["0", "0.00", "-5.00", "1.001", "12.345"]);
        let amount = amount.map_or("0", |amount| amount).to_string();
        match self.random.below(4) {
            0 => Call::Deposit { account: self.wallet(), amount, reference: self.key("d") },
            1 => Call::CreateLien { account: self.wallet(), amount, key: self.key("l") },
            2 => {
                let liens = model.liens_made();
                let active = liens.into_iter().find(|(_, lien)| lien.status == LienStatus::Active);
                match active {
                    Some((lien, held)) => Call::Capture {
                        lien: lien.clone(),
                        destination: self.wallet_other_than(&[&held.account]),
                        amount: Some(amount),
                        reference: self.key("c"),
                        last: false,
                    },
                    None => {
                        Call::Deposit { account: self.wallet(), amount, reference: self.key("d") }
                    }
                }
            }
            _ => {
                let source = self.wallet();
                let destination = self.wallet_other_than(&[&source]);
                Call::Transfer { source, destination, amount, reference: self.key("t") }
            }
        }
    }

    /// A refund: a checkout in full (newest first through escrow; again: nothing left), a
    /// one-posting event in part, exactly, in full or beyond what is left, an event that
    /// cannot be refunded (compensated, or itself a refund), a checkout in part.
    fn refund(&mut self, model: &Model) -> Option<Call> {
        let of = |wanted: fn(&EventKind, bool) -> bool| -> Vec<String> {
            let events = model.events_made().into_iter();
            let events = events.filter(|(_, e)| wanted(&e.kind, e.completed));
            events.map(|(id, _)| id.clone()).collect()
        };
        let checkouts = of(|kind, done| done && matches!(kind, EventKind::Checkout { .. }));
        let postings = of(|kind, done| done && matches!(kind, EventKind::Posting { .. }));
        let unrefundable = of(|kind, done| !done || *kind == EventKind::Refund);
        let reference = self.key("r");
        // (events to pick from, the amount asked; None for a one-posting event: one of its
        // amounts, picked by `refund_amount`)
        let (pool, part) = match self.random.below(100) {
            0..=34 if !checkouts.is_empty() => (checkouts, Some(None)),
            70..=79 if !unrefundable.is_empty() => (unrefundable, Some(None)),
            80..=89 if !checkouts.is_empty() => (checkouts, Some(Some("1.00".to_string()))),
            _ => (postings, None),
        };
        let event = self.random.pick(&pool)?.clone();
        let amount = match part {
            Some(amount) => amount,
            None => self.refund_amount(model, &event),
        };
        Some(Call::Refund { event, amount, reference })
    }

    fn refund_amount(&mut self, model: &Model, event: &str) -> Option<String> {
        let (moved, refunded) = match model.events.get(event) {
            Some(e) => match &e.kind {
                EventKind::Posting { amount, .. } => (*amount, e.refunded),
                EventKind::Checkout { .. } | EventKind::Refund => (Decimal::ONE, Decimal::ZERO),
            },
            None => (Decimal::ONE, Decimal::ZERO),
        };
        let left = minus(moved, refunded);
        match self.random.below(100) {
            0..=34 => Some(text(self.up_to(minus(left, CENT)))),
            35..=54 => Some(text(left.max(CENT))),
            55..=69 => None,
            70..=84 => Some(text(plus(left, CENT))),
            _ => Some(text(moved)),
        }
    }

    /// An earlier call sent again, its amounts sometimes spelled another way (`7.5`, not
    /// `7.50`). Checkouts keep their spelling: their amounts are in the event's metadata.
    fn replay(&mut self) -> Option<Call> {
        let call = self.random.pick(&self.history)?.clone();
        if !self.random.chance(50) {
            return Some(call);
        }
        let respell = |amount: &str| {
            Decimal::from_str_exact(amount)
                .map_or(amount.to_string(), |d| d.normalize().to_string())
        };
        Some(match call {
            Call::Deposit { account, amount, reference } => {
                Call::Deposit { account, amount: respell(&amount), reference }
            }
            Call::Transfer { source, destination, amount, reference } => {
                Call::Transfer { source, destination, amount: respell(&amount), reference }
            }
            Call::CreateLien { account, amount, key } => {
                Call::CreateLien { account, amount: respell(&amount), key }
            }
            Call::Capture { lien, destination, amount, reference, last } => {
                let amount = amount.as_deref().map(respell);
                Call::Capture { lien, destination, amount, reference, last }
            }
            Call::Refund { event, amount, reference } => {
                Call::Refund { event, amount: amount.as_deref().map(respell), reference }
            }
            other @ (Call::Release { .. }
            | Call::Checkout(_)
            | Call::StartAgain { .. }
            | Call::Transfers { .. }) => other,
        })
    }

    /// An earlier call's key with another request: another amount, destination, account,
    /// `final`, event, or checkout.
    fn conflict(&mut self, model: &Model) -> Option<Call> {
        let keyed: Vec<Call> = self
            .history
            .iter()
            .filter(|call| !matches!(call, Call::Release { .. } | Call::StartAgain { .. }))
            .cloned()
            .collect();
        let call = self.random.pick(&keyed)?.clone();
        let flip = self.random.chance(50);
        Some(match call {
            Call::Deposit { account, amount, reference } => {
                Call::Deposit { account, amount: bump(&amount, Decimal::ONE), reference }
            }
            Call::Transfer { source, destination, amount, reference } if flip => {
                let destination = self.wallet_other_than(&[&source, &destination]);
                Call::Transfer { source, destination, amount, reference }
            }
            Call::Transfer { source, destination, amount, reference } => {
                Call::Transfer { source, destination, amount: bump(&amount, CENT), reference }
            }
            Call::CreateLien { account, amount, key } if flip => {
                Call::CreateLien { account: self.wallet_other_than(&[&account]), amount, key }
            }
            Call::CreateLien { account, amount, key } => {
                Call::CreateLien { account, amount: bump(&amount, CENT), key }
            }
            Call::Capture { lien, destination, amount, reference, last } => {
                self.capture_conflict(model, (lien, destination, amount, last), reference)
            }
            Call::Refund { event, amount, reference } if self.random.chance(25) => {
                // The reference of a refund of another event (refund references are unique
                // among all refunds).
                let events = model.events_made().into_iter().map(|(id, _)| id);
                let events: Vec<&String> = events.filter(|id| **id != event).collect();
                let event = self.random.pick(&events).map_or(event.clone(), |id| (*id).clone());
                Call::Refund { event, amount, reference }
            }
            Call::Refund { event, amount, reference } => {
                let amount = match amount {
                    None => Some("0.01".to_string()),
                    Some(_) if flip => None,
                    Some(amount) => Some(bump(&amount, CENT)),
                };
                Call::Refund { event, amount, reference }
            }
            Call::Checkout(mut checkout) => {
                let taken = [checkout.buyer.as_str(), &checkout.seller, &checkout.market];
                checkout.market = self.wallet_other_than(&taken);
                Call::Checkout(checkout)
            }
            // One item under its reference asks otherwise; the others are sent again.
            Call::Transfers { mut items } => {
                if let Some(first) = items.first_mut() {
                    *first = variant(first, 3);
                }
                Call::Transfers { items }
            }
            other @ (Call::Release { .. } | Call::StartAgain { .. }) => other,
        })
    }

    fn capture_conflict(
        &mut self,
        model: &Model,
        (lien, destination, amount, last): (String, String, Option<String>, bool),
        reference: String,
    ) -> Call {
        let account = model.liens.get(&lien).map_or(String::new(), |lien| lien.account.clone());
        match self.random.below(4) {
            // The same reference on another lien: not a conflict, a reference is unique per
            // lien (SPEC §9).
            3 => {
                let others = model.liens_made().into_iter().map(|(id, _)| id);
                let others: Vec<&String> = others.filter(|id| **id != lien).collect();
                let lien = self.random.pick(&others).map_or(lien.clone(), |id| (*id).clone());
                let account = model.liens.get(&lien).map_or(account, |held| held.account.clone());
                let destination = self.wallet_other_than(&[&account]);
                Call::Capture { lien, destination, amount, reference, last }
            }
            0 => {
                let amount = Some(amount.map_or("0.01".to_string(), |a| bump(&a, CENT)));
                Call::Capture { lien, destination, amount, reference, last }
            }
            1 => {
                let destination = self.wallet_other_than(&[&account, &destination]);
                Call::Capture { lien, destination, amount, reference, last }
            }
            _ => Call::Capture { lien, destination, amount, reference, last: !last },
        }
    }

    /// The same call for every thread of a race, or (a conflict race) one key with a
    /// different amount per thread.
    pub fn race(&mut self, model: &Model, threads: usize) -> Vec<Call> {
        if self.random.chance(30) {
            if let Some(calls) = self.contest(model, threads) {
                self.history.extend(calls.iter().cloned());
                return calls;
            }
        }
        let call = match self.random.below(8) {
            0 => Some(self.transfer(model)),
            1 => Some(self.deposit()),
            2 => Some(self.create_lien(model)),
            3 => self.capture(model),
            4 => self.release(model),
            5 => Some(self.checkout(model)),
            6 => Some(self.bulk(model)),
            _ => self.refund(model),
        };
        let call = call.unwrap_or_else(|| self.transfer(model));
        self.history.push(call.clone());
        if self.random.chance(60) {
            return vec![call; threads];
        }
        (0..threads).map(|thread| variant(&call, thread)).collect()
    }
}

impl Generator {
    /// Different calls, each under its own key, on the same money at the same moment: they
    /// cannot all win (SPEC §5: two sessions racing for the same funds cannot both win).
    fn contest(&mut self, model: &Model, threads: usize) -> Option<Vec<Call>> {
        match self.random.below(3) {
            0 => self.contest_lien(model, threads),
            1 => self.contest_refunds(model, threads),
            _ => Some(self.contest_wallet(model, threads)),
        }
    }

    /// Captures of one lien, each of up to 60% of what it holds, and maybe its release.
    fn contest_lien(&mut self, model: &Model, threads: usize) -> Option<Vec<Call>> {
        let active: Vec<(&String, &Lien)> = model
            .liens_made()
            .into_iter()
            .filter(|(_, lien)| lien.status == LienStatus::Active)
            .collect();
        let (lien, held) = self.random.pick(&active).map(|(id, lien)| ((*id).clone(), *lien))?;
        let share = held.outstanding().checked_mul(Decimal::new(6, 1)).unwrap_or(CENT);
        let mut calls = Vec::new();
        for thread in 0..threads {
            if thread + 1 == threads && self.random.chance(40) {
                calls.push(Call::Release { lien: lien.clone() });
                continue;
            }
            let destination = self.wallet_other_than(&[&held.account]);
            let amount = Some(text(self.up_to(share)));
            let (reference, last) = (self.key("c"), self.random.chance(30));
            calls.push(Call::Capture { lien: lien.clone(), destination, amount, reference, last });
        }
        Some(calls)
    }

    /// Refunds of one completed event under different references: a checkout's in full, a
    /// one-posting event's in parts of up to 60% of what is left, or in full.
    fn contest_refunds(&mut self, model: &Model, threads: usize) -> Option<Vec<Call>> {
        let refundable: Vec<(&String, &Event)> = model
            .events_made()
            .into_iter()
            .filter(|(_, event)| event.completed && event.kind != EventKind::Refund)
            .collect();
        let (event, target) = self.random.pick(&refundable).map(|(id, e)| ((*id).clone(), *e))?;
        let left = match &target.kind {
            EventKind::Posting { amount, .. } => Some(minus(*amount, target.refunded)),
            EventKind::Checkout { .. } | EventKind::Refund => None,
        };
        let mut calls = Vec::new();
        for _ in 0..threads {
            let share = left.map(|left| left.checked_mul(Decimal::new(6, 1)).unwrap_or(CENT));
            let amount = match share {
                Some(share) if self.random.chance(75) => Some(text(self.up_to(share))),
                Some(_) | None => None,
            };
            calls.push(Call::Refund { event: event.clone(), amount, reference: self.key("r") });
        }
        Some(calls)
    }

    /// Spends from one wallet, each of 60% of what it has: transfers, holds, checkouts.
    fn contest_wallet(&mut self, model: &Model, threads: usize) -> Vec<Call> {
        let source = self.wallet();
        let share = model.available(&source).checked_mul(Decimal::new(6, 1)).unwrap_or(CENT);
        let amount = text(share.round_dp(2).max(Decimal::TWO));
        let mut calls = Vec::new();
        for _ in 0..threads {
            let call = match self.random.below(4) {
                // A bulk call of two transfers out of the same wallet.
                3 => {
                    let items = (0..2)
                        .map(|_| Call::Transfer {
                            source: source.clone(),
                            destination: self.wallet_other_than(&[&source]),
                            amount: amount.clone(),
                            reference: self.key("t"),
                        })
                        .collect();
                    Call::Transfers { items }
                }
                0 => {
                    let destination = self.wallet_other_than(&[&source]);
                    let reference = self.key("t");
                    Call::Transfer {
                        source: source.clone(),
                        destination,
                        amount: amount.clone(),
                        reference,
                    }
                }
                1 => Call::CreateLien {
                    account: source.clone(),
                    amount: amount.clone(),
                    key: self.key("l"),
                },
                _ => {
                    let seller = self.wallet_other_than(&[&source]);
                    let market = self.wallet_other_than(&[&source, &seller]);
                    let (key, fee) = (self.key("e"), "0.01".to_string());
                    let buyer = source.clone();
                    Call::Checkout(Checkout {
                        key,
                        buyer,
                        seller,
                        market,
                        price: amount.clone(),
                        fee,
                    })
                }
            };
            calls.push(call);
        }
        calls
    }
}

/// `amount` plus `step`, in canonical text.
fn bump(amount: &str, step: Decimal) -> String {
    text(plus(Decimal::from_str_exact(amount).unwrap_or(CENT), step))
}

/// Thread `index`'s request under the same key: the amount `index` cents more (a release has
/// no key and stays the same).
fn variant(call: &Call, index: usize) -> Call {
    let step = Decimal::new(i64::try_from(index).unwrap_or(0), 2);
    let mut call = call.clone();
    match &mut call {
        Call::Deposit { amount, .. }
        | Call::Transfer { amount, .. }
        | Call::CreateLien { amount, .. } => *amount = bump(amount, step),
        Call::Capture { amount, .. } | Call::Refund { amount, .. } => {
            *amount = Some(amount.as_deref().map_or(text(plus(CENT, step)), |a| bump(a, step)));
        }
        Call::Checkout(checkout) => checkout.fee = bump(&checkout.fee, step),
        Call::Release { .. } | Call::StartAgain { .. } | Call::Transfers { .. } => {}
    }
    call
}
