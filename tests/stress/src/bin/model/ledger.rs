//! The reference model: what the ledger must answer to each call and what it must hold after
//! it, written from SPEC §2–§5 and §9 in plain maps, sharing no code with the extension.
//!
//! `Model::apply` takes a call and the server's answer; it works out what the answer must be
//! (a refusal's SQLSTATE, the id of the call a replay repeats, or a new id), and if the answer
//! agrees it changes its state as the call must have changed the ledger; otherwise it returns
//! the disagreement and changes nothing. A new id is the one thing the model cannot know ahead:
//! it takes the server's, after checking that no earlier call returned it.
//!
//! The order of the checks follows the contract: a key that names an earlier call decides first
//! (a replay returns the first result even when the call could not run now; another request
//! under the key is `idempotency_conflict`), then the call's own refusals. Where the contract is
//! silent on which of two refusals wins (a bad amount under a used key), the generator never
//! asks, so nothing here depends on it.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

use super::calls::{Answer, Call, Checkout, ESCROW};

/// The wallets calls move money between; with `ESCROW`, every account of the model.
pub const WALLETS: [&str; 4] = ["m-a", "m-b", "m-c", "m-d"];
/// An account that does not exist (`account_unknown`).
pub const GHOST: &str = "m-ghost";

// Refusal codes, docs/errors.md (core/src/error.rs `sqlstate()`).
pub const AMOUNT_NOT_POSITIVE: &str = "L0004";
pub const AMOUNT_SCALE_EXCEEDED: &str = "L0005";
pub const ACCOUNT_UNKNOWN: &str = "L0016";
pub const INSUFFICIENT_FUNDS: &str = "L0020";
pub const TRANSITION_NOT_ALLOWED: &str = "L0023";
pub const EVENT_UNKNOWN: &str = "L0024";
pub const IDEMPOTENCY_CONFLICT: &str = "L0028";
pub const LIEN_UNKNOWN: &str = "L0034";
pub const CAPTURE_EXCEEDS_LIEN: &str = "L0035";
pub const REFUND_EXCEEDS_EVENT: &str = "L0041";
pub const REFUND_PARTIAL_UNSUPPORTED: &str = "L0042";

/// USD's scale: an amount with more decimals is refused, never rounded.
const SCALE: u32 = 2;

/// What a call turned out to be, for the run's counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    First,
    Replay,
    Conflict,
    Refused,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LienStatus {
    Active,
    Captured,
    Released,
}

impl LienStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LienStatus::Active => "active",
            LienStatus::Captured => "captured",
            LienStatus::Released => "released",
        }
    }
}

/// A capture made under a reference: its result and what it did.
#[derive(Clone, Debug)]
pub struct CaptureMade {
    pub id: String,
    pub destination: String,
    pub amount: Decimal,
    /// It ended the lien (final, or it took all the lien still held).
    pub ended_lien: bool,
    /// It ended the lien and gave a remainder back.
    pub released_rest: bool,
}

#[derive(Clone, Debug)]
pub struct Lien {
    /// Its place in the order the model learnt of liens and events.
    pub born: u64,
    pub account: String,
    pub amount: Decimal,
    pub captured: Decimal,
    pub status: LienStatus,
    /// Captures by reference (a reference is unique per lien).
    pub captures: BTreeMap<String, CaptureMade>,
}

impl Lien {
    /// What it still holds.
    pub fn outstanding(&self) -> Decimal {
        minus(self.amount, self.captured)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// A one-call posting: a transfer, or a deposit (`payer` None: from outside, `@world`).
    Posting {
        payer: Option<String>,
        payee: String,
        amount: Decimal,
    },
    Checkout {
        buyer: String,
        seller: String,
        market: String,
        price: Decimal,
        fee: Decimal,
    },
    Refund,
}

#[derive(Clone, Debug)]
pub struct Event {
    /// Its place in the order the model learnt of liens and events.
    pub born: u64,
    pub kind: EventKind,
    /// `completed`, or else `compensated` (a checkout whose buyer could not pay).
    pub completed: bool,
    /// What its refunds have returned so far.
    pub refunded: Decimal,
}

impl Event {
    pub fn status(&self) -> &'static str {
        if self.completed {
            "completed"
        } else {
            "compensated"
        }
    }
}

/// One posting of a refund: `from` pays `amount` to `to` (`None`: out to `@world`).
struct Leg {
    from: String,
    to: Option<String>,
    amount: Decimal,
}

/// The ledger as the model sees it.
#[derive(Clone, Debug, Default)]
pub struct Model {
    balances: BTreeMap<String, Decimal>,
    pub liens: BTreeMap<String, Lien>,
    pub events: BTreeMap<String, Event>,
    /// Keys and their first request and result, per kind of call.
    transfers: BTreeMap<String, ((String, String, Decimal), String)>,
    deposits: BTreeMap<String, ((String, Decimal), String)>,
    lien_keys: BTreeMap<String, ((String, Decimal), String)>,
    checkout_keys: BTreeMap<String, (Checkout, String)>,
    refund_references: BTreeMap<String, ((String, Option<Decimal>), String)>,
    /// Every id the server has returned: a new one must not be among them.
    ids: BTreeSet<String>,
    /// How many liens and events the model has learnt of.
    born: u64,
    /// A call sent again after a crash: a bulk item the server says it replayed may be one
    /// the model never saw posted (its first reply was lost with the crash).
    pub after_crash: bool,
}

pub fn plus(left: Decimal, right: Decimal) -> Decimal {
    let sum = left.checked_add(right);
    assert!(sum.is_some(), "the model's amounts are far from Decimal's bounds");
    sum.unwrap_or_default()
}

pub fn minus(left: Decimal, right: Decimal) -> Decimal {
    let difference = left.checked_sub(right);
    assert!(difference.is_some(), "the model's amounts are far from Decimal's bounds");
    difference.unwrap_or_default()
}

/// An amount as the contract reads it: > 0 and at most two decimals, or the refusal.
pub fn amount_of(text: &str) -> Result<Decimal, &'static str> {
    let value = Decimal::from_str_exact(text).map_err(|_| AMOUNT_NOT_POSITIVE)?;
    if value <= Decimal::ZERO {
        return Err(AMOUNT_NOT_POSITIVE);
    }
    if value.scale() > SCALE {
        return Err(AMOUNT_SCALE_EXCEEDED);
    }
    Ok(value)
}

/// The value of an amount's text, only to compare requests (`7` and `7.00` are the same).
fn value_of(text: &Option<String>) -> Option<Decimal> {
    text.as_deref().and_then(|text| Decimal::from_str_exact(text).ok())
}

fn expected(what: &str, answer: &Answer) -> String {
    format!("the model expects {what}, the server answered {answer}")
}

/// The answer must be this refusal.
fn refused(answer: &Answer, code: &'static str) -> Result<Outcome, String> {
    match answer {
        Answer::Refused(got) if got == code && code == IDEMPOTENCY_CONFLICT => {
            Ok(Outcome::Conflict)
        }
        Answer::Refused(got) if got == code => Ok(Outcome::Refused),
        _ => Err(expected(&format!("refusal {code}"), answer)),
    }
}

/// A key already used: the same request is a replay of `first`, another is a conflict.
fn keyed(answer: &Answer, same_request: bool, first: &str) -> Result<Outcome, String> {
    if !same_request {
        return refused(answer, IDEMPOTENCY_CONFLICT);
    }
    match answer {
        Answer::Id(id) if id == first => Ok(Outcome::Replay),
        _ => Err(expected(&format!("a replay returning {first}"), answer)),
    }
}

impl Model {
    /// A model with the accounts the run creates, all empty.
    pub fn new() -> Model {
        let mut model = Model::default();
        for account in WALLETS.iter().chain([ESCROW].iter()) {
            model.balances.insert(account.to_string(), Decimal::ZERO);
        }
        model
    }

    pub fn accounts(&self) -> Vec<String> {
        self.balances.keys().cloned().collect()
    }

    pub fn balance(&self, account: &str) -> Decimal {
        self.balances.get(account).copied().unwrap_or_default()
    }

    pub fn reserved(&self, account: &str) -> Decimal {
        let held = self.liens.values().filter(|lien| lien.status == LienStatus::Active);
        held.filter(|lien| lien.account == account)
            .fold(Decimal::ZERO, |total, lien| plus(total, lien.outstanding()))
    }

    pub fn available(&self, account: &str) -> Decimal {
        minus(self.balance(account), self.reserved(account))
    }

    fn next_born(&mut self) -> u64 {
        self.born += 1;
        self.born
    }

    /// Liens in the order they were made: their ids are random, so the maps' order differs
    /// from run to run, and a generator that picked by it would not follow from its seed.
    pub fn liens_made(&self) -> Vec<(&String, &Lien)> {
        let mut liens: Vec<(&String, &Lien)> = self.liens.iter().collect();
        liens.sort_by_key(|(_, lien)| lien.born);
        liens
    }

    /// Events in the order they were made (see `liens_made`).
    pub fn events_made(&self) -> Vec<(&String, &Event)> {
        let mut events: Vec<(&String, &Event)> = self.events.iter().collect();
        events.sort_by_key(|(_, event)| event.born);
        events
    }

    /// Applies `call` if `answer` is what it must be; otherwise says why not.
    pub fn apply(&mut self, call: &Call, answer: &Answer) -> Result<Outcome, String> {
        match call {
            Call::Deposit { account, amount, reference } => {
                self.deposit(account, amount, reference, answer)
            }
            Call::Transfer { source, destination, amount, reference } => {
                self.transfer((source, destination), amount, reference, answer)
            }
            Call::CreateLien { account, amount, key } => {
                self.create_lien(account, amount, key, answer)
            }
            Call::Capture { lien, destination, amount, reference, last } => {
                self.capture(lien, (destination, amount, *last), reference, answer)
            }
            Call::Release { lien } => self.release(lien, answer),
            Call::Checkout(checkout) => self.checkout(checkout, answer),
            Call::StartAgain { event } => match self.events.get(event) {
                None => refused(answer, EVENT_UNKNOWN),
                // Every event of the model has run: starting one again is not allowed.
                Some(_) => refused(answer, TRANSITION_NOT_ALLOWED),
            },
            Call::Refund { event, amount, reference } => {
                self.refund(event, amount, reference, answer)
            }
            Call::Transfers { items } => self.bulk(items, answer),
        }
    }

    /// `cte_transfers`: each item as a single transfer would be, in order; what the server
    /// says it replayed must be a replay (or, after a crash, possibly the model's first).
    fn bulk(&mut self, items: &[Call], answer: &Answer) -> Result<Outcome, String> {
        let answers = match answer {
            Answer::Items(answers) if answers.len() == items.len() => answers,
            _ => {
                return Err(expected(
                    &format!("an answer for each of {} items", items.len()),
                    answer,
                ))
            }
        };
        let mut outcomes = Vec::with_capacity(items.len());
        for (number, (item, (answer, replayed))) in items.iter().zip(answers).enumerate() {
            let Call::Transfer { source, destination, amount, reference } = item else {
                return Err(format!("item {} is not a transfer", number + 1));
            };
            let outcome = self
                .transfer((source, destination), amount, reference, answer)
                .map_err(|why| format!("item {}: {why}", number + 1))?;
            let agrees = match outcome {
                Outcome::Replay => *replayed,
                Outcome::First => !*replayed || self.after_crash,
                Outcome::Conflict | Outcome::Refused => !*replayed,
            };
            if !agrees {
                return Err(format!(
                    "item {}: the model's outcome is {outcome:?}, the server said replayed = {replayed}",
                    number + 1
                ));
            }
            outcomes.push(outcome);
        }
        let order = [Outcome::First, Outcome::Replay, Outcome::Conflict, Outcome::Refused];
        Ok(order.into_iter().find(|kind| outcomes.contains(kind)).unwrap_or(Outcome::Refused))
    }

    /// The answer must be a new id; it is now known.
    fn fresh(&mut self, answer: &Answer) -> Result<String, String> {
        match answer {
            Answer::Id(id) if !self.ids.contains(id) => {
                self.ids.insert(id.clone());
                Ok(id.clone())
            }
            _ => Err(expected("a new id", answer)),
        }
    }

    fn post(&mut self, from: Option<&str>, to: Option<&str>, amount: Decimal) {
        assert!(amount > Decimal::ZERO, "a posting moves a positive amount");
        if let Some(from) = from {
            let balance = minus(self.balance(from), amount);
            assert!(!balance.is_sign_negative(), "the model never takes a wallet below zero");
            self.balances.insert(from.to_string(), balance);
        }
        if let Some(to) = to {
            self.balances.insert(to.to_string(), plus(self.balance(to), amount));
        }
    }

    fn deposit(
        &mut self,
        account: &str,
        amount: &str,
        reference: &str,
        answer: &Answer,
    ) -> Result<Outcome, String> {
        let value = match amount_of(amount) {
            Ok(value) => value,
            Err(code) => return refused(answer, code),
        };
        if !self.balances.contains_key(account) {
            return refused(answer, ACCOUNT_UNKNOWN);
        }
        let request = (account.to_string(), value);
        if let Some((first, id)) = self.deposits.get(reference) {
            return keyed(answer, *first == request, id);
        }
        let id = self.fresh(answer)?;
        self.post(None, Some(account), value);
        self.deposits.insert(reference.to_string(), (request, id.clone()));
        let kind = EventKind::Posting { payer: None, payee: account.to_string(), amount: value };
        let born = self.next_born();
        let event = Event { born, kind, completed: true, refunded: Decimal::ZERO };
        self.events.insert(id, event);
        Ok(Outcome::First)
    }

    fn transfer(
        &mut self,
        (source, destination): (&str, &str),
        amount: &str,
        reference: &str,
        answer: &Answer,
    ) -> Result<Outcome, String> {
        let value = match amount_of(amount) {
            Ok(value) => value,
            Err(code) => return refused(answer, code),
        };
        if !self.balances.contains_key(source) || !self.balances.contains_key(destination) {
            return refused(answer, ACCOUNT_UNKNOWN);
        }
        let request = (source.to_string(), destination.to_string(), value);
        if let Some((first, id)) = self.transfers.get(reference) {
            return keyed(answer, *first == request, id);
        }
        if self.available(source) < value {
            return refused(answer, INSUFFICIENT_FUNDS);
        }
        let id = self.fresh(answer)?;
        self.post(Some(source), Some(destination), value);
        self.transfers.insert(reference.to_string(), (request, id.clone()));
        let payer = Some(source.to_string());
        let kind = EventKind::Posting { payer, payee: destination.to_string(), amount: value };
        let born = self.next_born();
        let event = Event { born, kind, completed: true, refunded: Decimal::ZERO };
        self.events.insert(id, event);
        Ok(Outcome::First)
    }

    fn create_lien(
        &mut self,
        account: &str,
        amount: &str,
        key: &str,
        answer: &Answer,
    ) -> Result<Outcome, String> {
        let value = match amount_of(amount) {
            Ok(value) => value,
            Err(code) => return refused(answer, code),
        };
        if !self.balances.contains_key(account) {
            return refused(answer, ACCOUNT_UNKNOWN);
        }
        let request = (account.to_string(), value);
        if let Some((first, id)) = self.lien_keys.get(key) {
            return keyed(answer, *first == request, id);
        }
        if self.available(account) < value {
            return refused(answer, INSUFFICIENT_FUNDS);
        }
        let id = self.fresh(answer)?;
        let lien = Lien {
            born: self.next_born(),
            account: account.to_string(),
            amount: value,
            captured: Decimal::ZERO,
            status: LienStatus::Active,
            captures: BTreeMap::new(),
        };
        self.liens.insert(id.clone(), lien);
        self.lien_keys.insert(key.to_string(), (request, id));
        Ok(Outcome::First)
    }

    /// A capture under a reference its lien already used is the same request when it asks for
    /// the same destination, amount and `final`, each counted for what it changes (SPEC §9:
    /// the effective values): a NULL amount meant "all it held", the same as the first only if
    /// that took all the lien held without giving a rest back; `final` on a capture that took
    /// all the lien still held changed nothing, so either value is the same request then.
    fn same_capture(
        first: &CaptureMade,
        destination: &str,
        amount: Option<Decimal>,
        last: bool,
    ) -> bool {
        let same_amount = match amount {
            Some(amount) => amount == first.amount,
            None => first.ended_lien && !first.released_rest,
        };
        let same_final = if last { first.ended_lien } else { !first.released_rest };
        first.destination == destination && same_amount && same_final
    }

    fn capture(
        &mut self,
        lien_id: &str,
        (destination, amount, last): (&str, &Option<String>, bool),
        reference: &str,
        answer: &Answer,
    ) -> Result<Outcome, String> {
        let Some(lien) = self.liens.get(lien_id) else { return refused(answer, LIEN_UNKNOWN) };
        if let Some(first) = lien.captures.get(reference) {
            let same = Model::same_capture(first, destination, value_of(amount), last);
            return keyed(answer, same, &first.id);
        }
        if lien.status != LienStatus::Active {
            return refused(answer, TRANSITION_NOT_ALLOWED);
        }
        let outstanding = lien.outstanding();
        let taken = match amount.as_deref().map(amount_of) {
            None => outstanding,
            Some(Ok(value)) => value,
            Some(Err(code)) => return refused(answer, code),
        };
        if taken > outstanding {
            return refused(answer, CAPTURE_EXCEEDS_LIEN);
        }
        let account = lien.account.clone();
        let id = self.fresh(answer)?;
        let remainder = minus(outstanding, taken);
        let ended_lien = last || remainder.is_zero();
        // The hold gives back what is taken (and the rest, when it ends): the posting then
        // spends money the lien kept for it, so it never finds the wallet short.
        self.post(Some(&account), Some(destination), taken);
        let made = CaptureMade {
            id,
            destination: destination.to_string(),
            amount: taken,
            ended_lien,
            released_rest: ended_lien && !remainder.is_zero(),
        };
        let lien = self.liens.get_mut(lien_id);
        assert!(lien.is_some(), "the lien was found above");
        if let Some(lien) = lien {
            lien.captured = plus(lien.captured, taken);
            if ended_lien {
                lien.status = LienStatus::Captured;
            }
            lien.captures.insert(reference.to_string(), made);
        }
        Ok(Outcome::First)
    }

    fn release(&mut self, lien_id: &str, answer: &Answer) -> Result<Outcome, String> {
        let Some(lien) = self.liens.get_mut(lien_id) else {
            return refused(answer, LIEN_UNKNOWN);
        };
        let outcome = match lien.status {
            // SPEC §9: a release sent again returns without error and changes nothing.
            LienStatus::Released => Outcome::Replay,
            LienStatus::Active => Outcome::First,
            LienStatus::Captured => return refused(answer, TRANSITION_NOT_ALLOWED),
        };
        if *answer != Answer::Done {
            return Err(expected("the release to return", answer));
        }
        lien.status = LienStatus::Released;
        Ok(outcome)
    }

    fn checkout(&mut self, checkout: &Checkout, answer: &Answer) -> Result<Outcome, String> {
        if let Some((first, id)) = self.checkout_keys.get(&checkout.key) {
            if first != checkout {
                return refused(answer, IDEMPOTENCY_CONFLICT);
            }
            // SPEC §9: the key stays with its event whatever its end; a replay returns it.
            let status = self.events.get(id).map_or("?", Event::status);
            return match answer {
                Answer::Event { id: got, status: now } if got == id && now == status => {
                    Ok(Outcome::Replay)
                }
                _ => Err(expected(&format!("the replay to return {id} {status}"), answer)),
            };
        }
        let amounts = (amount_of(&checkout.price), amount_of(&checkout.fee));
        let (Ok(price), Ok(fee)) = amounts else {
            panic!("the generator makes a checkout's amounts valid: {checkout:?}");
        };
        assert!(fee < price, "the generator makes a checkout's fee less than its price");
        // The first step fails for good when the buyer cannot pay; nothing else can fail
        // (escrow always receives the price before it pays it out): nothing to compensate.
        let completed = self.available(&checkout.buyer) >= price;
        let status = if completed { "completed" } else { "compensated" };
        let id = match answer {
            Answer::Event { id, status: got } if got == status && !self.ids.contains(id) => id,
            _ => return Err(expected(&format!("a new event {status}"), answer)),
        };
        self.ids.insert(id.clone());
        if completed {
            let payout = minus(price, fee);
            self.post(Some(&checkout.buyer), Some(ESCROW), price);
            self.post(Some(ESCROW), Some(&checkout.seller), payout);
            self.post(Some(ESCROW), Some(&checkout.market), fee);
        }
        let kind = EventKind::Checkout {
            buyer: checkout.buyer.clone(),
            seller: checkout.seller.clone(),
            market: checkout.market.clone(),
            price,
            fee,
        };
        let born = self.next_born();
        let event = Event { born, kind, completed, refunded: Decimal::ZERO };
        self.events.insert(id.clone(), event);
        self.checkout_keys.insert(checkout.key.clone(), (checkout.clone(), id.clone()));
        Ok(Outcome::First)
    }

    fn refund(
        &mut self,
        event_id: &str,
        amount: &Option<String>,
        reference: &str,
        answer: &Answer,
    ) -> Result<Outcome, String> {
        let asked = value_of(amount);
        if let Some(((first_event, first_amount), id)) = self.refund_references.get(reference) {
            // The same event and the same amount (NULL, "all that is left", is its own value).
            let same = first_event == event_id && *first_amount == asked;
            return keyed(answer, same, id);
        }
        let Some(event) = self.events.get(event_id) else {
            return refused(answer, EVENT_UNKNOWN);
        };
        if !event.completed || event.kind == EventKind::Refund {
            return refused(answer, TRANSITION_NOT_ALLOWED);
        }
        let plan = match self.refund_plan(event, amount) {
            Ok(plan) => plan,
            Err(code) => return refused(answer, code),
        };
        let id = self.fresh(answer)?;
        for leg in &plan {
            self.post(Some(&leg.from), leg.to.as_deref(), leg.amount);
        }
        if let Some(event) = self.events.get_mut(event_id) {
            event.refunded = plus(event.refunded, refund_total(&event.kind, &plan));
        }
        self.refund_references
            .insert(reference.to_string(), ((event_id.to_string(), asked), id.clone()));
        let born = self.next_born();
        let refund =
            Event { born, kind: EventKind::Refund, completed: true, refunded: Decimal::ZERO };
        self.events.insert(id, refund);
        Ok(Outcome::First)
    }

    /// The postings a refund of a completed, refundable event makes, or its refusal. A
    /// one-posting event is refunded in part or in full (what is left); a checkout only in
    /// full, once, newest posting first.
    fn refund_plan(
        &self,
        event: &Event,
        amount: &Option<String>,
    ) -> Result<Vec<Leg>, &'static str> {
        let plan = match &event.kind {
            EventKind::Posting { payer, payee, amount: moved } => {
                let left = minus(*moved, event.refunded);
                let part = match amount.as_deref().map(amount_of) {
                    None => left,
                    Some(value) => value?,
                };
                if part.is_zero() || part > left {
                    return Err(REFUND_EXCEEDS_EVENT);
                }
                vec![Leg { from: payee.clone(), to: payer.clone(), amount: part }]
            }
            EventKind::Checkout { buyer, seller, market, price, fee } => {
                if amount.is_some() {
                    return Err(REFUND_PARTIAL_UNSUPPORTED);
                }
                if !event.refunded.is_zero() {
                    return Err(REFUND_EXCEEDS_EVENT);
                }
                let escrow = Some(ESCROW.to_string());
                vec![
                    Leg { from: market.clone(), to: escrow.clone(), amount: *fee },
                    Leg { from: seller.clone(), to: escrow, amount: minus(*price, *fee) },
                    Leg { from: ESCROW.to_string(), to: Some(buyer.clone()), amount: *price },
                ]
            }
            EventKind::Refund => return Err(TRANSITION_NOT_ALLOWED),
        };
        self.refund_covered(&plan)?;
        Ok(plan)
    }

    /// Each posting of a refund, in order, finds its payer able to pay.
    fn refund_covered(&self, plan: &[Leg]) -> Result<(), &'static str> {
        let mut available: BTreeMap<String, Decimal> = BTreeMap::new();
        for leg in plan {
            let from = available.get(&leg.from).copied();
            let from_now = from.unwrap_or_else(|| self.available(&leg.from));
            if from_now < leg.amount {
                return Err(INSUFFICIENT_FUNDS);
            }
            available.insert(leg.from.clone(), minus(from_now, leg.amount));
            if let Some(to) = &leg.to {
                let to_now = available.get(to).copied().unwrap_or_else(|| self.available(to));
                available.insert(to.clone(), plus(to_now, leg.amount));
            }
        }
        Ok(())
    }
}

/// What a refund plan returns of its event (for a checkout, the price the buyer gets back).
fn refund_total(kind: &EventKind, plan: &[Leg]) -> Decimal {
    match kind {
        EventKind::Checkout { price, .. } => *price,
        EventKind::Posting { .. } | EventKind::Refund => {
            plan.iter().fold(Decimal::ZERO, |total, leg| plus(total, leg.amount))
        }
    }
}
