//! `wallet.exchange`: sell one currency, buy another at a given rate, with an optional fee.
//!
//! Postings, in order: the source currency from the source account into `@exchange`; the
//! destination currency (source × rate, rounded half-to-even to its scale) from `@exchange` to
//! the destination account; and, if a fee is given, the fee from the source account to the fee
//! account. Each posting balances in its own currency, so every currency still sums to zero.

use serde_json::value::RawValue;

use super::fields::Fields;
use super::CurrencyBook;
use crate::error::CteError;
use crate::ledger::Posting;
use crate::money::convert;

const EXCHANGE_FIELDS: [&str; 12] = [
    "source_account_id",
    "source_currency",
    "source_amount",
    "destination_account_id",
    "destination_currency",
    "exchange_rate",
    "reference",
    "description",
    "fee_account_id",
    "fee_amount",
    "fee_currency",
    "destination_amount",
];

pub(super) fn plan(payload: &RawValue, book: &CurrencyBook) -> Result<Vec<Posting>, CteError> {
    let fields = Fields::new("wallet.exchange", payload, &EXCHANGE_FIELDS)?;
    let source = fields.account("source_account_id")?;
    let destination = fields.account("destination_account_id")?;
    let source_currency = fields.currency("source_currency", book)?;
    let destination_currency = fields.currency("destination_currency", book)?;
    if source_currency == destination_currency {
        return Err(fields.invalid("source and destination currencies are the same".into()));
    }
    let source_amount = fields.amount("source_amount", &source_currency)?;
    let rate = fields.rate("exchange_rate")?;
    let destination_amount = convert(&source_amount, &rate, &destination_currency)?;
    if fields.has("destination_amount") {
        // A caller may state the amount it expects; a mismatch is refused, never adjusted.
        let stated = fields.amount("destination_amount", &destination_currency)?;
        if stated != destination_amount {
            return Err(fields.invalid(format!(
                "destination_amount {stated} differs from {destination_amount} (source × rate, rounded half-to-even)"
            )));
        }
    }
    fields.reference()?;
    fields.description()?;
    let mut postings = vec![
        Posting::exchange_leg(&source, &source_amount, true)?,
        Posting::exchange_leg(&destination, &destination_amount, false)?,
    ];
    // Each currency's side balances on its own, through `@exchange`: the source amount in, the
    // converted one (as stated, if it was) out.
    assert_eq!(postings[0].currency, source_currency.code());
    assert_eq!(postings[1].currency, destination_currency.code());
    assert_eq!(postings[0].moved(), source_amount.value());
    assert_eq!(postings[1].moved(), destination_amount.value());
    if let Some(fee) = fee(&fields, &source, &source_currency, book)? {
        postings.push(fee);
    }
    Ok(postings)
}

/// The fee posting: `fee_amount` and `fee_account_id` together, or neither; `fee_currency`
/// defaults to the source currency.
fn fee(
    fields: &Fields,
    payer: &crate::ledger::AccountId,
    source_currency: &crate::money::Currency,
    book: &CurrencyBook,
) -> Result<Option<Posting>, CteError> {
    match (fields.has("fee_amount"), fields.has("fee_account_id")) {
        (false, false) => {
            if fields.has("fee_currency") {
                return Err(fields.invalid("fee_currency given without fee_amount".into()));
            }
            Ok(None)
        }
        (true, true) => {
            let fee_account = fields.account("fee_account_id")?;
            let currency = if fields.has("fee_currency") {
                fields.currency("fee_currency", book)?
            } else {
                source_currency.clone()
            };
            let amount = fields.amount("fee_amount", &currency)?;
            let posting = Posting::fee(payer, &fee_account, &amount)?;
            assert_eq!(posting.currency, currency.code());
            assert_eq!(posting.moved(), amount.value());
            Ok(Some(posting))
        }
        (true, false) | (false, true) => {
            Err(fields.invalid("fee_amount and fee_account_id go together".into()))
        }
    }
}
