//! `wallet.transfer`, `wallet.deposit` and `wallet.withdrawal`: one posting each.

use serde_json::value::RawValue;

use super::fields::Fields;
use super::CurrencyBook;
use crate::error::CteError;
use crate::ledger::{AccountId, Posting};
use crate::money::Amount;

const TRANSFER_FIELDS: [&str; 6] = [
    "source_account_id",
    "destination_account_id",
    "amount",
    "currency",
    "reference",
    "description",
];
const ACCOUNT_FIELDS: [&str; 5] = ["account_id", "amount", "currency", "reference", "description"];

pub(super) fn transfer(payload: &RawValue, book: &CurrencyBook) -> Result<Vec<Posting>, CteError> {
    let fields = Fields::new("wallet.transfer", payload, &TRANSFER_FIELDS)?;
    let source = fields.account("source_account_id")?;
    let destination = fields.account("destination_account_id")?;
    let currency = fields.currency("currency", book)?;
    let amount = fields.amount("amount", &currency)?;
    fields.reference()?;
    fields.description()?;
    let posting = Posting::transfer(&source, &destination, &amount)?;
    // The posting moves exactly the amount read, in the currency read.
    assert_eq!(posting.currency, currency.code());
    assert_eq!(posting.moved(), amount.value());
    Ok(vec![posting])
}

pub(super) fn deposit(payload: &RawValue, book: &CurrencyBook) -> Result<Vec<Posting>, CteError> {
    one_account("wallet.deposit", payload, book, Posting::deposit)
}

pub(super) fn withdrawal(
    payload: &RawValue,
    book: &CurrencyBook,
) -> Result<Vec<Posting>, CteError> {
    one_account("wallet.withdrawal", payload, book, Posting::withdrawal)
}

/// A step on one wallet and the outside world: the same payload, another posting.
fn one_account(
    step_type: &str,
    payload: &RawValue,
    book: &CurrencyBook,
    posting: fn(&AccountId, &Amount) -> Result<Posting, CteError>,
) -> Result<Vec<Posting>, CteError> {
    let fields = Fields::new(step_type, payload, &ACCOUNT_FIELDS)?;
    let account = fields.account("account_id")?;
    let currency = fields.currency("currency", book)?;
    let amount = fields.amount("amount", &currency)?;
    fields.reference()?;
    fields.description()?;
    let posting = posting(&account, &amount)?;
    assert_eq!(posting.currency, currency.code());
    assert_eq!(posting.moved(), amount.value());
    Ok(vec![posting])
}
