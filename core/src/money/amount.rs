//! Exact amounts, parsed from decimal text (SQL `numeric` output, JSON number text, JSON strings).

use rust_decimal::Decimal;
use serde_json::Value;

use super::Currency;
use crate::error::CteError;
use crate::limits::{
    AMOUNT_EXPONENT_MAX, AMOUNT_INTEGER_DIGITS_MAX, AMOUNT_TEXT_BYTES_MAX, DECIMAL_DIGITS_MAX,
};

/// A positive amount of one currency, held at exactly that currency's scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    value: Decimal,
    currency: String,
}

impl Amount {
    /// Parses decimal text into an amount of `currency`. Accepts an optional sign, digits, an
    /// optional fraction and an optional exponent (JSON allows `1e2`); trailing zeros beyond the
    /// scale are fine (`10.100` USD is 10.10), any other excess decimal is refused, never rounded.
    pub fn parse(text: &str, currency: &Currency) -> Result<Amount, CteError> {
        let number = DecimalText::parse(text)?;
        if number.is_zero() || number.negative {
            return Err(CteError::AmountNotPositive { amount: text.to_string() });
        }
        if number.decimals() > currency.scale() {
            return Err(CteError::AmountScaleExceeded {
                amount: text.to_string(),
                decimals: number.decimals(),
                currency: currency.code().to_string(),
                scale: currency.scale(),
            });
        }
        if number.integer_digits() > AMOUNT_INTEGER_DIGITS_MAX {
            return Err(CteError::AmountTooLarge {
                amount: text.to_string(),
                integer_digits_max: AMOUNT_INTEGER_DIGITS_MAX,
            });
        }
        // What the checks above leave fits `Decimal` exactly (`to_decimal` relies on it).
        assert!(number.integer_digits() + number.decimals() <= DECIMAL_DIGITS_MAX);
        let amount = Amount::from_decimal(number.to_decimal(), currency);
        assert!(integer_digits(&amount.value) <= AMOUNT_INTEGER_DIGITS_MAX);
        Ok(amount)
    }

    /// Parses a signed figure of `currency` (a balance floor: zero, or negative for an
    /// overdraft line): its scale and size are checked like an amount's; never rounded.
    pub fn parse_signed(text: &str, currency: &Currency) -> Result<Decimal, CteError> {
        let number = DecimalText::parse(text)?;
        if number.is_zero() {
            return Ok(Decimal::new(0, currency.scale()));
        }
        let negative = number.negative;
        let magnitude = text.trim_start_matches(['-', '+']);
        let amount = Amount::parse(magnitude, currency)?;
        let figure = if negative { -amount.value() } else { amount.value() };
        assert_eq!(figure.is_sign_negative(), negative);
        assert_eq!(figure.scale(), currency.scale());
        Ok(figure)
    }

    /// Reads an amount from a JSON value: a number, taken from its text (never through a float),
    /// or a string holding decimal text.
    pub fn from_json(value: &Value, currency: &Currency) -> Result<Amount, CteError> {
        let amount = match value {
            Value::Number(number) => Amount::parse(&number.to_string(), currency),
            Value::String(text) => Amount::parse(text, currency),
            Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
                Err(CteError::AmountMalformed { text: value.to_string() })
            }
        };
        if let Ok(amount) = &amount {
            assert_eq!(amount.currency(), currency.code());
        }
        amount
    }

    /// Builds an amount from a mantissa already at the currency's scale (the exchange's result).
    pub(super) fn from_mantissa(mantissa: i128, currency: &Currency) -> Result<Amount, CteError> {
        assert!(mantissa > 0);
        let value = Decimal::try_from_i128_with_scale(mantissa, currency.scale());
        let value = value.ok().filter(|v| integer_digits(v) <= AMOUNT_INTEGER_DIGITS_MAX);
        match value {
            Some(value) => {
                assert_eq!(value.mantissa(), mantissa);
                Ok(Amount::from_decimal(value, currency))
            }
            None => Err(CteError::AmountTooLarge {
                amount: format!("{mantissa}e-{}", currency.scale()),
                integer_digits_max: AMOUNT_INTEGER_DIGITS_MAX,
            }),
        }
    }

    fn from_decimal(mut value: Decimal, currency: &Currency) -> Amount {
        assert!(value.is_sign_positive());
        assert!(!value.is_zero());
        assert!(value.scale() <= currency.scale());
        let before = value;
        value.rescale(currency.scale());
        // Widening the scale adds zeros only: the value is unchanged (28 digits hold it).
        assert_eq!(value, before);
        assert_eq!(value.scale(), currency.scale());
        Amount { value, currency: currency.code().to_string() }
    }

    /// The exact value, at the currency's scale (`100.50`, not `100.5`).
    pub fn value(&self) -> Decimal {
        self.value
    }

    pub fn currency(&self) -> &str {
        &self.currency
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.value)
    }
}

fn integer_digits(value: &Decimal) -> u32 {
    let integer = value.trunc().abs().to_string();
    let digits = if integer == "0" { 0 } else { integer.len() as u32 };
    // A `Decimal`'s 96-bit mantissa has at most 29 digits.
    assert!(digits <= DECIMAL_DIGITS_MAX + 1);
    assert!(integer.bytes().all(|byte| byte.is_ascii_digit()));
    digits
}

/// Decimal text taken apart: sign, integer digits without leading zeros, fraction digits
/// without trailing zeros. The exponent is already applied to where the point sits.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct DecimalText {
    pub(super) negative: bool,
    integer: String,
    fraction: String,
}

impl DecimalText {
    pub(super) fn parse(text: &str) -> Result<DecimalText, CteError> {
        if text.len() > AMOUNT_TEXT_BYTES_MAX {
            // Too long to read because its integer part is huge (1e308 as a numeric prints 309
            // digits): that amount is too large, which is what the caller needs to hear.
            let unsigned = text.trim_start_matches(['-', '+']);
            let integer_digits = unsigned.bytes().take_while(u8::is_ascii_digit).count();
            if integer_digits > AMOUNT_INTEGER_DIGITS_MAX as usize {
                let head: String = unsigned.chars().take(12).collect();
                return Err(CteError::AmountTooLarge {
                    amount: format!("{head}... ({integer_digits} digits)"),
                    integer_digits_max: AMOUNT_INTEGER_DIGITS_MAX,
                });
            }
            return Err(CteError::TextTooLong {
                what: "amount text",
                bytes: text.len(),
                bytes_max: AMOUNT_TEXT_BYTES_MAX,
            });
        }
        let malformed = || CteError::AmountMalformed { text: text.to_string() };
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let lowered = unsigned.to_ascii_lowercase();
        if lowered == "nan" || lowered == "infinity" || lowered == "inf" {
            return Err(CteError::AmountNotFinite { text: text.to_string() });
        }
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => {
                (&unsigned[..at], parse_exponent(&unsigned[at + 1..]).ok_or_else(malformed)?)
            }
            None => (unsigned, 0),
        };
        let (integer, fraction) = match mantissa.split_once('.') {
            Some((integer, fraction)) => (integer, fraction),
            None => (mantissa, ""),
        };
        // As PostgreSQL's numeric reads them: `100.` and `.5` are numbers, `.` is not, so an
        // amount means the same in SQL and in a JSON string.
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let has_digits = !integer.is_empty() || !fraction.is_empty();
        if !has_digits || !digits_only(integer) || !digits_only(fraction) {
            return Err(malformed());
        }
        if exponent.abs() > AMOUNT_EXPONENT_MAX {
            return Err(DecimalText::exponent_refusal(text, exponent));
        }
        let number = DecimalText::shifted(negative, integer, fraction, exponent);
        assert!(
            number.integer.len() + number.fraction.len()
                <= text.len() + exponent.unsigned_abs() as usize
        );
        Ok(number)
    }

    fn exponent_refusal(text: &str, exponent: i64) -> CteError {
        assert!(exponent.abs() > AMOUNT_EXPONENT_MAX);
        if exponent > 0 {
            CteError::AmountTooLarge {
                amount: text.to_string(),
                integer_digits_max: AMOUNT_INTEGER_DIGITS_MAX,
            }
        } else {
            CteError::AmountMalformed { text: text.to_string() }
        }
    }

    /// Moves the decimal point by `exponent` places and trims insignificant zeros.
    fn shifted(negative: bool, integer: &str, fraction: &str, exponent: i64) -> DecimalText {
        // `parse` bounded the exponent, so the zeros added below are few.
        assert!(exponent.abs() <= AMOUNT_EXPONENT_MAX);
        assert!(integer.bytes().chain(fraction.bytes()).all(|byte| byte.is_ascii_digit()));
        let digits = format!("{integer}{fraction}");
        let point = integer.len() as i64 + exponent;
        let (integer, fraction) = if point <= 0 {
            (String::new(), format!("{}{digits}", "0".repeat(point.unsigned_abs() as usize)))
        } else if point as usize >= digits.len() {
            (format!("{digits}{}", "0".repeat(point as usize - digits.len())), String::new())
        } else {
            (digits[..point as usize].to_string(), digits[point as usize..].to_string())
        };
        let number = DecimalText {
            negative,
            integer: integer.trim_start_matches('0').to_string(),
            fraction: fraction.trim_end_matches('0').to_string(),
        };
        // Insignificant zeros trimmed: `integer_digits` and `decimals` count significant ones.
        assert!(!number.integer.starts_with('0'));
        assert!(!number.fraction.ends_with('0'));
        number
    }

    pub(super) fn is_zero(&self) -> bool {
        self.integer.is_empty() && self.fraction.is_empty()
    }

    pub(super) fn decimals(&self) -> u32 {
        self.fraction.len() as u32
    }

    pub(super) fn integer_digits(&self) -> u32 {
        self.integer.len() as u32
    }

    /// The value as a `Decimal`; callers have checked it fits in 28 digits.
    pub(super) fn to_decimal(&self) -> Decimal {
        // `Amount::parse` bounds the integer digits by AMOUNT_INTEGER_DIGITS_MAX and the
        // decimals by the currency's scale, `Rate::parse` by RATE_DIGITS_MAX and RATE_SCALE_MAX.
        assert!(self.integer_digits() + self.decimals() <= DECIMAL_DIGITS_MAX);
        let integer = if self.integer.is_empty() { "0" } else { &self.integer };
        let sign = if self.negative { "-" } else { "" };
        let text = if self.fraction.is_empty() {
            format!("{sign}{integer}")
        } else {
            format!("{sign}{integer}.{}", self.fraction)
        };
        let value = Decimal::from_str_exact(&text);
        assert!(value.is_ok(), "checked decimal text {text} must fit a Decimal");
        let value = value.unwrap_or_default();
        // Exact: every decimal kept, none rounded away.
        assert_eq!(value.scale(), self.decimals());
        value
    }
}

fn parse_exponent(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let valid =
        !digits.is_empty() && digits.len() <= 6 && digits.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return None;
    }
    let magnitude: i64 = digits.parse().ok()?;
    // Six digits at most.
    assert!((0..1_000_000).contains(&magnitude));
    Some(if text.starts_with('-') { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usd() -> Currency {
        Currency::new("USD", 2).unwrap()
    }

    fn reason(text: &str, currency: &Currency) -> &'static str {
        Amount::parse(text, currency).unwrap_err().reason()
    }

    #[test]
    fn keeps_the_exact_value_at_the_currency_scale() {
        assert_eq!(Amount::parse("100.50", &usd()).unwrap().to_string(), "100.50");
        assert_eq!(Amount::parse("100.5", &usd()).unwrap().to_string(), "100.50");
        assert_eq!(Amount::parse("0.01", &usd()).unwrap().to_string(), "0.01");
        assert_eq!(Amount::parse("+7", &usd()).unwrap().to_string(), "7.00");
        let jpy = Currency::new("JPY", 0).unwrap();
        assert_eq!(Amount::parse("1500", &jpy).unwrap().to_string(), "1500");
    }

    #[test]
    fn trailing_zeros_are_not_excess_precision() {
        assert_eq!(Amount::parse("10.100", &usd()).unwrap().to_string(), "10.10");
        assert_eq!(Amount::parse("10.000000", &usd()).unwrap().to_string(), "10.00");
    }

    #[test]
    fn refuses_excess_decimals_instead_of_rounding() {
        assert_eq!(reason("10.001", &usd()), "amount_scale_exceeded");
        assert_eq!(reason("0.001", &usd()), "amount_scale_exceeded");
        let jpy = Currency::new("JPY", 0).unwrap();
        assert_eq!(reason("1.5", &jpy), "amount_scale_exceeded");
    }

    #[test]
    fn refuses_zero_negative_and_non_finite() {
        for text in ["0", "0.00", "-0", "-1", "-0.01", "-10.001"] {
            assert_eq!(reason(text, &usd()), "amount_not_positive", "{text}");
        }
        for text in ["NaN", "nan", "Infinity", "-Infinity", "+inf"] {
            assert_eq!(reason(text, &usd()), "amount_not_finite", "{text}");
        }
    }

    #[test]
    fn refuses_malformed_text() {
        for text in
            ["", "-", ".", "-.", "abc", "1..2", "1,5", " 1", "1 ", "0x10", "1e", "1e+", "١", ".e2"]
        {
            assert_eq!(reason(text, &usd()), "amount_malformed", "{text:?}");
        }
    }

    #[test]
    fn refuses_amounts_beyond_the_limits() {
        assert!(Amount::parse("9999999999999999.99", &usd()).is_ok());
        assert_eq!(reason("10000000000000000", &usd()), "amount_too_large");
        assert_eq!(reason("1e17", &usd()), "amount_too_large");
        assert_eq!(reason("1e999999", &usd()), "amount_too_large");
        assert_eq!(reason("1e9999999", &usd()), "amount_malformed");
        // Too long to read: a huge integer part is too large (1e308 as a numeric prints 309
        // digits), anything else too long.
        assert_eq!(reason(&"1".repeat(200), &usd()), "amount_too_large");
        assert_eq!(reason(&format!("1{}", "0".repeat(308)), &usd()), "amount_too_large");
        assert_eq!(reason(&format!("1.{}", "0".repeat(200)), &usd()), "text_too_long");
    }

    #[test]
    fn reads_a_point_at_either_end_as_sql_numeric_does() {
        assert_eq!(Amount::parse("100.", &usd()).unwrap().to_string(), "100.00");
        assert_eq!(Amount::parse(".5", &usd()).unwrap().to_string(), "0.50");
        assert_eq!(
            Amount::parse("-.5", &usd()).map_err(|e| e.reason()),
            Err("amount_not_positive")
        );
    }

    #[test]
    fn applies_exponents_exactly() {
        assert_eq!(Amount::parse("1e2", &usd()).unwrap().to_string(), "100.00");
        assert_eq!(Amount::parse("1.5E+3", &usd()).unwrap().to_string(), "1500.00");
        assert_eq!(Amount::parse("125e-2", &usd()).unwrap().to_string(), "1.25");
        assert_eq!(reason("125e-3", &usd()), "amount_scale_exceeded");
    }

    #[test]
    fn reads_json_numbers_from_their_text_never_a_float() {
        let payload: Value =
            serde_json::from_str(r#"{"a": 0.1, "b": 100.50, "c": "7.25"}"#).unwrap();
        assert_eq!(Amount::from_json(&payload["a"], &usd()).unwrap().to_string(), "0.10");
        let jpy = Currency::new("JPY", 0).unwrap();
        assert_eq!(
            Amount::from_json(&payload["a"], &jpy).unwrap_err().reason(),
            "amount_scale_exceeded"
        );
        let btc = Currency::new("BTC", 8).unwrap();
        assert_eq!(Amount::from_json(&payload["a"], &btc).unwrap().to_string(), "0.10000000");
        assert_eq!(Amount::from_json(&payload["b"], &usd()).unwrap().to_string(), "100.50");
        assert_eq!(Amount::from_json(&payload["c"], &usd()).unwrap().to_string(), "7.25");
        // A float would read this as 0.30000000000000004 after adding; text keeps it exact.
        let many: Value = serde_json::from_str("0.300000000001").unwrap();
        let fine = Currency::new("FINE", 12).unwrap();
        assert_eq!(Amount::from_json(&many, &fine).unwrap().to_string(), "0.300000000001");
    }

    #[test]
    fn refuses_json_values_that_are_not_amounts() {
        for value in [json!(null), json!(true), json!([1]), json!({"amount": 1})] {
            assert_eq!(Amount::from_json(&value, &usd()).unwrap_err().reason(), "amount_malformed");
        }
    }
}
