//! Strict reading of a payload object: required and optional fields, each of its own type,
//! and no field the step type does not know (a misspelt `ammount` is an error, not ignored).
//!
//! A payload is read lazily from its JSON text: the object is split into its fields' raw texts
//! and only the fields a step type knows are parsed, each when it is read. A document is never
//! turned into a whole `serde_json::Value` tree, whose numbers and strings each cost a heap
//! allocation (a few megabytes of small numbers took a backend over a hundred megabytes): the
//! memory a payload costs stays a small multiple of its size, and an unknown or ill-typed field
//! is refused before anything inside it is parsed.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::Value;

use super::CurrencyBook;
use crate::error::CteError;
use crate::ledger::AccountId;
use crate::limits::{DESCRIPTION_BYTES_MAX, REFERENCE_BYTES_MAX};
use crate::money::{Amount, Currency, Rate};

/// The JSON kind a raw value is, from its first byte (JSON text has no other way to start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonKind {
    Object,
    Array,
    String,
    Number,
    Literal,
}

pub(crate) fn json_kind(raw: &RawValue) -> JsonKind {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => JsonKind::Object,
        Some(b'[') => JsonKind::Array,
        Some(b'"') => JsonKind::String,
        Some(b'-' | b'0'..=b'9') => JsonKind::Number,
        _ => JsonKind::Literal,
    }
}

pub(super) struct Fields<'a> {
    step_type: &'a str,
    object: BTreeMap<String, &'a RawValue>,
    /// The fields the step type declares (`None`: any, for `any_object`).
    allowed: Option<&'a [&'a str]>,
}

impl<'a> Fields<'a> {
    /// The payload as an object holding only `allowed` fields.
    pub(super) fn new(
        step_type: &'a str,
        payload: &'a RawValue,
        allowed: &'a [&'a str],
    ) -> Result<Fields<'a>, CteError> {
        let mut fields = Fields::any_object(step_type, payload)?;
        fields.allowed = Some(allowed);
        if let Some(unknown) = fields.object.keys().find(|name| !allowed.contains(&name.as_str())) {
            return Err(fields.invalid(format!("unknown field {unknown:?}")));
        }
        assert!(fields.object.len() <= allowed.len(), "only known fields are kept");
        Ok(fields)
    }

    /// The payload as an object, whatever its fields (each still unparsed).
    pub(super) fn any_object(
        step_type: &'a str,
        payload: &'a RawValue,
    ) -> Result<Fields<'a>, CteError> {
        let not_object = || CteError::PayloadInvalid {
            step_type: step_type.to_string(),
            why: "the payload must be a JSON object".into(),
        };
        if json_kind(payload) != JsonKind::Object {
            return Err(not_object());
        }
        let object = serde_json::from_str(payload.get()).map_err(|_| not_object())?;
        Ok(Fields { step_type, object, allowed: None })
    }

    pub(super) fn invalid(&self, why: String) -> CteError {
        CteError::PayloadInvalid { step_type: self.step_type.to_string(), why }
    }

    /// A field's raw text; missing and `null` are the same.
    pub(super) fn raw(&self, name: &str) -> Result<&'a RawValue, CteError> {
        // A field the step type does not declare is refused by `new` whenever it is given, so
        // reading one would report it missing forever: a typo in the planner, not the payload.
        assert!(self.allowed.is_none_or(|allowed| allowed.contains(&name)), "{name:?} declared");
        match self.object.get(name) {
            Some(raw) if json_kind(raw) != JsonKind::Literal || raw.get().trim() != "null" => {
                Ok(raw)
            }
            _ => Err(self.invalid(format!("field {name:?} is missing"))),
        }
    }

    /// A field that must be a scalar (string, number, true, false), parsed.
    fn scalar(&self, name: &str, expected: &str) -> Result<Value, CteError> {
        let raw = self.raw(name)?;
        if matches!(json_kind(raw), JsonKind::Object | JsonKind::Array) {
            return Err(self.invalid(format!("field {name:?} must be {expected}")));
        }
        let value: Value = serde_json::from_str(raw.get())
            .map_err(|_| self.invalid(format!("field {name:?} must be {expected}")))?;
        // What the first byte said (`json_kind`) and what `raw` let through (no `null`) is what
        // the parser read.
        assert!(!value.is_object(), "a scalar, as its first byte said");
        assert!(!value.is_array(), "a scalar, as its first byte said");
        assert!(!value.is_null(), "`raw` reads a null field as missing");
        Ok(value)
    }

    /// A field's value, when it is a scalar.
    pub(super) fn value(&self, name: &str) -> Result<Value, CteError> {
        self.scalar(name, "a string, a number or a boolean")
    }

    pub(super) fn text(&self, name: &str) -> Result<String, CteError> {
        self.raw(name)?;
        match self.scalar(name, "a string")? {
            Value::String(text) => Ok(text),
            _ => Err(self.invalid(format!("field {name:?} must be a string"))),
        }
    }

    /// An optional string field of at most `bytes_max` bytes; a refusal names it by `name`.
    pub(super) fn text_optional(
        &self,
        name: &'static str,
        bytes_max: usize,
    ) -> Result<Option<String>, CteError> {
        if !self.has(name) {
            return Ok(None);
        }
        let text = self.text(name)?;
        if text.len() > bytes_max {
            return Err(CteError::TextTooLong { what: name, bytes: text.len(), bytes_max });
        }
        assert!(text.len() <= bytes_max, "a text kept is within its bound");
        Ok(Some(text))
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.raw(name).is_ok()
    }

    /// An array field's elements, each still unparsed.
    pub(super) fn array(&self, name: &str) -> Result<Vec<&'a RawValue>, CteError> {
        let raw = self.raw(name)?;
        let must_be = || self.invalid(format!("field {name:?} must be an array"));
        if json_kind(raw) != JsonKind::Array {
            return Err(must_be());
        }
        serde_json::from_str(raw.get()).map_err(|_| must_be())
    }

    pub(super) fn account(&self, name: &str) -> Result<AccountId, CteError> {
        AccountId::parse(&self.text(name)?)
    }

    pub(super) fn currency(&self, name: &str, book: &CurrencyBook) -> Result<Currency, CteError> {
        let code = self.text(name)?;
        let currency = book(&code)?;
        // The shell's book returns the currency it was asked for, or refuses.
        assert_eq!(currency.code(), code, "the currency book answers for the code asked");
        Ok(currency)
    }

    fn decimal(&self, name: &str) -> Result<Value, CteError> {
        self.raw(name)?;
        let must_be =
            || self.invalid(format!("field {name:?} must be a number or a decimal string"));
        match self.scalar(name, "a number or a decimal string") {
            Ok(value @ (Value::Number(_) | Value::String(_))) => Ok(value),
            Ok(_) | Err(_) => Err(must_be()),
        }
    }

    pub(super) fn amount(&self, name: &str, currency: &Currency) -> Result<Amount, CteError> {
        Amount::from_json(&self.decimal(name)?, currency)
    }

    pub(super) fn rate(&self, name: &str) -> Result<Rate, CteError> {
        Rate::from_json(&self.decimal(name)?)
    }

    pub(super) fn reference(&self) -> Result<Option<String>, CteError> {
        self.text_optional("reference", REFERENCE_BYTES_MAX)
    }

    pub(super) fn description(&self) -> Result<Option<String>, CteError> {
        self.text_optional("description", DESCRIPTION_BYTES_MAX)
    }
}
