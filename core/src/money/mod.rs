//! Money: currencies with a scale, and amounts that are exact in that scale.
//!
//! An [`Amount`] is made only by a parser that knows its [`Currency`], so a value of this type is
//! always positive, finite, within limits and within the currency's scale. No float is used
//! anywhere: amounts are read from their decimal text.

mod amount;
mod currency;
mod exchange;

pub use amount::Amount;
pub use currency::Currency;
pub use exchange::{convert, Rate};

use rust_decimal::Decimal;

/// `a + b`, exactly, or `None`. `Decimal::checked_add` returns `None` only past its largest
/// value: a sum that needs more than its 96-bit mantissa at the operands' scale is *rounded*
/// to fewer decimals (9999999999999999.999999999999 × 8 loses its last decimal). A wallet's
/// balance grows without bound, so its arithmetic goes through here: a sum that would be
/// rounded is refused instead.
pub fn exact_add(a: Decimal, b: Decimal) -> Option<Decimal> {
    let sum = exact(a.checked_add(b)?, a, b);
    // Exact means reversible: taking `b` back off gives `a` again, to the last decimal.
    assert!(sum.is_none_or(|sum| sum.checked_sub(b) == Some(a)), "{a} + {b} was rounded");
    sum
}

/// `a - b`, exactly, or `None` (see [`exact_add`]).
pub fn exact_sub(a: Decimal, b: Decimal) -> Option<Decimal> {
    let difference = exact(a.checked_sub(b)?, a, b);
    assert!(difference.is_none_or(|d| d.checked_add(b) == Some(a)), "{a} - {b} was rounded");
    difference
}

/// `result` if nothing of `a` and `b`'s decimals was rounded away. A rounded result has fewer
/// decimals than its operands (rust_decimal drops decimals to fit); a zero result may come back
/// with none, but is exact (rounding happens only far from zero, where the mantissa is full).
fn exact(result: Decimal, a: Decimal, b: Decimal) -> Option<Decimal> {
    (result.is_zero() || result.scale() >= a.scale().max(b.scale())).then_some(result)
}

#[cfg(test)]
mod exact_tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn a_sum_decimal_would_round_is_refused() {
        let big = d("7922816251426433759354395033.5");
        assert_eq!(big.checked_add(d("0.01")), Some(big), "what rust_decimal does by itself");
        assert_eq!(exact_add(big, d("0.01")), None);
        assert_eq!(exact_sub(big, d("0.01")), None);
        let max_amount = d("9999999999999999.999999999999"); // 16 digits, scale 12
        let seven = (1..7).try_fold(max_amount, |sum, _| exact_add(sum, max_amount));
        assert_eq!(seven, Some(d("69999999999999999.999999999993")), "still exact");
        assert_eq!(exact_add(seven.unwrap(), max_amount), None, "the eighth would round");
    }

    #[test]
    fn exact_sums_keep_every_decimal() {
        assert_eq!(exact_add(d("0.10"), d("0.2")), Some(d("0.30")));
        assert_eq!(exact_add(d("0.10"), d("0.2")).map(|sum| sum.scale()), Some(2));
        assert_eq!(exact_sub(d("1.000"), d("0.001")), Some(d("0.999")));
        assert_eq!(exact_sub(d("-5"), d("5")), Some(d("-10")));
    }
}
