//! Strict reading of a payload object: required and optional fields, each of its own type,
//! and no field the step type does not know (a misspelt `ammount` is an error, not ignored).

use serde_json::{Map, Value};

use super::CurrencyBook;
use crate::error::CteError;
use crate::ledger::AccountId;
use crate::limits::{DESCRIPTION_BYTES_MAX, REFERENCE_BYTES_MAX};
use crate::money::{Amount, Currency, Rate};

pub(super) struct Fields<'a> {
    step_type: &'a str,
    object: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// The payload as an object holding only `allowed` fields.
    pub(super) fn new(
        step_type: &'a str,
        payload: &'a Value,
        allowed: &[&str],
    ) -> Result<Fields<'a>, CteError> {
        let fields = Fields::any_object(step_type, payload)?;
        let mut names: Vec<&String> = fields.object.keys().collect();
        names.sort();
        if let Some(unknown) = names.into_iter().find(|name| !allowed.contains(&name.as_str())) {
            return Err(fields.invalid(format!("unknown field {unknown:?}")));
        }
        Ok(fields)
    }

    /// The payload as an object, whatever its fields.
    pub(super) fn any_object(
        step_type: &'a str,
        payload: &'a Value,
    ) -> Result<Fields<'a>, CteError> {
        match payload {
            Value::Object(object) => Ok(Fields { step_type, object }),
            Value::Null
            | Value::Bool(_)
            | Value::Number(_)
            | Value::String(_)
            | Value::Array(_) => Err(CteError::PayloadInvalid {
                step_type: step_type.to_string(),
                why: "the payload must be a JSON object".into(),
            }),
        }
    }

    pub(super) fn invalid(&self, why: String) -> CteError {
        CteError::PayloadInvalid { step_type: self.step_type.to_string(), why }
    }

    pub(super) fn value(&self, name: &str) -> Result<&'a Value, CteError> {
        match self.object.get(name) {
            None | Some(Value::Null) => Err(self.invalid(format!("field {name:?} is missing"))),
            Some(value) => Ok(value),
        }
    }

    pub(super) fn text(&self, name: &str) -> Result<&'a str, CteError> {
        match self.value(name)? {
            Value::String(text) => Ok(text),
            _ => Err(self.invalid(format!("field {name:?} must be a string"))),
        }
    }

    /// An optional string field of at most `bytes_max` bytes; a refusal names it by `name`.
    pub(super) fn text_optional(
        &self,
        name: &'static str,
        bytes_max: usize,
    ) -> Result<Option<&'a str>, CteError> {
        if matches!(self.object.get(name), None | Some(Value::Null)) {
            return Ok(None);
        }
        let text = self.text(name)?;
        if text.len() > bytes_max {
            return Err(CteError::TextTooLong { what: name, bytes: text.len(), bytes_max });
        }
        Ok(Some(text))
    }

    pub(super) fn has(&self, name: &str) -> bool {
        !matches!(self.object.get(name), None | Some(Value::Null))
    }

    pub(super) fn account(&self, name: &str) -> Result<AccountId, CteError> {
        AccountId::parse(self.text(name)?)
    }

    pub(super) fn currency(&self, name: &str, book: &CurrencyBook) -> Result<Currency, CteError> {
        book(self.text(name)?)
    }

    pub(super) fn amount(&self, name: &str, currency: &Currency) -> Result<Amount, CteError> {
        match self.value(name)? {
            value @ (Value::Number(_) | Value::String(_)) => Amount::from_json(value, currency),
            _ => Err(self.invalid(format!("field {name:?} must be a number or a decimal string"))),
        }
    }

    pub(super) fn rate(&self, name: &str) -> Result<Rate, CteError> {
        match self.value(name)? {
            value @ (Value::Number(_) | Value::String(_)) => Rate::from_json(value),
            _ => Err(self.invalid(format!("field {name:?} must be a number or a decimal string"))),
        }
    }

    pub(super) fn reference(&self) -> Result<Option<&'a str>, CteError> {
        self.text_optional("reference", REFERENCE_BYTES_MAX)
    }

    pub(super) fn description(&self) -> Result<Option<&'a str>, CteError> {
        self.text_optional("description", DESCRIPTION_BYTES_MAX)
    }
}
