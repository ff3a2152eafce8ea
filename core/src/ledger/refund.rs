//! Refund plans (SPEC §9): what a refund of a completed event posts.
//!
//! A full refund reverses every posting of the event, newest first, as compensation does, so
//! money that went on from the account it first reached (buyer -> escrow -> seller) comes back
//! to it before it has to give it back. A partial refund needs to know who gives back what:
//! - an event whose postings all take from one payer (a split, several transfers from the same
//!   source) gives back `amount` from its payees in proportion to what each still holds of what
//!   it received (what it received, less what refunds took back from it), in minor units,
//!   rounded by largest remainder with ties to the payee that received first, so the parts sum
//!   exactly to the amount;
//! - `legs` name the part of each payee instead (and, where the event has several payers, the
//!   payer each part goes back `to`);
//! - anything else is `refund_partial_unsupported`.
//!
//! Pure: the shell reads the event's postings and what earlier refunds took back, and posts
//! the plan.

use rust_decimal::Decimal;

use super::posting::{Entry, Posting, PostingKind};
use crate::error::CteError;
use crate::money::{Amount, Currency};

/// One named part of a partial refund: `amount` taken back from `account_id` (a payee of the
/// event), given back to `to` (a payer; the one payer when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundLeg {
    pub account_id: String,
    pub amount: Decimal,
    pub to: Option<String>,
}

/// An account's net position in an event: what it received (positive) or paid (negative),
/// and what refunds gave back or took back since (opposite sign).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPosition {
    pub account_id: String,
    pub received: Decimal,
    pub refunded: Decimal,
}

impl NetPosition {
    /// What it still holds of what it received (payees), or is still owed back (payers).
    fn left(&self) -> Decimal {
        let left = self.received.checked_add(self.refunded);
        assert!(left.is_some(), "a position's amounts are bounded");
        left.unwrap_or_default()
    }
}

/// The event's postings netted per account, in the order each account first appears, with
/// what earlier refunds moved (`refunded`: account and signed amount). One currency only.
pub fn net_positions(postings: &[Posting], refunded: &[(String, Decimal)]) -> Vec<NetPosition> {
    let mut positions: Vec<NetPosition> = Vec::new();
    let entries = postings.iter().flat_map(|posting| posting.entries.iter());
    for entry in entries {
        let at = position_of(&mut positions, &entry.account_id);
        let sum = positions[at].received.checked_add(entry.amount);
        assert!(sum.is_some(), "an event's sums are bounded");
        positions[at].received = sum.unwrap_or_default();
    }
    for (account_id, amount) in refunded {
        let at = position_of(&mut positions, account_id);
        let sum = positions[at].refunded.checked_add(*amount);
        positions[at].refunded = sum.unwrap_or_default();
    }
    positions
}

fn position_of(positions: &mut Vec<NetPosition>, account_id: &str) -> usize {
    let at = match positions.iter().position(|position| position.account_id == account_id) {
        Some(at) => at,
        None => {
            positions.push(NetPosition {
                account_id: account_id.to_string(),
                received: Decimal::ZERO,
                refunded: Decimal::ZERO,
            });
            positions.len() - 1
        }
    };
    assert_eq!(positions[at].account_id, account_id);
    at
}

/// Whether every account the event paid has given back all it received.
pub fn nothing_left(positions: &[NetPosition]) -> bool {
    positions
        .iter()
        .filter(|position| position.received > Decimal::ZERO)
        .all(|position| position.left() <= Decimal::ZERO)
}

/// The one payer of an event whose every posting takes from the same account, if it is so.
pub fn single_payer(postings: &[Posting]) -> Option<String> {
    let mut payer: Option<&str> = None;
    for entry in postings.iter().flat_map(|posting| posting.entries.iter()) {
        if entry.amount.is_sign_negative() {
            match payer {
                None => payer = Some(&entry.account_id),
                Some(known) if known == entry.account_id => {}
                Some(_) => return None,
            }
        }
    }
    payer.map(str::to_string)
}

/// `amount` (in minor units of `scale`) shared out in proportion to `weights`, by largest
/// remainder, ties to the earlier weight. The parts sum exactly to `amount`. `None` when the
/// products do not fit in 128 bits (amounts and weights beyond any real ledger's).
pub fn largest_remainder(amount: i128, weights: &[i128]) -> Option<Vec<i128>> {
    let total: i128 = weights.iter().try_fold(0i128, |sum, weight| sum.checked_add(*weight))?;
    assert!(total > 0, "a share needs a positive total");
    assert!(weights.iter().all(|weight| *weight >= 0));
    let products: Vec<i128> =
        weights.iter().map(|weight| amount.checked_mul(*weight)).collect::<Option<_>>()?;
    let mut parts: Vec<i128> = products.iter().map(|product| product / total).collect();
    let remainders: Vec<i128> = products.iter().map(|product| product % total).collect();
    let mut left = amount - parts.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Stable: equal remainders keep their order, so ties go to the earlier weight.
    order.sort_by(|a, b| remainders[*b].cmp(&remainders[*a]));
    for index in order {
        if left == 0 {
            break;
        }
        parts[index] += 1;
        left -= 1;
    }
    assert_eq!(parts.iter().sum::<i128>(), amount, "the parts sum to the amount");
    assert_eq!(parts.len(), weights.len());
    Some(parts)
}

/// A partial refund of `amount` from an event whose postings all take from one payer: one
/// posting that gives `amount` back to the payer, taken from its payees in proportion to what
/// each still holds of what it received.
pub fn proportional(
    event_id: &str,
    currency: &str,
    scale: u32,
    payer: &str,
    positions: &[NetPosition],
    amount: Decimal,
) -> Result<Posting, CteError> {
    let (payees, left) = payees_holding(payer, positions);
    let left = left.unwrap_or(Decimal::MAX);
    refuse_over(event_id, amount, left)?;
    // `amount` is positive and at most what the payees hold: there is a payee to take it from
    // (`largest_remainder` asserts a positive total).
    assert!(!payees.is_empty());
    let units = |value: Decimal| minor_units(value, scale);
    let weights: Vec<i128> = payees.iter().map(|payee| units(payee.left())).collect();
    let too_large = || CteError::AmountTooLarge {
        amount: amount.to_string(),
        integer_digits_max: crate::limits::AMOUNT_INTEGER_DIGITS_MAX,
    };
    let parts = largest_remainder(units(amount), &weights).ok_or_else(too_large)?;
    let mut entries = vec![Entry { account_id: payer.to_string(), amount }];
    for (payee, part) in payees.iter().zip(parts) {
        if part > 0 {
            let part = Decimal::from_i128_with_scale(part, scale);
            entries.push(Entry { account_id: payee.account_id.clone(), amount: -part });
        }
    }
    // The parts sum to the positive amount, so at least one payee gives back.
    assert!(entries.len() >= 2);
    Ok(refund_posting(currency, entries))
}

/// A partial refund whose parts the caller named: each leg's amount taken back from its payee
/// (which must still hold that much of what it received) and given back to its payer.
pub fn by_legs(
    event_id: &str,
    currency: &str,
    positions: &[NetPosition],
    legs: &[RefundLeg],
) -> Result<Posting, CteError> {
    let payers: Vec<&NetPosition> =
        positions.iter().filter(|position| position.received < Decimal::ZERO).collect();
    let unsupported = |why: &'static str| CteError::RefundPartialUnsupported {
        event_id: event_id.to_string(),
        why,
    };
    let mut entries: Vec<Entry> = Vec::new();
    for leg in legs {
        let payee = positions.iter().find(|position| position.account_id == leg.account_id);
        let Some(payee) = payee.filter(|payee| payee.received > Decimal::ZERO) else {
            return Err(unsupported("a leg names an account the event paid nothing to"));
        };
        let taken = taken_from(&entries, &leg.account_id);
        let left = payee.left().checked_sub(taken).unwrap_or_default();
        refuse_over(event_id, leg.amount, left)?;
        let to = match (&leg.to, payers.as_slice()) {
            (Some(to), _) if payers.iter().any(|payer| &payer.account_id == to) => to.clone(),
            (Some(_), _) => return Err(unsupported("a leg's \"to\" is not a payer of the event")),
            (None, [only]) => only.account_id.clone(),
            (None, _) => {
                return Err(unsupported("the event has several payers: name each leg's \"to\""))
            }
        };
        // A payer gets back at most what it paid and was not given back yet.
        let owed = positions
            .iter()
            .find(|position| position.account_id == to)
            .map_or(Decimal::ZERO, |payer| -payer.left());
        let given = given_to(&entries, &to);
        refuse_over(event_id, leg.amount, owed.checked_sub(given).unwrap_or_default())?;
        entries.push(Entry { account_id: leg.account_id.clone(), amount: -leg.amount });
        entries.push(Entry { account_id: to, amount: leg.amount });
    }
    if entries.is_empty() {
        return Err(unsupported("legs must name at least one part"));
    }
    // Two entries per leg: taken back from its payee, given back to its payer.
    assert_eq!(entries.len(), 2 * legs.len());
    Ok(refund_posting(currency, entries))
}

fn given_to(entries: &[Entry], account_id: &str) -> Decimal {
    let given = entries
        .iter()
        .filter(|entry| entry.account_id == account_id && entry.amount.is_sign_positive())
        .try_fold(Decimal::ZERO, |sum, entry| sum.checked_add(entry.amount))
        .unwrap_or(Decimal::MAX);
    assert!(!given.is_sign_negative());
    given
}

fn taken_from(entries: &[Entry], account_id: &str) -> Decimal {
    let taken = entries
        .iter()
        .filter(|entry| entry.account_id == account_id && entry.amount.is_sign_negative())
        .try_fold(Decimal::ZERO, |sum, entry| sum.checked_sub(entry.amount))
        .unwrap_or(Decimal::MAX);
    assert!(!taken.is_sign_negative());
    taken
}

fn refuse_over(event_id: &str, amount: Decimal, left: Decimal) -> Result<(), CteError> {
    if amount.is_zero() || amount.is_sign_negative() || amount > left {
        return Err(CteError::RefundExceedsEvent {
            event_id: event_id.to_string(),
            amount: amount.to_string(),
            left: if left.is_zero() { "nothing".to_string() } else { left.to_string() },
        });
    }
    Ok(())
}

fn minor_units(value: Decimal, scale: u32) -> i128 {
    let mut scaled = value;
    scaled.rescale(scale);
    assert_eq!(scaled, value, "amounts are at their currency's scale");
    scaled.mantissa()
}

fn refund_posting(currency: &str, entries: Vec<Entry>) -> Posting {
    let posting = Posting {
        kind: PostingKind::Refund,
        currency: currency.to_string(),
        entries,
        settles: true,
    };
    let sum = posting.entries.iter().try_fold(Decimal::ZERO, |sum, e| sum.checked_add(e.amount));
    assert_eq!(sum, Some(Decimal::ZERO), "a refund posting balances");
    // Its callers refused a zero part, so it is a posting `Posting::assert_balanced` accepts.
    assert!(posting.entries.len() >= 2);
    assert!(posting.entries.iter().all(|entry| !entry.amount.is_zero()));
    posting
}

/// What earlier refunds of an event took back: in all (as the journal sums them), and per
/// account (signed, the opposite of what each received or paid).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Refunded {
    pub total: Decimal,
    pub by_account: Vec<(String, Decimal)>,
}

/// What a refund asks for: part of the event (`None`: all that is left, or the legs' sum), and
/// the parts its legs name (`None`: in proportion).
#[derive(Debug, Clone, Copy)]
pub struct RefundAsk<'a> {
    pub amount: Option<&'a str>,
    pub legs: Option<&'a [RefundLeg]>,
}

/// The refund's postings: all of the event's postings reversed (newest first), a part of its
/// one posting, a part taken from its payees in proportion, or the parts its legs name.
/// `currency`: the one currency of the postings, `None` when they have several (or none).
pub fn plan(
    target: &str,
    original: &[Posting],
    currency: Option<&Currency>,
    refunded: &Refunded,
    asked: RefundAsk,
) -> Result<Vec<Posting>, CteError> {
    assert!(currency.is_none_or(|c| original.iter().all(|p| p.currency == c.code())));
    let planned = match (original, asked.amount, asked.legs) {
        ([], amount, _) => {
            let asked_for = amount.unwrap_or("the rest").to_string();
            Err(exceeds(target, asked_for, Decimal::ZERO))
        }
        (all, amount, Some(legs)) => {
            let currency = one_currency(target, currency)?;
            with_legs(target, all, currency, refunded, amount, legs).map(|p| vec![p])
        }
        ([only], amount, None) if only.entries.len() == 2 => {
            let currency = one_currency(target, currency)?;
            part_of(target, only, currency, refunded.total, amount).map(|p| vec![p])
        }
        // Newest first, as compensation runs: money that went on from an account it first
        // reached (buyer -> escrow -> seller) comes back to it before it has to give it back.
        (all, None, None) if refunded.total.is_zero() => {
            Ok(all.iter().rev().map(|posting| posting.refund(None)).collect())
        }
        (all, amount, None) => {
            in_proportion(target, all, currency, refunded, amount).map(|p| vec![p])
        }
    };
    if let Ok(postings) = &planned {
        // A refund gives back: never more postings than the event made, each balanced.
        assert!(!postings.is_empty() && postings.len() <= original.len());
        assert!(postings.iter().all(|p| p
            .entries
            .iter()
            .map(|e| e.amount)
            .sum::<Decimal>()
            .is_zero()));
    }
    planned
}

/// The refusal of a refund of `target` (an event, or a capture) asking `amount` when `left` is
/// all that is left to refund.
fn exceeds(target: &str, amount: String, left: Decimal) -> CteError {
    // Refunds never return more than was moved (each counts the ones before; the ledger's
    // verification checks it again), so what is left is never negative.
    assert!(!left.is_sign_negative(), "what is left to refund: {left}");
    let left = if left.is_zero() { "nothing".to_string() } else { left.to_string() };
    CteError::RefundExceedsEvent { event_id: target.to_string(), amount, left }
}

/// The one currency of an event's postings, or the refusal of a partial refund of several.
fn one_currency<'a>(
    target: &str,
    currency: Option<&'a Currency>,
) -> Result<&'a Currency, CteError> {
    currency.ok_or_else(|| CteError::RefundPartialUnsupported {
        event_id: target.to_string(),
        why: "an event in several currencies is refunded only whole",
    })
}

/// A refund of part of one posting between two accounts (an event's only posting, or a
/// capture): `amount`, by default all that `refunded` left, refused when that is nothing or
/// more than is left.
pub fn part_of(
    target: &str,
    posting: &Posting,
    currency: &Currency,
    refunded: Decimal,
    amount: Option<&str>,
) -> Result<Posting, CteError> {
    assert_eq!(posting.currency, currency.code());
    assert!(!refunded.is_sign_negative(), "a refunded sum counts what went back");
    // Both are bounded journal sums: their difference always fits (never a default of 0).
    let Some(left) = posting.moved().checked_sub(refunded) else {
        panic!("what is left to refund of {} less {refunded} fits a decimal", posting.moved());
    };
    let part = match amount {
        Some(text) => Amount::parse(text, currency)?.value(),
        None => left,
    };
    if part.is_zero() || part > left {
        let asked_for = amount.map_or("the rest".to_string(), |_| part.to_string());
        return Err(exceeds(target, asked_for, left));
    }
    let refund = posting.refund(Some(part));
    assert_eq!(refund.moved(), part, "the refund moves the part asked");
    Ok(refund)
}

/// A partial refund (or the rest after one) of an event that paid one payer's money out to
/// its payees, taken back from each in proportion to what it still holds.
fn in_proportion(
    target: &str,
    all: &[Posting],
    currency: Option<&Currency>,
    refunded: &Refunded,
    amount: Option<&str>,
) -> Result<Posting, CteError> {
    if amount.is_none() && currency.is_none() {
        // A multi-currency event is refunded only whole: refunded already, nothing is left.
        return Err(exceeds(target, "the rest".into(), Decimal::ZERO));
    }
    let currency = one_currency(target, currency)?;
    let positions = net_positions(all, &refunded.by_account);
    // Every account of the event has its position, and refunds only touched those.
    assert!(positions.len() >= 2);
    let Some(payer) = single_payer(all) else {
        if amount.is_none() && nothing_left(&positions) {
            // Refunded whole already: there is nothing to give back, whoever paid.
            return Err(exceeds(target, "the rest".into(), Decimal::ZERO));
        }
        return Err(CteError::RefundPartialUnsupported {
            event_id: target.to_string(),
            why: "an event with several payers, or whose money went on from a payee, is \
                  refunded in part only with legs",
        });
    };
    match amount {
        Some(text) => {
            let amount = Amount::parse(text, currency)?.value();
            proportional(target, currency.code(), currency.scale(), &payer, &positions, amount)
        }
        None => the_rest(target, currency.code(), &payer, &positions),
    }
}

/// The payees (every account but the payer) that still hold something of what they received,
/// and what they hold in all (`None`: more than a decimal holds).
fn payees_holding<'p>(
    payer: &str,
    positions: &'p [NetPosition],
) -> (Vec<&'p NetPosition>, Option<Decimal>) {
    let payees: Vec<&NetPosition> = positions
        .iter()
        .filter(|position| position.account_id != payer && position.left() > Decimal::ZERO)
        .collect();
    let left = payees.iter().try_fold(Decimal::ZERO, |sum, payee| sum.checked_add(payee.left()));
    assert!(payees.iter().all(|payee| payee.left().is_sign_positive()));
    (payees, left)
}

/// The rest of a refund begun in part: each payee gives back exactly what it still holds of
/// what it received, to the one payer. No shares to compute (0.3.0 before: the rest went
/// through the proportional plan, whose minor units overflowed for the largest amounts of a
/// currency of twelve decimals, refused as `amount_too_large`).
fn the_rest(
    target: &str,
    currency: &str,
    payer: &str,
    positions: &[NetPosition],
) -> Result<Posting, CteError> {
    let (payees, left) = payees_holding(payer, positions);
    // What the payees hold came out of the payer's one posting set: its sum fits.
    assert!(left.is_some(), "what is left of an event fits a decimal");
    let left = left.unwrap_or_default();
    if left.is_zero() {
        return Err(exceeds(target, "the rest".into(), Decimal::ZERO));
    }
    let mut entries = vec![Entry { account_id: payer.to_string(), amount: left }];
    entries.extend(
        payees
            .iter()
            .map(|payee| Entry { account_id: payee.account_id.clone(), amount: -payee.left() }),
    );
    assert!(entries.len() >= 2);
    Ok(refund_posting(currency, entries))
}

/// A partial refund whose parts the legs name; `amount`, if given, must be their sum.
fn with_legs(
    target: &str,
    all: &[Posting],
    currency: &Currency,
    refunded: &Refunded,
    amount: Option<&str>,
    legs: &[RefundLeg],
) -> Result<Posting, CteError> {
    let sum = legs.iter().try_fold(Decimal::ZERO, |sum, leg| sum.checked_add(leg.amount));
    if let Some(text) = amount {
        let asked = Amount::parse(text, currency)?.value();
        if sum != Some(asked) {
            return Err(CteError::PayloadInvalid {
                step_type: "refund legs".into(),
                why: format!(
                    "the legs add up to {}, not the amount {asked}",
                    sum.map_or("more than a decimal holds".to_string(), |sum| sum.to_string())
                ),
            });
        }
    }
    // Each part in the currency's scale (10.001 USD is refused, never rounded), written so.
    let legs = legs
        .iter()
        .map(|leg| {
            let amount = Amount::parse(&leg.amount.to_string(), currency)?.value();
            Ok(RefundLeg { amount, ..leg.clone() })
        })
        .collect::<Result<Vec<RefundLeg>, CteError>>()?;
    let positions = net_positions(all, &refunded.by_account);
    // Each part was checked in the currency's scale above, none changed by it.
    assert!(legs.iter().all(|leg| leg.amount.scale() <= currency.scale()));
    by_legs(target, currency.code(), &positions, &legs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posting(entries: &[(&str, i64)]) -> Posting {
        let entries = entries
            .iter()
            .map(|(account, cents)| Entry {
                account_id: account.to_string(),
                amount: Decimal::new(*cents, 2),
            })
            .collect();
        Posting { kind: PostingKind::Transfer, currency: "USD".into(), entries, settles: false }
    }

    fn amounts(posting: &Posting) -> Vec<(String, String)> {
        posting.entries.iter().map(|e| (e.account_id.clone(), e.amount.to_string())).collect()
    }

    fn planned(
        original: &[Posting],
        total: i64,
        amount: Option<&str>,
    ) -> Result<Vec<Vec<(String, String)>>, &'static str> {
        let usd = Currency::new("USD", 2).unwrap();
        let refunded = Refunded { total: Decimal::new(total, 2), by_account: Vec::new() };
        let ask = RefundAsk { amount, legs: None };
        let plan = plan("e", original, Some(&usd), &refunded, ask).map_err(|e| e.reason())?;
        Ok(plan.iter().map(amounts).collect())
    }

    #[test]
    fn a_whole_refund_reverses_every_posting_newest_first() {
        let escrow = [
            posting(&[("buyer", -500), ("escrow", 500)]),
            posting(&[("escrow", -500), ("seller", 500)]),
        ];
        let plan = planned(&escrow, 0, None).unwrap();
        let pair = |a: &str, x: &str, b: &str, y: &str| {
            vec![(a.to_string(), x.to_string()), (b.to_string(), y.to_string())]
        };
        // The seller gives back to escrow before escrow gives back to the buyer.
        assert_eq!(
            plan,
            vec![
                pair("escrow", "5.00", "seller", "-5.00"),
                pair("buyer", "5.00", "escrow", "-5.00")
            ]
        );
    }

    #[test]
    fn a_part_of_one_transfer_is_bounded_by_what_earlier_refunds_left() {
        let pay = [posting(&[("buyer", -1_000), ("seller", 1_000)])];
        assert_eq!(planned(&pay, 400, Some("6.00")).unwrap().len(), 1);
        assert_eq!(planned(&pay, 400, Some("6.01")), Err("refund_exceeds_event"));
        assert_eq!(planned(&pay, 1_000, None), Err("refund_exceeds_event"));
        assert_eq!(planned(&pay, 0, Some("0.001")), Err("amount_scale_exceeded"));
        assert_eq!(planned(&pay, 0, Some("-1")), Err("amount_not_positive"));
        assert_eq!(planned(&[], 0, None), Err("refund_exceeds_event"));
    }

    #[test]
    fn an_event_in_several_currencies_is_refunded_only_whole() {
        let mut eur = posting(&[("buyer", -100), ("seller", 100)]);
        eur.currency = "EUR".into();
        let both = [posting(&[("buyer", -100), ("seller", 100)]), eur];
        let refunded = Refunded::default();
        let whole = plan("e", &both, None, &refunded, RefundAsk { amount: None, legs: None });
        assert_eq!(whole.unwrap().len(), 2);
        let part =
            plan("e", &both, None, &refunded, RefundAsk { amount: Some("0.50"), legs: None });
        assert_eq!(part.unwrap_err().reason(), "refund_partial_unsupported");
    }

    #[test]
    fn the_rest_after_a_part_is_what_each_payee_still_holds_even_at_the_largest_amounts() {
        // The largest amount of a currency of twelve decimals, split over ten payees; a first
        // refund took back the smallest unit from the first. The rest went through the
        // proportional plan, whose minor units overflowed (amount_too_large) before.
        let xts = Currency::new("XTS", 12).unwrap();
        let unit = Decimal::new(1, 12);
        let part = Decimal::from_str_exact("999999999999999.999999999999").unwrap();
        let mut entries: Vec<Entry> =
            (0..9).map(|n| Entry { account_id: format!("p{n}"), amount: part }).collect();
        let total = Decimal::from_str_exact("9999999999999999.999999999999").unwrap();
        let rest = total - part * Decimal::from(9);
        entries.push(Entry { account_id: "r".into(), amount: rest });
        entries.insert(0, Entry { account_id: "s".into(), amount: -total });
        let split = Posting {
            kind: PostingKind::Transfer,
            currency: "XTS".into(),
            entries,
            settles: false,
        };
        let refunded =
            Refunded { total: unit, by_account: vec![("p0".into(), -unit), ("s".into(), unit)] };
        let ask = RefundAsk { amount: None, legs: None };
        let plan = plan("e", std::slice::from_ref(&split), Some(&xts), &refunded, ask).unwrap();
        let refund = &plan[0];
        assert_eq!(refund.entries[0].account_id, "s");
        assert_eq!(refund.entries[0].amount, total - unit, "all but what came back already");
        assert_eq!(refund.entries[1].amount, -(part - unit), "p0 gives back what it still holds");
        assert_eq!(refund.entries.len(), 11);
    }

    #[test]
    fn largest_remainder_sums_exactly_and_breaks_ties_to_the_earlier() {
        assert_eq!(largest_remainder(100, &[1, 1, 1]), Some(vec![34, 33, 33]));
        assert_eq!(largest_remainder(1, &[5, 5]), Some(vec![1, 0]));
        assert_eq!(largest_remainder(10, &[90, 10]), Some(vec![9, 1]));
        assert_eq!(largest_remainder(7, &[0, 3]), Some(vec![0, 7]));
        assert_eq!(largest_remainder(i128::MAX / 2, &[3, 1]), None, "overflow is no panic");
    }

    #[test]
    fn a_split_is_refunded_in_proportion_to_what_each_payee_received() {
        let split = posting(&[("buyer", -10_000), ("seller", 9_000), ("market", 1_000)]);
        let positions = net_positions(std::slice::from_ref(&split), &[]);
        assert_eq!(single_payer(&[split]), Some("buyer".to_string()));
        let refund = proportional("e", "USD", 2, "buyer", &positions, Decimal::new(1_001, 2));
        let expected = [("buyer", "10.01"), ("seller", "-9.01"), ("market", "-1.00")];
        let expected: Vec<(String, String)> =
            expected.iter().map(|(a, v)| (a.to_string(), v.to_string())).collect();
        assert_eq!(amounts(&refund.unwrap()), expected);
    }

    #[test]
    fn what_is_left_counts_earlier_refunds_and_bounds_the_next() {
        let pays = [
            posting(&[("buyer", -6_000), ("a", 6_000)]),
            posting(&[("buyer", -4_000), ("b", 4_000)]),
        ];
        let refunded = [("a".to_string(), Decimal::new(-6_000, 2))];
        let positions = net_positions(&pays, &refunded);
        let refund = proportional("e", "USD", 2, "buyer", &positions, Decimal::new(4_000, 2));
        let expected =
            vec![("buyer".to_string(), "40.00".to_string()), ("b".into(), "-40.00".into())];
        assert_eq!(amounts(&refund.unwrap()), expected);
        let over = proportional("e", "USD", 2, "buyer", &positions, Decimal::new(4_001, 2));
        assert_eq!(over.unwrap_err().reason(), "refund_exceeds_event");
    }

    #[test]
    fn an_escrow_chain_has_no_single_payer_and_legs_name_the_parts() {
        let chain = [
            posting(&[("buyer", -10_000), ("escrow", 10_000)]),
            posting(&[("escrow", -9_000), ("seller", 9_000)]),
            posting(&[("escrow", -1_000), ("market", 1_000)]),
        ];
        assert_eq!(single_payer(&chain), None);
        let positions = net_positions(&chain, &[]);
        let leg = RefundLeg { account_id: "seller".into(), amount: Decimal::new(500, 2), to: None };
        let refund = by_legs("e", "USD", &positions, &[leg]).unwrap();
        let expected =
            vec![("seller".to_string(), "-5.00".to_string()), ("buyer".into(), "5.00".into())];
        assert_eq!(amounts(&refund), expected);
        let escrow = RefundLeg { account_id: "escrow".into(), amount: Decimal::ONE, to: None };
        assert_eq!(
            by_legs("e", "USD", &positions, &[escrow]).unwrap_err().reason(),
            "refund_partial_unsupported"
        );
        let too_much =
            RefundLeg { account_id: "market".into(), amount: Decimal::new(1_001, 2), to: None };
        assert_eq!(
            by_legs("e", "USD", &positions, &[too_much]).unwrap_err().reason(),
            "refund_exceeds_event"
        );
    }

    #[test]
    fn legs_give_a_payer_back_at_most_what_it_paid() {
        let pays =
            [posting(&[("x", -1_000), ("b", 1_000)]), posting(&[("y", -9_000), ("b", 9_000)])];
        let positions = net_positions(&pays, &[]);
        let leg = |amount: i64, to: &str| RefundLeg {
            account_id: "b".into(),
            amount: Decimal::new(amount, 2),
            to: Some(to.into()),
        };
        assert!(by_legs("e", "USD", &positions, &[leg(1_000, "x"), leg(9_000, "y")]).is_ok());
        let too_much = by_legs("e", "USD", &positions, &[leg(10_000, "x")]);
        assert_eq!(too_much.unwrap_err().reason(), "refund_exceeds_event");
        let split = by_legs("e", "USD", &positions, &[leg(600, "x"), leg(600, "x")]);
        assert_eq!(split.unwrap_err().reason(), "refund_exceeds_event");
    }
}
