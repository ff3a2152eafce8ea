//! `wallet.transfer`, `wallet.deposit` and `wallet.withdrawal`: one posting each.

use serde_json::Value;

use super::fields::Fields;
use super::CurrencyBook;
use crate::error::CteError;
use crate::ledger::Posting;

const TRANSFER_FIELDS: [&str; 6] = [
    "source_account_id",
    "destination_account_id",
    "amount",
    "currency",
    "reference",
    "description",
];
const ACCOUNT_FIELDS: [&str; 5] = ["account_id", "amount", "currency", "reference", "description"];

pub(super) fn transfer(payload: &Value, book: &CurrencyBook) -> Result<Vec<Posting>, CteError> {
    let fields = Fields::new("wallet.transfer", payload, &TRANSFER_FIELDS)?;
    let source = fields.account("source_account_id")?;
    let destination = fields.account("destination_account_id")?;
    let currency = fields.currency("currency", book)?;
    let amount = fields.amount("amount", &currency)?;
    fields.reference()?;
    fields.description()?;
    Ok(vec![Posting::transfer(&source, &destination, &amount)?])
}

pub(super) fn deposit(payload: &Value, book: &CurrencyBook) -> Result<Vec<Posting>, CteError> {
    let fields = Fields::new("wallet.deposit", payload, &ACCOUNT_FIELDS)?;
    let account = fields.account("account_id")?;
    let currency = fields.currency("currency", book)?;
    let amount = fields.amount("amount", &currency)?;
    fields.reference()?;
    fields.description()?;
    Ok(vec![Posting::deposit(&account, &amount)?])
}

pub(super) fn withdrawal(payload: &Value, book: &CurrencyBook) -> Result<Vec<Posting>, CteError> {
    let fields = Fields::new("wallet.withdrawal", payload, &ACCOUNT_FIELDS)?;
    let account = fields.account("account_id")?;
    let currency = fields.currency("currency", book)?;
    let amount = fields.amount("amount", &currency)?;
    fields.reference()?;
    fields.description()?;
    Ok(vec![Posting::withdrawal(&account, &amount)?])
}
