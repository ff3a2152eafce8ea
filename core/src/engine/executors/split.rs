//! `wallet.split` (SPEC §11): one posting that debits the source once and credits each leg.
//!
//! Legs give an `amount` or a `percent` (0 to 100) of the split's amount. Percent legs share
//! their part in minor units by largest remainder, ties to the earlier leg, so the parts are
//! exact; what the legs leave goes to `remainder_account_id`, and a split whose legs leave
//! something with no remainder account, or take more than the amount, is refused. Checked when
//! the step is added; compensated and refunded as the one posting it is.

use rust_decimal::Decimal;
use serde_json::value::RawValue;

use super::fields::Fields;
use super::CurrencyBook;
use crate::error::CteError;
use crate::ledger::refund::largest_remainder;
use crate::ledger::{AccountId, Posting};
use crate::limits::SPLIT_LEGS_MAX;
use crate::money::{Amount, Currency};

const SPLIT_FIELDS: [&str; 7] = [
    "source_account_id",
    "currency",
    "amount",
    "legs",
    "remainder_account_id",
    "reference",
    "description",
];
const LEG_FIELDS: [&str; 3] = ["account_id", "amount", "percent"];
const STEP_TYPE: &str = "wallet.split";

/// One leg as given: its account and either an amount or a percent of the split.
enum Share {
    Amount(Decimal),
    Percent(Decimal),
}

pub(super) fn plan(payload: &RawValue, book: &CurrencyBook) -> Result<Vec<Posting>, CteError> {
    let fields = Fields::new(STEP_TYPE, payload, &SPLIT_FIELDS)?;
    let source = fields.account("source_account_id")?;
    let currency = fields.currency("currency", book)?;
    let amount = fields.amount("amount", &currency)?;
    fields.reference()?;
    fields.description()?;
    let remainder_account = match fields.has("remainder_account_id") {
        true => Some(fields.account("remainder_account_id")?),
        false => None,
    };
    let raw_legs = fields.array("legs")?;
    if raw_legs.is_empty() || raw_legs.len() > SPLIT_LEGS_MAX {
        return Err(fields.invalid(format!("legs must name 1 to {SPLIT_LEGS_MAX} accounts")));
    }
    let legs = raw_legs
        .iter()
        .enumerate()
        .map(|(index, raw)| leg(index + 1, raw, &currency))
        .collect::<Result<Vec<(AccountId, Share)>, CteError>>()?;
    let parts = shares(&legs, &amount, &currency)?;
    let scale = currency.scale();
    let credits = with_remainder(&fields, &legs, parts, (&amount, scale), remainder_account)?;
    let mut accounts: Vec<&str> = credits.iter().map(|(account, _)| account.as_str()).collect();
    accounts.sort_unstable();
    if accounts.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(fields.invalid("each account may be credited once (legs and remainder)".into()));
    }
    // `with_remainder` refused a split that leaves something unassigned: at least one credit.
    assert!(!credits.is_empty());
    assert!(credits.len() <= legs.len() + 1);
    Ok(vec![Posting::split(&source, &credits, &amount)?])
}

fn leg(
    position: usize,
    raw: &RawValue,
    currency: &Currency,
) -> Result<(AccountId, Share), CteError> {
    let fields = Fields::new(STEP_TYPE, raw, &LEG_FIELDS)?;
    let account = fields.account("account_id")?;
    let share = match (fields.has("amount"), fields.has("percent")) {
        (true, false) => Share::Amount(fields.amount("amount", currency)?.value()),
        (false, true) => Share::Percent(percent(&fields)?),
        _ => {
            return Err(fields
                .invalid(format!("leg {position} must give either \"amount\" or \"percent\"")))
        }
    };
    Ok((account, share))
}

fn percent(fields: &Fields) -> Result<Decimal, CteError> {
    let text = match fields.value("percent")? {
        serde_json::Value::Number(number) => number.to_string(),
        serde_json::Value::String(text) => text,
        _ => return Err(fields.invalid("\"percent\" must be a number from 0 to 100".into())),
    };
    let value = Decimal::from_str_exact(&text)
        .map_err(|_| fields.invalid(format!("\"percent\" {text} is not a number from 0 to 100")))?;
    if value.is_sign_negative() || value > Decimal::ONE_HUNDRED || value.scale() > 5 {
        return Err(fields.invalid(format!(
            "\"percent\" {text} is not between 0 and 100 with at most 5 decimals"
        )));
    }
    // What `percent_weight` takes as exact.
    assert!(value.scale() <= 5);
    assert!(value <= Decimal::ONE_HUNDRED);
    Ok(value)
}

/// Each leg's part in minor units: amounts as given, percents by largest remainder.
fn shares(
    legs: &[(AccountId, Share)],
    amount: &Amount,
    currency: &Currency,
) -> Result<Vec<i128>, CteError> {
    let scale = currency.scale();
    let units = |value: Decimal| {
        let mut scaled = value;
        scaled.rescale(scale);
        scaled.mantissa()
    };
    let total = units(amount.value());
    // Exact percent shares are total * percent / 100; their weights are the percents in
    // hundredths of a thousandth, enough for any percent with up to 5 decimals.
    let weights: Vec<i128> = legs
        .iter()
        .map(|(_, share)| match share {
            Share::Percent(percent) => percent_weight(*percent),
            Share::Amount(_) => 0,
        })
        .collect();
    let weight_sum: i128 = weights.iter().sum();
    // The percent legs take their exact shares' sum, rounded half up to the minor unit; the
    // largest remainder then puts each leg next to its exact share.
    let denominator = 100 * PERCENT_SCALE;
    let percent_part = total
        .checked_mul(weight_sum)
        .and_then(|product| product.checked_add(denominator / 2))
        .map(|product| product / denominator)
        .ok_or_else(|| CteError::AmountTooLarge {
            amount: amount.to_string(),
            integer_digits_max: crate::limits::AMOUNT_INTEGER_DIGITS_MAX,
        })?;
    let too_large = || CteError::AmountTooLarge {
        amount: amount.to_string(),
        integer_digits_max: crate::limits::AMOUNT_INTEGER_DIGITS_MAX,
    };
    let mut parts = if weight_sum > 0 {
        largest_remainder(percent_part, &weights).ok_or_else(too_large)?
    } else {
        vec![0; legs.len()]
    };
    for (part, (_, share)) in parts.iter_mut().zip(legs) {
        if let Share::Amount(value) = share {
            *part = units(*value);
        }
    }
    // A part per leg, none negative (amounts are positive, percent shares are at least 0).
    assert_eq!(parts.len(), legs.len());
    assert!(parts.iter().all(|part| *part >= 0));
    Ok(parts)
}

/// Percents are weighed in units of 1/100000 of a percent.
const PERCENT_SCALE: i128 = 100_000;

fn percent_weight(percent: Decimal) -> i128 {
    let mut scaled = percent;
    scaled.rescale(5); // at most 5 decimals: exact
    assert_eq!(scaled, percent);
    assert!((0..=100 * PERCENT_SCALE).contains(&scaled.mantissa()));
    scaled.mantissa()
}

/// The credits: each leg's part, and what is left to the remainder account.
fn with_remainder(
    fields: &Fields,
    legs: &[(AccountId, Share)],
    parts: Vec<i128>,
    (amount, scale): (&Amount, u32),
    remainder_account: Option<AccountId>,
) -> Result<Vec<(AccountId, Decimal)>, CteError> {
    let total = {
        let mut scaled = amount.value();
        scaled.rescale(scale);
        scaled.mantissa()
    };
    let taken: i128 = parts.iter().sum();
    if taken > total {
        return Err(fields.invalid(format!(
            "the legs take {}, more than the amount {amount}",
            units_text(taken, scale)
        )));
    }
    let mut credits: Vec<(AccountId, Decimal)> = legs
        .iter()
        .zip(parts)
        .filter(|(_, part)| *part > 0)
        .map(|((account, _), part)| (account.clone(), Decimal::from_i128_with_scale(part, scale)))
        .collect();
    let left = total - taken;
    // Refused above when the legs take more; each credit is a positive part.
    assert!(left >= 0);
    assert!(credits.iter().all(|(_, part)| part.is_sign_positive() && !part.is_zero()));
    match (left, remainder_account) {
        (0, _) => {}
        (_, Some(account)) => credits.push((account, Decimal::from_i128_with_scale(left, scale))),
        (_, None) => {
            return Err(fields.invalid(format!(
                "the legs leave {} of {amount} and there is no \"remainder_account_id\"",
                units_text(left, scale)
            )))
        }
    }
    // The credits share out the whole amount (`Posting::split` checks it again as it posts).
    let credited: i128 = credits.iter().map(|(_, part)| part.mantissa()).sum();
    assert_eq!(credited, total, "the legs and the remainder take the amount exactly");
    Ok(credits)
}

/// A sum of minor units as the decimal it is, for a refusal's words: legs that take more than
/// the amount may add up past what a decimal holds (eight legs of the largest amount in a
/// currency of twelve decimals), which is said so rather than panicking (0.3.0 before: an
/// internal error).
fn units_text(units: i128, scale: u32) -> String {
    match Decimal::try_from_i128_with_scale(units, scale) {
        Ok(value) => value.to_string(),
        Err(_) => "more than a decimal holds".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn book(code: &str) -> Result<Currency, CteError> {
        match code {
            "JPY" => Currency::new(code, 0),
            "XTS" => Currency::new(code, 12),
            _ => Currency::new(code, 2),
        }
    }

    #[test]
    fn legs_that_take_more_than_a_decimal_holds_are_refused_not_a_panic() {
        let largest = "9999999999999999.999999999999";
        let legs: Vec<String> =
            (0..8).map(|n| format!(r#"{{"account_id": "p{n}", "amount": "{largest}"}}"#)).collect();
        let payload = format!(
            r#"{{"source_account_id": "s", "currency": "XTS", "amount": "{largest}", "legs": [{}]}}"#,
            legs.join(", ")
        );
        let refused = credits(&payload).unwrap_err();
        assert_eq!(refused.reason(), "payload_invalid");
        assert!(refused.to_string().contains("more than a decimal holds"), "{refused}");
    }

    fn credits(payload: &str) -> Result<Vec<(String, String)>, CteError> {
        let raw: Box<RawValue> = serde_json::from_str(payload).unwrap();
        let postings = plan(&raw, &book)?;
        assert_eq!(postings.len(), 1);
        Ok(postings[0]
            .entries
            .iter()
            .map(|entry| (entry.account_id.clone(), entry.amount.to_string()))
            .collect())
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, v)| (a.to_string(), v.to_string())).collect()
    }

    #[test]
    fn percents_share_by_largest_remainder_and_the_rest_goes_to_the_remainder() {
        let got = credits(
            r#"{"source_account_id": "buyer", "currency": "USD", "amount": "10.00",
                "legs": [{"account_id": "a", "percent": 33.333}, {"account_id": "b", "percent": 33.333},
                         {"account_id": "c", "percent": 33.334}], "remainder_account_id": "r"}"#,
        );
        let expected = [("buyer", "-10.00"), ("a", "3.33"), ("b", "3.33"), ("c", "3.34")];
        assert_eq!(got.unwrap(), pairs(&expected));
        let got = credits(
            r#"{"source_account_id": "buyer", "currency": "USD", "amount": 100,
                "legs": [{"account_id": "seller", "amount": 90}, {"account_id": "market", "percent": 2.5}],
                "remainder_account_id": "platform"}"#,
        );
        let expected =
            [("buyer", "-100.00"), ("seller", "90.00"), ("market", "2.50"), ("platform", "7.50")];
        assert_eq!(got.unwrap(), pairs(&expected));
    }

    #[test]
    fn percent_legs_take_their_rounded_exact_sum_each_next_to_its_exact_share() {
        let got = credits(
            r#"{"source_account_id": "b", "currency": "USD", "amount": "100.01",
                "legs": [{"account_id": "seller", "percent": 90}, {"account_id": "market", "percent": 7.5},
                         {"account_id": "tax", "amount": "1.00"}], "remainder_account_id": "platform"}"#,
        );
        let expected = [
            ("b", "-100.01"),
            ("seller", "90.01"),
            ("market", "7.50"),
            ("tax", "1.00"),
            ("platform", "1.50"),
        ];
        assert_eq!(got.unwrap(), pairs(&expected));
    }

    #[test]
    fn ties_go_to_the_earlier_leg() {
        let got = credits(
            r#"{"source_account_id": "s", "currency": "JPY", "amount": 1,
                "legs": [{"account_id": "a", "percent": 50}, {"account_id": "b", "percent": 50}]}"#,
        );
        assert_eq!(got.unwrap(), pairs(&[("s", "-1"), ("a", "1")]));
    }

    #[test]
    fn refuses_what_does_not_add_up() {
        let reason = |payload: &str| credits(payload).unwrap_err().reason();
        let over = r#"{"source_account_id": "s", "currency": "USD", "amount": 10,
            "legs": [{"account_id": "a", "amount": 8}, {"account_id": "b", "percent": 30}], "remainder_account_id": "r"}"#;
        assert_eq!(reason(over), "payload_invalid");
        let short = r#"{"source_account_id": "s", "currency": "USD", "amount": 10,
            "legs": [{"account_id": "a", "amount": 8}]}"#;
        assert_eq!(reason(short), "payload_invalid");
        let both = r#"{"source_account_id": "s", "currency": "USD", "amount": 10,
            "legs": [{"account_id": "a", "amount": 8, "percent": 10}], "remainder_account_id": "r"}"#;
        assert_eq!(reason(both), "payload_invalid");
        let bad_percent = r#"{"source_account_id": "s", "currency": "USD", "amount": 10,
            "legs": [{"account_id": "a", "percent": 101}], "remainder_account_id": "r"}"#;
        assert_eq!(reason(bad_percent), "payload_invalid");
        let cents = r#"{"source_account_id": "s", "currency": "USD", "amount": 10,
            "legs": [{"account_id": "a", "amount": 1.001}], "remainder_account_id": "r"}"#;
        assert_eq!(reason(cents), "amount_scale_exceeded");
        let to_itself = r#"{"source_account_id": "s", "currency": "USD", "amount": 10,
            "legs": [{"account_id": "s", "amount": 10}]}"#;
        assert_eq!(reason(to_itself), "same_account");
    }
}
