//! Step types: the built-in ones (payload, plan, compensation) and the name of a custom one.
//!
//! A built-in step's payload is parsed and checked when the step is added, and again when it
//! runs; both give the same plan, since payloads never change and currency scales never do.
//! Compensation posts the reversal of each posting the step actually made (the shell reads
//! them back from the journal), so it undoes exactly what happened.

mod batch;
pub mod custom;
mod exchange;
mod fields;
mod split;
mod wallet;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::CteError;
use crate::ledger::Posting;
use crate::limits::{NAME_BYTES_MAX, REFERENCE_BYTES_MAX};
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
    /// A refund's step (`cte_reverse_event`): its postings are planned from the refunded
    /// event's journal, never from a payload, so no caller may add one.
    Refund,
    /// `wallet.split`: one debit, a credit per leg (SPEC §11).
    Split,
    Custom(String),
    /// A type the application hosts (`cte_register_external_type`, SPEC §10): its steps wait on
    /// the application as `external` ones do, claimed by its workers by this name. The shell
    /// knows which names are registered: `parse` reads one as `Custom`, and `hosted` turns it.
    Hosted(String),
}

/// How the saga treats a step: what it runs, what it holds, what it waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// Posts when it runs; compensated by posting the reversal (transfer, deposit, batch).
    Posting,
    /// Holds its funds with liens when it runs; posts them when the event completes; its
    /// compensation releases them (withdrawal, exchange).
    Held,
    /// Waits on the application, which reports its outcome and its compensation.
    External,
    /// A registered executor's functions, run in the step's subtransaction.
    Custom,
}

impl StepKind {
    /// Whether the step's postings wait for its event to complete, its funds held till then.
    pub fn holds_funds(self) -> bool {
        self == StepKind::Held
    }
}

const BUILT_IN: [(&str, StepType); 8] = [
    ("wallet.transfer", StepType::Transfer),
    ("wallet.deposit", StepType::Deposit),
    ("wallet.withdrawal", StepType::Withdrawal),
    ("wallet.exchange", StepType::Exchange),
    ("batch.operation", StepType::Batch),
    ("external", StepType::External),
    ("wallet.refund", StepType::Refund),
    ("wallet.split", StepType::Split),
];

impl StepType {
    /// A built-in type by name, or a custom one if the name is well formed: lowercase words of
    /// letters, digits and `_`, joined by dots (`fee.collection`), at most 128 bytes.
    pub fn parse(name: &str) -> Result<StepType, CteError> {
        if let Some((_, step_type)) = BUILT_IN.iter().find(|(text, _)| *text == name) {
            // Each built-in type is listed once: its name reads back (`as_str` searches by type).
            assert_eq!(step_type.as_str(), name, "BUILT_IN names each type once");
            return Ok(step_type.clone());
        }
        let word_ok = |word: &str| {
            word.starts_with(|c: char| c.is_ascii_lowercase())
                && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if name.len() > NAME_BYTES_MAX || !name.split('.').all(word_ok) {
            return Err(CteError::StepTypeUnknown { step_type: name.to_string() });
        }
        assert!(!name.is_empty(), "a custom type has a name");
        Ok(StepType::Custom(name.to_string()))
    }

    /// A registered custom type read as one the application hosts (any other type unchanged).
    #[must_use]
    pub fn hosted(self) -> StepType {
        match self {
            StepType::Custom(name) => StepType::Hosted(name),
            other => other,
        }
    }

    pub fn as_str(&self) -> &str {
        let name = match self {
            StepType::Custom(name) | StepType::Hosted(name) => name,
            built_in => BUILT_IN.iter().find(|(_, t)| t == built_in).map_or("", |(name, _)| name),
        };
        // Every built-in type is in BUILT_IN, and `parse` makes no custom type without a name.
        assert!(!name.is_empty(), "every step type has a name: {self:?}");
        name
    }

    pub fn is_built_in(&self) -> bool {
        !matches!(self, StepType::Custom(_) | StepType::Hosted(_))
    }

    /// Whether the ledger reads this type's payload (a built-in money step's); `external` and
    /// custom payloads are the application's and are never parsed.
    pub fn reads_payload(&self) -> bool {
        self.is_built_in() && *self != StepType::External
    }

    /// How the saga treats a step of this type.
    pub fn kind(&self) -> StepKind {
        let kind = match self {
            StepType::Transfer
            | StepType::Deposit
            | StepType::Batch
            | StepType::Refund
            | StepType::Split => StepKind::Posting,
            StepType::Withdrawal | StepType::Exchange => StepKind::Held,
            StepType::External | StepType::Hosted(_) => StepKind::External,
            StepType::Custom(_) => StepKind::Custom,
        };
        // Only a registered executor's type runs its own functions, and a step that holds
        // funds is planned from a payload the ledger reads (its liens hold the plan's debits).
        assert!(kind != StepKind::Custom || !self.is_built_in());
        assert!(!kind.holds_funds() || self.reads_payload());
        kind
    }
}

/// What a built-in step posts when it runs, in order, and what it records as its result.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPlan {
    pub postings: Vec<Posting>,
    /// For `batch.operation`: each item and the range of `postings` it made.
    pub items: Vec<ItemPlan>,
    /// For `batch.operation`: the payload's `batch_id`, echoed in the step's result.
    pub batch_id: Option<String>,
}

/// Plans a step of a built-in type that moves money; `None` for `external` and custom types,
/// which post nothing themselves. Checks the whole payload: shape, types, amounts, accounts'
/// id syntax and currencies (whether accounts exist is checked by the shell).
pub fn plan(
    step_type: &StepType,
    payload: &RawValue,
    currencies: &CurrencyBook,
) -> Result<Option<StepPlan>, CteError> {
    let postings = match step_type {
        StepType::Transfer => wallet::transfer(payload, currencies)?,
        StepType::Deposit => wallet::deposit(payload, currencies)?,
        StepType::Withdrawal => wallet::withdrawal(payload, currencies)?,
        StepType::Exchange => exchange::plan(payload, currencies)?,
        StepType::Split => split::plan(payload, currencies)?,
        StepType::Batch => return batch::plan(payload, currencies).map(Some),
        StepType::External => {
            check_object(step_type, payload)?;
            return Ok(None);
        }
        StepType::Refund => {
            return Err(CteError::PayloadInvalid {
                step_type: step_type.as_str().to_string(),
                why: "a wallet.refund step is made only by cte_reverse_event".into(),
            })
        }
        StepType::Custom(_) | StepType::Hosted(_) => return Ok(None),
    };
    // A money step moves money: each planner makes one posting at least, or refuses.
    assert!(!postings.is_empty(), "a built-in money step posts");
    Ok(Some(StepPlan { postings, items: Vec::new(), batch_id: None }))
}

/// Refuses a payload that is not a JSON object, without parsing what is inside it.
pub fn check_object(step_type: &StepType, payload: &RawValue) -> Result<(), CteError> {
    if fields::json_kind(payload) != fields::JsonKind::Object {
        return Err(CteError::PayloadInvalid {
            step_type: step_type.as_str().to_string(),
            why: "the payload must be a JSON object".into(),
        });
    }
    Ok(())
}

/// The payload's `reference`, which must be unique per step type among steps that did not
/// fail. Checked for type and length.
pub fn reference(step_type: &StepType, payload: &RawValue) -> Result<Option<String>, CteError> {
    check_object(step_type, payload)?;
    let invalid = || CteError::PayloadInvalid {
        step_type: step_type.as_str().to_string(),
        why: "the payload must be a JSON object".into(),
    };
    let object = fields::Fields::any_object(step_type.as_str(), payload).map_err(|_| invalid())?;
    reference_of(step_type, object.raw("reference").ok())
}

/// A payload's `reference` field (its raw JSON, if present): a string of at most
/// `REFERENCE_BYTES_MAX` bytes, or nothing.
pub fn reference_of(
    step_type: &StepType,
    raw: Option<&RawValue>,
) -> Result<Option<String>, CteError> {
    let Some(raw) = raw.filter(|raw| raw.get().trim() != "null") else {
        return Ok(None);
    };
    let Ok(Value::String(reference)) = serde_json::from_str::<Value>(raw.get()) else {
        return Err(CteError::PayloadInvalid {
            step_type: step_type.as_str().to_string(),
            why: "field \"reference\" must be a string".into(),
        });
    };
    reference_text(&reference)?;
    assert!(reference.len() <= REFERENCE_BYTES_MAX, "a reference kept is within its bound");
    Ok(Some(reference))
}

/// A reference (a key, SPEC §9): at most `REFERENCE_BYTES_MAX` bytes, not blank, no control
/// characters (a key that prints as nothing cannot be told from another).
pub fn reference_text(reference: &str) -> Result<(), CteError> {
    if reference.len() > REFERENCE_BYTES_MAX {
        return Err(CteError::TextTooLong {
            what: "reference",
            bytes: reference.len(),
            bytes_max: REFERENCE_BYTES_MAX,
        });
    }
    let why = if reference.trim().is_empty() {
        Some("it is blank")
    } else if reference.chars().any(char::is_control) {
        Some("it holds a control character")
    } else {
        None
    };
    assert!(reference.len() <= REFERENCE_BYTES_MAX, "a long reference was refused first");
    match why {
        Some(why) => Err(CteError::IdentifierInvalid {
            what: "reference",
            value: reference.escape_debug().to_string(),
            why,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
