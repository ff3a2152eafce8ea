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
