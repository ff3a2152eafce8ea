//! A transfer request: what `cte_transfer` takes and what each item of `cte_transfers` is. The
//! one builder of a transfer's step payload, so that a bulk item and a single call asking the
//! same are the same request (SPEC §9: either replays the other under its reference).

use serde_json::{json, Value};

use super::executors::CurrencyBook;
use crate::ledger::{AccountId, Metadata};
use crate::money::{Amount, Currency};
use crate::CteError;

/// The fields a `cte_transfers` item may have. Any other (a misspelt `refrence`) refuses the
/// item: posted without its key, a retry would post it again.
pub const ITEM_FIELDS: [&str; 6] =
    ["source_account_id", "destination_account_id", "amount", "currency", "reference", "metadata"];

/// A checked transfer request.
#[derive(Debug)]
pub struct TransferRequest {
    pub source: AccountId,
    pub destination: AccountId,
    pub amount: Amount,
    pub currency: Currency,
    pub reference: Option<String>,
    /// Kept on the event; not part of the request a retry must repeat (it moves nothing).
    pub metadata: Metadata,
}

impl TransferRequest {
    /// The `wallet.transfer` step's payload, as JSON text: the same request always makes the
    /// same text (the amount at its currency's scale).
    pub fn payload(&self) -> String {
        let payload = json!({
            "source_account_id": self.source.as_str(),
            "destination_account_id": self.destination.as_str(),
            "amount": self.amount.to_string(),
            "currency": self.currency.code(),
            "reference": self.reference,
        });
        assert!(payload.as_object().is_some_and(|fields| fields.len() == 5));
        payload.to_string()
    }

    /// Reads one `cte_transfers` item: a JSON object of `ITEM_FIELDS` only, each read as
    /// `cte_transfer` reads its argument (a JSON null or a missing field is SQL's NULL). Checked
    /// in `cte_transfer`'s order: the fields, the accounts, the currency, the amount, the
    /// metadata.
    pub fn from_item(
        item: &Value,
        number: usize,
        book: &CurrencyBook,
    ) -> Result<TransferRequest, CteError> {
        let invalid =
            |why: String| CteError::PayloadInvalid { step_type: "cte_transfers".to_string(), why };
        let Value::Object(fields) = item else {
            return Err(invalid(format!("item {number} is not an object")));
        };
        if let Some(field) = fields.keys().find(|field| !ITEM_FIELDS.contains(&field.as_str())) {
            return Err(invalid(format!(
                "item {number} has a field {field:?} that is not one of {}",
                ITEM_FIELDS.join(", ")
            )));
        }
        let text = |field: &'static str| fields.get(field).and_then(text_of);
        let required = |field: &'static str, argument: &'static str| {
            text(field).ok_or(CteError::NullArgument { argument })
        };
        let source = AccountId::parse(&required("source_account_id", "source")?)?;
        let destination = AccountId::parse(&required("destination_account_id", "destination")?)?;
        let currency = book(&required("currency", "currency")?)?;
        let amount = match fields.get("amount") {
            None | Some(Value::Null) => return Err(CteError::NullArgument { argument: "amount" }),
            Some(amount) => Amount::from_json(amount, &currency)?,
        };
        let metadata = fields.get("metadata").cloned();
        let bytes = metadata.as_ref().map_or(0, |metadata| metadata.to_string().len());
        let metadata = Metadata::parse(metadata, bytes)?;
        let request = TransferRequest {
            source,
            destination,
            amount,
            currency,
            reference: text("reference"),
            metadata,
        };
        assert_eq!(request.amount.currency(), request.currency.code());
        Ok(request)
    }
}

/// A field's text as SQL's `->>` gives it: a string's contents, any other value's JSON text, and
/// nothing for a JSON null.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_) => {
            Some(value.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(code: &str) -> Result<Currency, CteError> {
        match code {
            "USD" => Currency::new("USD", 2),
            _ => Err(CteError::CurrencyUnknown { currency: code.to_string() }),
        }
    }

    fn reason(item: Value) -> &'static str {
        TransferRequest::from_item(&item, 1, &book).map_or_else(|e| e.reason(), |_| "ok")
    }

    #[test]
    fn an_item_is_read_as_cte_transfer_reads_its_arguments() {
        let item = json!({"source_account_id": "a", "destination_account_id": "b",
                          "amount": "10.5", "currency": "USD", "reference": "r-1",
                          "metadata": {"order": 7}});
        let request = TransferRequest::from_item(&item, 1, &book).unwrap();
        assert_eq!(request.amount.to_string(), "10.50");
        let payload: Value = serde_json::from_str(&request.payload()).unwrap();
        assert_eq!(
            payload,
            json!({"source_account_id": "a", "destination_account_id": "b", "amount": "10.50",
                   "currency": "USD", "reference": "r-1"})
        );
        // The same request in other words (a number, a trailing zero) is the same payload.
        let same = json!({"source_account_id": "a", "destination_account_id": "b",
                          "amount": 10.500, "currency": "USD", "reference": "r-1"});
        assert_eq!(
            TransferRequest::from_item(&same, 1, &book).unwrap().payload(),
            request.payload()
        );
        let null_metadata = json!({"source_account_id": "a", "destination_account_id": "b",
                                   "amount": 1, "currency": "USD", "metadata": null});
        let request = TransferRequest::from_item(&null_metadata, 1, &book).unwrap();
        assert!(request.metadata.value().is_none() && request.reference.is_none());
    }

    #[test]
    fn every_bad_item_is_refused_with_its_reason() {
        let good = json!({"source_account_id": "a", "destination_account_id": "b",
                          "amount": "1", "currency": "USD"});
        let with = |field: &str, value: Value| {
            let mut item = good.clone();
            item[field] = value;
            item
        };
        let without = |field: &str| {
            let mut item = good.clone();
            item.as_object_mut().unwrap().remove(field);
            item
        };
        assert_eq!(reason(good.clone()), "ok");
        assert_eq!(reason(json!("x")), "payload_invalid");
        assert_eq!(reason(json!([good.clone()])), "payload_invalid");
        assert_eq!(reason(with("refrence", json!("r"))), "payload_invalid");
        assert_eq!(reason(without("source_account_id")), "null_argument");
        assert_eq!(reason(with("destination_account_id", Value::Null)), "null_argument");
        assert_eq!(reason(without("amount")), "null_argument");
        assert_eq!(reason(with("amount", json!("ten"))), "amount_malformed");
        assert_eq!(reason(with("amount", json!(true))), "amount_malformed");
        assert_eq!(reason(with("amount", json!("1.001"))), "amount_scale_exceeded");
        assert_eq!(reason(with("amount", json!(0))), "amount_not_positive");
        assert_eq!(reason(with("amount", json!("-1"))), "amount_not_positive");
        assert_eq!(reason(with("currency", json!("XYZ"))), "currency_unknown");
        assert_eq!(reason(with("metadata", json!([1]))), "metadata_invalid");
        assert_eq!(reason(with("source_account_id", json!("x".repeat(10_000)))), "text_too_long");
    }
}
