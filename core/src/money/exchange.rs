//! The one place money is rounded: converting an amount at an exchange rate.
//!
//! Rule: the destination amount is `source × rate`, computed exactly in integers, then rounded to
//! the destination currency's scale half-to-even (banker's rounding: 0.125 → 0.12, 0.135 → 0.14),
//! so repeated conversions carry no upward or downward bias. A result that rounds to zero is
//! refused. The rule is deterministic: the same inputs give the same output on every machine.

use rust_decimal::Decimal;
use serde_json::Value;

use super::amount::DecimalText;
use super::{Amount, Currency};
use crate::error::CteError;
use crate::limits::{CURRENCY_SCALE_MAX, RATE_DIGITS_MAX, RATE_SCALE_MAX};

/// A positive exchange rate with at most `RATE_DIGITS_MAX` significant digits and
/// `RATE_SCALE_MAX` decimals, which keeps `amount × rate` exact in an `i128`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    value: Decimal,
}

impl Rate {
    pub fn parse(text: &str) -> Result<Rate, CteError> {
        let invalid = |why| CteError::RateInvalid { rate: text.to_string(), why };
        let number = DecimalText::parse(text)?;
        if number.is_zero() || number.negative {
            return Err(invalid("a rate must be greater than zero"));
        }
        if number.decimals() > RATE_SCALE_MAX {
            return Err(invalid("a rate has at most 18 decimals"));
        }
        // More integer digits than a rate's significant digits: refused before it is read into
        // a Decimal, which one of 29 digits or more does not fit (0.3.0 before: an assertion,
        // XX000). Any such rate is at least 10^10, which the significant digits refuse anyway.
        if number.integer_digits() > RATE_DIGITS_MAX {
            return Err(invalid("a rate has at most 10 significant digits"));
        }
        let value = number.to_decimal().normalize();
        if value.mantissa() >= 10i128.pow(RATE_DIGITS_MAX) {
            return Err(invalid("a rate has at most 10 significant digits"));
        }
        // What `convert` relies on to stay exact in an i128 (it checks it again).
        assert!(value.is_sign_positive());
        assert!(!value.is_zero());
        assert!(value.scale() <= RATE_SCALE_MAX);
        Ok(Rate { value })
    }

    pub fn from_json(value: &Value) -> Result<Rate, CteError> {
        match value {
            Value::Number(number) => Rate::parse(&number.to_string()),
            Value::String(text) => Rate::parse(text),
            Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
                Err(CteError::AmountMalformed { text: value.to_string() })
            }
        }
    }

    pub fn value(&self) -> Decimal {
        self.value
    }
}

/// Converts `source` at `rate` into `destination`, rounding half-to-even to its scale.
pub fn convert(source: &Amount, rate: &Rate, destination: &Currency) -> Result<Amount, CteError> {
    let source_value = source.value();
    // A rate as `Rate::parse` made it, an amount as `Amount` holds it: their product is exact.
    assert!(rate.value.mantissa() > 0);
    assert!(rate.value.mantissa() < 10i128.pow(RATE_DIGITS_MAX));
    assert!(rate.value.scale() <= RATE_SCALE_MAX);
    assert!(source_value.mantissa() > 0);
    let product = source_value.mantissa().checked_mul(rate.value.mantissa());
    assert!(product.is_some(), "limits keep amount × rate inside i128");
    let product = product.unwrap_or_default();
    let product_scale = source_value.scale() + rate.value.scale();
    let rounded = round_half_even(product, product_scale, destination.scale());
    if rounded == 0 {
        return Err(CteError::AmountNotPositive {
            amount: format!(
                "{source} {} at rate {} (rounds to 0 {})",
                source.currency(),
                rate.value,
                destination.code()
            ),
        });
    }
    let converted = Amount::from_mantissa(rounded, destination);
    if let Ok(converted) = &converted {
        assert_eq!(converted.currency(), destination.code());
        assert_eq!(converted.value().scale(), destination.scale());
    }
    converted
}

/// Rounds the non-negative fixed-point number `mantissa × 10^-scale_from` to `scale_to`
/// decimals, half to even, and returns the new mantissa.
fn round_half_even(mantissa: i128, scale_from: u32, scale_to: u32) -> i128 {
    assert!(mantissa >= 0);
    // An amount's scale plus a rate's: the powers of ten below fit an i128.
    assert!(scale_from <= CURRENCY_SCALE_MAX + RATE_SCALE_MAX);
    assert!(scale_to <= CURRENCY_SCALE_MAX);
    if scale_to >= scale_from {
        let factor = 10i128.pow(scale_to - scale_from);
        return mantissa * factor;
    }
    let divisor = 10i128.pow(scale_from - scale_to);
    let quotient = mantissa / divisor;
    let remainder = mantissa % divisor;
    let twice = remainder * 2;
    let round_up = twice > divisor || (twice == divisor && quotient % 2 == 1);
    let rounded = if round_up { quotient + 1 } else { quotient };
    // Rounded to the nearest: off by less than one unit of the new scale, never negative.
    assert!(rounded >= 0);
    assert!(remainder < divisor);
    rounded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn currency(code: &str, scale: i64) -> Currency {
        Currency::new(code, scale).unwrap()
    }

    #[test]
    fn a_rate_too_large_for_a_decimal_is_refused_not_a_panic() {
        for text in ["1e30", "12345678901234567890123456789012", "99999999999"] {
            let refused = Rate::parse(text);
            assert!(matches!(refused, Err(CteError::RateInvalid { .. })), "{text}: {refused:?}");
        }
        assert!(Rate::parse("9999999999").is_ok(), "ten digits are a rate");
    }

    fn convert_text(amount: &str, from: &Currency, rate: &str, to: &Currency) -> String {
        let amount = Amount::parse(amount, from).unwrap();
        convert(&amount, &Rate::parse(rate).unwrap(), to).unwrap().to_string()
    }

    #[test]
    fn converts_exactly_when_no_rounding_is_needed() {
        let (usd, eur) = (currency("USD", 2), currency("EUR", 2));
        assert_eq!(convert_text("100.00", &usd, "0.85", &eur), "85.00");
        assert_eq!(convert_text("100", &usd, "1", &eur), "100.00");
    }

    #[test]
    fn rounds_half_to_even() {
        let (usd, eur) = (currency("USD", 2), currency("EUR", 2));
        assert_eq!(convert_text("0.25", &usd, "0.5", &eur), "0.12"); // 0.125 -> 0.12
        assert_eq!(convert_text("0.27", &usd, "0.5", &eur), "0.14"); // 0.135 -> 0.14
        assert_eq!(convert_text("1.00", &usd, "0.333", &eur), "0.33"); // 0.333 -> 0.33
        assert_eq!(convert_text("1.00", &usd, "0.336", &eur), "0.34");
        assert_eq!(convert_text("0.05", &usd, "0.3", &eur), "0.02"); // 0.015 -> 0.02
    }

    #[test]
    fn converts_between_scales() {
        let (usd, jpy, btc) = (currency("USD", 2), currency("JPY", 0), currency("BTC", 8));
        assert_eq!(convert_text("10.00", &usd, "151.235", &jpy), "1512"); // 1512.35 -> 1512
        assert_eq!(convert_text("1500", &jpy, "0.0066", &usd), "9.90");
        assert_eq!(convert_text("100.00", &usd, "0.0000153", &btc), "0.00153000");
    }

    #[test]
    fn refuses_a_result_that_rounds_to_zero() {
        let (usd, jpy) = (currency("USD", 2), currency("JPY", 0));
        let amount = Amount::parse("0.01", &usd).unwrap();
        let error = convert(&amount, &Rate::parse("1.4").unwrap(), &jpy).unwrap_err();
        assert_eq!(error.reason(), "amount_not_positive");
    }

    #[test]
    fn refuses_a_result_beyond_the_amount_limit() {
        let usd = currency("USD", 2);
        let amount = Amount::parse("9999999999999999", &usd).unwrap();
        let error = convert(&amount, &Rate::parse("10").unwrap(), &usd).unwrap_err();
        assert_eq!(error.reason(), "amount_too_large");
    }

    #[test]
    fn the_largest_inputs_stay_exact() {
        let fine = currency("FINE", 12);
        let amount = Amount::parse("9999999999999999.999999999999", &fine).unwrap();
        let rate = Rate::parse("0.000000009999999999").unwrap();
        let result = convert(&amount, &rate, &fine).unwrap();
        assert_eq!(result.to_string(), "99999999.990000000000");
    }

    #[test]
    fn refuses_bad_rates() {
        for text in ["0", "-1", "0.0000000000000000001", "12345678901"] {
            assert_eq!(Rate::parse(text).unwrap_err().reason(), "rate_invalid", "{text}");
        }
        assert_eq!(Rate::parse("NaN").unwrap_err().reason(), "amount_not_finite");
        assert_eq!(Rate::parse("1.2345678901").unwrap_err().reason(), "rate_invalid");
        assert!(Rate::parse("1.234567890").is_ok());
    }
}
