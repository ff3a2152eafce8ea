//! Step types: the built-in ones (payload, plan, compensation) and the name of a custom one.
//!
//! A built-in step's payload is parsed and checked when the step is added, and again when it
//! runs; both give the same plan, since payloads never change and currency scales never do.
//! Compensation posts the reversal of each posting the step actually made (the shell reads
//! them back from the journal), so it undoes exactly what happened.

mod batch;
mod exchange;
mod fields;
mod wallet;

use serde_json::Value;

use crate::error::CteError;
use crate::ledger::Posting;
use crate::limits::NAME_BYTES_MAX;
use crate::money::Currency;

pub use batch::ItemPlan;

/// Looks up a registered currency by code (the shell reads the currency table).
pub type CurrencyBook<'a> = dyn Fn(&str) -> Result<Currency, CteError> + 'a;

/// The type of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepType {
    Transfer,
    Deposit,
    Withdrawal,
    Exchange,
    Batch,
    External,
    Custom(String),
}

const BUILT_IN: [(&str, StepType); 6] = [
    ("wallet.transfer", StepType::Transfer),
    ("wallet.deposit", StepType::Deposit),
    ("wallet.withdrawal", StepType::Withdrawal),
    ("wallet.exchange", StepType::Exchange),
    ("batch.operation", StepType::Batch),
    ("external", StepType::External),
];

impl StepType {
    /// A built-in type by name, or a custom one if the name is well formed: lowercase words of
    /// letters, digits and `_`, joined by dots (`fee.collection`), at most 128 bytes.
    pub fn parse(name: &str) -> Result<StepType, CteError> {
        if let Some((_, step_type)) = BUILT_IN.iter().find(|(text, _)| *text == name) {
            return Ok(step_type.clone());
        }
        let word_ok = |word: &str| {
            word.starts_with(|c: char| c.is_ascii_lowercase())
                && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if name.len() > NAME_BYTES_MAX || !name.split('.').all(word_ok) {
            return Err(CteError::StepTypeUnknown { step_type: name.to_string() });
        }
        Ok(StepType::Custom(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            StepType::Custom(name) => name,
            built_in => BUILT_IN.iter().find(|(_, t)| t == built_in).map_or("", |(name, _)| name),
        }
    }

    pub fn is_built_in(&self) -> bool {
        !matches!(self, StepType::Custom(_))
    }
}

/// What a built-in step posts when it runs, in order, and what it records as its result.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPlan {
    pub postings: Vec<Posting>,
    /// For `batch.operation`: each item and the range of `postings` it made.
    pub items: Vec<ItemPlan>,
}

/// Plans a step of a built-in type that moves money; `None` for `external` and custom types,
/// which post nothing themselves. Checks the whole payload: shape, types, amounts, accounts'
/// id syntax and currencies (whether accounts exist is checked by the shell).
pub fn plan(
    step_type: &StepType,
    payload: &Value,
    currencies: &CurrencyBook,
) -> Result<Option<StepPlan>, CteError> {
    let postings = match step_type {
        StepType::Transfer => wallet::transfer(payload, currencies)?,
        StepType::Deposit => wallet::deposit(payload, currencies)?,
        StepType::Withdrawal => wallet::withdrawal(payload, currencies)?,
        StepType::Exchange => exchange::plan(payload, currencies)?,
        StepType::Batch => return batch::plan(payload, currencies).map(Some),
        StepType::External => {
            fields::Fields::any_object(step_type.as_str(), payload)?;
            return Ok(None);
        }
        StepType::Custom(_) => return Ok(None),
    };
    Ok(Some(StepPlan { postings, items: Vec::new() }))
}

/// The payload's `reference`, which must be unique per step type among steps that did not
/// fail. Checked for type and length.
pub fn reference(step_type: &StepType, payload: &Value) -> Result<Option<String>, CteError> {
    let Value::Object(object) = payload else {
        return Ok(None);
    };
    match object.get("reference") {
        None | Some(Value::Null) => Ok(None),
        Some(_) => {
            let fields = fields::Fields::any_object(step_type.as_str(), payload)?;
            Ok(fields.reference()?.map(str::to_string))
        }
    }
}

#[cfg(test)]
mod tests;
