//! A registered currency: its code and how many decimals its amounts may have.

use crate::error::CteError;
use crate::limits::{CURRENCY_CODE_CHARS_MAX, CURRENCY_CODE_CHARS_MIN, CURRENCY_SCALE_MAX};

/// A currency code checked for shape and a scale checked for range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency {
    code: String,
    scale: u32,
}

impl Currency {
    /// Checks a code and a scale as given by a caller (the scale as SQL's `int`).
    pub fn new(code: &str, scale: i64) -> Result<Currency, CteError> {
        let code = Currency::parse_code(code)?;
        let scale_valid = u32::try_from(scale).ok().filter(|s| *s <= CURRENCY_SCALE_MAX);
        let scale = scale_valid
            .ok_or(CteError::CurrencyScaleInvalid { scale, scale_max: CURRENCY_SCALE_MAX })?;
        // Every amount of it then fits `Decimal` exactly (limits.rs relates the two bounds).
        assert!(scale <= CURRENCY_SCALE_MAX);
        assert!(code.len() <= CURRENCY_CODE_CHARS_MAX);
        Ok(Currency { code, scale })
    }

    /// Checks a currency code's shape: 3 to 12 characters, uppercase ASCII letters and digits,
    /// starting with a letter (`USD`, `BTC`, `USDC`, `POINTS1`).
    pub fn parse_code(code: &str) -> Result<String, CteError> {
        let invalid = |why| CteError::IdentifierInvalid {
            what: "currency code",
            value: code.to_string(),
            why,
        };
        let chars = code.chars().count();
        if !(CURRENCY_CODE_CHARS_MIN..=CURRENCY_CODE_CHARS_MAX).contains(&chars) {
            return Err(invalid("a currency code has 3 to 12 characters"));
        }
        let starts_with_letter = code.starts_with(|c: char| c.is_ascii_uppercase());
        let all_allowed = code.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !starts_with_letter || !all_allowed {
            return Err(invalid("a currency code is uppercase letters and digits, letter first"));
        }
        // ASCII only, so its characters are its bytes: a stored code is 3 to 12 bytes.
        assert!(code.is_ascii());
        assert!((CURRENCY_CODE_CHARS_MIN..=CURRENCY_CODE_CHARS_MAX).contains(&code.len()));
        Ok(code.to_string())
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    /// Most decimals an amount of this currency may have.
    pub fn scale(&self) -> u32 {
        self.scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_iso_and_longer_codes() {
        assert_eq!(Currency::new("USD", 2).unwrap().scale(), 2);
        assert_eq!(Currency::new("JPY", 0).unwrap().scale(), 0);
        assert_eq!(Currency::new("USDC", 6).unwrap().code(), "USDC");
        assert_eq!(Currency::new("POINTS12ABCD", 12).unwrap().scale(), 12);
    }

    #[test]
    fn rejects_badly_shaped_codes() {
        for code in ["", "US", "usd", "U$D", "1USD", "USD ", " USD", "TOOLONGCODE13", "ÜSD"] {
            let error = Currency::new(code, 2).unwrap_err();
            assert_eq!(error.reason(), "identifier_invalid", "{code:?}");
        }
    }

    #[test]
    fn rejects_scales_out_of_range() {
        for scale in [-1, 13, i64::from(i32::MAX), i64::from(i32::MIN)] {
            let error = Currency::new("USD", scale).unwrap_err();
            assert_eq!(error, CteError::CurrencyScaleInvalid { scale, scale_max: 12 });
        }
    }
}
