//! Money is `rust_decimal::Decimal`, never a float, on the way in and on the way out.
//!
//! Every amount argument of this client is a `Decimal` (no function takes an `f32` or `f64`),
//! `numeric` columns come back as `Decimal`, and JSON is read with serde_json's
//! `arbitrary_precision`, so a number keeps its text and `100.50` never passes through a float.
//! Amounts put in JSON (payloads, results, metadata) go as decimal strings, which the ledger
//! reads exactly. Nothing here runs SQL.

use rust_decimal::Decimal;
use serde_json::Value;

use crate::error::{Error, Result};

/// `amount` as a JSON value for a payload, a result or metadata: its decimal string.
pub fn to_json(amount: Decimal) -> Value {
    Value::String(amount.to_string())
}

/// The exact amount a JSON value holds: a number (its text, never a float) or a decimal string.
pub fn from_json(value: &Value) -> Result<Decimal> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
            return Err(Error::Unexpected(format!("{value} is not an amount")));
        }
    };
    parse(&text)
}

/// The exact amount `text` writes (`12.30`, `1e3`), or [`Error::Unexpected`].
pub fn parse(text: &str) -> Result<Decimal> {
    Decimal::from_str_exact(text)
        .or_else(|_| Decimal::from_scientific(text))
        .map_err(|error| Error::Unexpected(format!("{text:?} is not an exact decimal: {error}")))
}

/// The amount at `key` of a JSON object, exactly (see [`from_json`]).
pub fn field(object: &Value, key: &str) -> Result<Decimal> {
    match object.get(key) {
        Some(value) => from_json(value),
        None => Err(Error::Unexpected(format!("{object} has no {key:?}"))),
    }
}

/// JSON text parsed with every number kept as written (serde_json `arbitrary_precision`).
pub fn parse_json(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|error| Error::Unexpected(format!("json: {error}")))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn json_numbers_are_read_from_their_text() {
        let value = parse_json(r#"{"a": 0.1, "b": 0.2, "big": 12345678901234567.891}"#).unwrap();
        let sum = field(&value, "a").unwrap().checked_add(field(&value, "b").unwrap()).unwrap();
        assert_eq!(sum, Decimal::from_str("0.3").unwrap());
        assert_eq!(field(&value, "big").unwrap().to_string(), "12345678901234567.891");
        assert_eq!(value["big"].to_string(), "12345678901234567.891", "the text is kept");
    }

    #[test]
    fn amounts_go_as_strings_and_keep_their_scale() {
        let amount = Decimal::from_str("100.50").unwrap();
        assert_eq!(to_json(amount), Value::String("100.50".into()));
        assert_eq!(from_json(&to_json(amount)).unwrap().to_string(), "100.50");
        assert!(from_json(&Value::Bool(true)).is_err());
        assert!(parse("ten").is_err());
        assert_eq!(parse("1e3").unwrap(), Decimal::from(1000));
    }
}
