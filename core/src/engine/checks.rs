//! The checks a call's arguments pass before anything is written: names, texts, and a step's
//! type, payload, order and attempts (its plan included, for built-in types). The shell only
//! converts arguments and asks; whether an account or a registered type exists is the shell's
//! to look up.

use serde_json::value::RawValue;

use super::executors::{self, CurrencyBook, StepPlan, StepType};
use crate::error::CteError;
use crate::limits::{
    DESCRIPTION_BYTES_MAX, JSON_DEPTH_MAX, NAME_BYTES_MAX, PAYLOAD_BYTES_MAX, STEP_ATTEMPTS_MAX,
};

/// A text of at most `bytes_max` bytes.
pub fn bounded<'a>(
    text: &'a str,
    what: &'static str,
    bytes_max: usize,
) -> Result<&'a str, CteError> {
    if text.len() > bytes_max {
        return Err(CteError::TextTooLong { what, bytes: text.len(), bytes_max });
    }
    assert!(text.len() <= bytes_max, "a text kept is within its bound");
    Ok(text)
}

/// A name (of an event, a step, an idempotency key): printable, not blank, bounded.
pub fn name<'a>(text: &'a str, what: &'static str) -> Result<&'a str, CteError> {
    if text.trim().is_empty() || text.chars().any(char::is_control) {
        return Err(CteError::IdentifierInvalid {
            what,
            value: text.to_string(),
            why: "a name is printable text, not empty",
        });
    }
    bounded(text, what, NAME_BYTES_MAX)
}

/// A reference carried by entries (a capture's, a refund's): bounded.
pub fn reference(text: &str) -> Result<&str, CteError> {
    super::executors::reference_text(text)?;
    Ok(text)
}

/// A note that says why (an operator's): not blank, bounded like a description.
pub fn note<'a>(text: &'a str, what: &'static str) -> Result<&'a str, CteError> {
    if text.trim().is_empty() {
        return Err(CteError::IdentifierInvalid {
            what,
            value: text.to_string(),
            why: "it is empty",
        });
    }
    bounded(text, what, DESCRIPTION_BYTES_MAX)
}

/// An optional description (or reason), bounded.
pub fn description<'a>(
    text: Option<&'a str>,
    what: &'static str,
) -> Result<Option<&'a str>, CteError> {
    text.map(|text| bounded(text, what, DESCRIPTION_BYTES_MAX)).transpose()
}

/// A step's payload, as the shell read it.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// A built-in money step's payload, as JSON text: read field by field and planned.
    Text(&'a str),
    /// A payload the ledger does not read (`external`, custom types: it is the application's
    /// and its executor's): only whether it is an object, and its `reference` field's JSON
    /// text. The shell never prints such a payload (printing a large one costs a backend
    /// many times its size).
    Opaque { is_object: bool, reference: Option<&'a str> },
}

/// A step as `cte_add_transaction` (or a one-step shortcut) is given it.
pub struct StepSpec<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub type_name: &'a str,
    pub payload: Payload<'a>,
    /// The payload's size: its stored `jsonb` form's bytes.
    pub payload_bytes: usize,
    pub order: Option<i32>,
    pub max_attempts: Option<i32>,
}

/// A reference a step holds: its own, or a batch item's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldReference {
    pub step_type: String,
    pub reference: String,
    pub item_id: Option<String>,
}

/// A step that passed every check.
#[derive(Debug)]
pub struct CheckedStep {
    pub step_type: StepType,
    /// What a built-in money step will post; `None` for `external` and custom steps.
    pub plan: Option<StepPlan>,
    /// The payload's `reference`, recorded on the step.
    pub reference: Option<String>,
    pub attempts_max: u32,
    /// Every reference the step holds, to claim before it is written.
    pub references: Vec<HeldReference>,
}

/// Checks a step: name, description, type, payload (size, shape, and for built-in types every
/// field, with its plan), order and attempts. `default_attempts` is the setting's.
pub fn step(
    spec: &StepSpec,
    default_attempts: u32,
    book: &CurrencyBook,
) -> Result<CheckedStep, CteError> {
    name(spec.name, "transaction name")?;
    description(spec.description, "description")?;
    let step_type = StepType::parse(spec.type_name)?;
    if spec.payload_bytes > PAYLOAD_BYTES_MAX {
        return Err(CteError::LimitExceeded {
            what: "payload size in bytes",
            value: spec.payload_bytes,
            limit: PAYLOAD_BYTES_MAX,
        });
    }
    let (plan, reference) = match spec.payload {
        Payload::Text(text) => read_payload(&step_type, text, book)?,
        Payload::Opaque { is_object, reference } => {
            let not_object = || CteError::PayloadInvalid {
                step_type: spec.type_name.to_string(),
                why: "the payload must be a JSON object".into(),
            };
            if !is_object {
                return Err(not_object());
            }
            let raw: Option<&RawValue> = reference
                .map(|text| serde_json::from_str(text).map_err(|_| not_object()))
                .transpose()?;
            (None, executors::reference_of(&step_type, raw)?)
        }
    };
    if let Some(order) = spec.order.filter(|order| *order < 1) {
        return Err(CteError::out_of_range("order", i64::from(order), 1, i64::from(i32::MAX)));
    }
    let attempts_max = spec.max_attempts.map_or(i64::from(default_attempts), i64::from);
    if !(1..=i64::from(STEP_ATTEMPTS_MAX)).contains(&attempts_max) {
        return Err(CteError::out_of_range(
            "max_attempts",
            attempts_max,
            1,
            i64::from(STEP_ATTEMPTS_MAX),
        ));
    }
    let references = held_references(&step_type, reference.as_deref(), plan.as_ref());
    let attempts_max = u32::try_from(attempts_max).unwrap_or(1);
    // StepState::new asserts the same range, and the table's CHECK holds it.
    assert!((1..=STEP_ATTEMPTS_MAX).contains(&attempts_max), "attempts within their bound");
    assert!(plan.is_none() || step_type.reads_payload(), "only a money step has a plan");
    Ok(CheckedStep { step_type, plan, reference, attempts_max, references })
}

/// A built-in step's payload read whole: bounded depth, every field, its plan and reference.
fn read_payload(
    step_type: &StepType,
    text: &str,
    book: &CurrencyBook,
) -> Result<(Option<StepPlan>, Option<String>), CteError> {
    if crate::json::nests_deeper_than(text, JSON_DEPTH_MAX) {
        return Err(CteError::LimitExceeded {
            what: "JSON nesting depth",
            value: JSON_DEPTH_MAX + 1,
            limit: JSON_DEPTH_MAX,
        });
    }
    let payload: &RawValue = serde_json::from_str(text).map_err(|_| CteError::PayloadInvalid {
        step_type: step_type.as_str().to_string(),
        why: "the payload must be a JSON object".into(),
    })?;
    executors::check_object(step_type, payload)?;
    let plan = executors::plan(step_type, payload, book)?;
    // `plan` plans exactly the types whose payload the ledger reads (`external` and custom
    // types post nothing of their own).
    assert_eq!(plan.is_some(), step_type.reads_payload(), "{step_type:?}");
    let reference = executors::reference(step_type, payload)?;
    Ok((plan, reference))
}

/// The references a step holds: its own, and each of its batch items'.
fn held_references(
    step_type: &StepType,
    reference: Option<&str>,
    plan: Option<&StepPlan>,
) -> Vec<HeldReference> {
    let own = reference.map(|reference| HeldReference {
        step_type: step_type.as_str().to_string(),
        reference: reference.to_string(),
        item_id: None,
    });
    let items = plan.into_iter().flat_map(|plan| plan.items.iter()).filter_map(|item| {
        Some(HeldReference {
            step_type: item.step_type.clone(),
            reference: item.reference.clone()?,
            item_id: Some(item.id.clone()),
        })
    });
    let held: Vec<HeldReference> = own.into_iter().chain(items).collect();
    let items_max = plan.map_or(0, |plan| plan.items.len());
    assert!(held.len() <= 1 + items_max, "a step holds its own reference and its items'");
    held
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn book(code: &str) -> Result<Currency, CteError> {
        match code {
            "USD" => Currency::new(code, 2),
            other => Err(CteError::CurrencyUnknown { currency: other.to_string() }),
        }
    }

    fn spec<'a>(type_name: &'a str, payload: &'a str) -> StepSpec<'a> {
        StepSpec {
            name: "s",
            description: None,
            type_name,
            payload: Payload::Text(payload),
            payload_bytes: payload.len(),
            order: None,
            max_attempts: None,
        }
    }

    fn opaque<'a>(type_name: &'a str, is_object: bool, reference: Option<&'a str>) -> StepSpec<'a> {
        StepSpec {
            payload: Payload::Opaque { is_object, reference },
            payload_bytes: 10,
            ..spec(type_name, "{}")
        }
    }

    #[test]
    fn names_are_printable_and_bounded() {
        assert_eq!(name("pay", "x"), Ok("pay"));
        for bad in ["", "  ", "a\tb", "a\u{0}"] {
            assert_eq!(name(bad, "x").unwrap_err().reason(), "identifier_invalid", "{bad:?}");
        }
        assert_eq!(name(&"n".repeat(129), "x").unwrap_err().reason(), "text_too_long");
    }

    #[test]
    fn a_step_is_checked_whole_and_lists_the_references_it_holds() {
        let batch = r#"{"reference": "b-1", "transactions": [
            {"id": "1", "type": "wallet.deposit",
             "payload": {"account_id": "a", "amount": 1, "currency": "USD", "reference": "d-1"}},
            {"id": "2", "type": "wallet.deposit",
             "payload": {"account_id": "a", "amount": 2, "currency": "USD"}}]}"#;
        let checked = step(&spec("batch.operation", batch), 3, &book).unwrap();
        let held: Vec<(&str, &str, Option<&str>)> = checked
            .references
            .iter()
            .map(|r| (r.step_type.as_str(), r.reference.as_str(), r.item_id.as_deref()))
            .collect();
        assert_eq!(
            held,
            vec![("batch.operation", "b-1", None), ("wallet.deposit", "d-1", Some("1"))]
        );
        assert_eq!(checked.attempts_max, 3);
    }

    #[test]
    fn order_attempts_size_and_shape_are_bounded() {
        let ok = r#"{"a": 1}"#;
        let mut bad = spec("external", ok);
        bad.order = Some(0);
        assert_eq!(step(&bad, 3, &book).unwrap_err().reason(), "argument_out_of_range");
        let mut bad = spec("external", ok);
        bad.max_attempts = Some(101);
        assert_eq!(step(&bad, 3, &book).unwrap_err().reason(), "argument_out_of_range");
        let refused = |spec: StepSpec| step(&spec, 3, &book).unwrap_err().reason();
        assert_eq!(refused(opaque("external", false, None)), "payload_invalid");
        let huge = format!(r#"{{"a": "{}"}}"#, "x".repeat(PAYLOAD_BYTES_MAX));
        assert_eq!(refused(spec("wallet.deposit", &huge)), "limit_exceeded");
        let too_big =
            StepSpec { payload_bytes: PAYLOAD_BYTES_MAX + 1, ..opaque("external", true, None) };
        assert_eq!(refused(too_big), "limit_exceeded");
        assert_eq!(refused(opaque("external", true, Some("7"))), "payload_invalid");
        // An opaque payload's reference is read from the one field the shell passes.
        let checked = step(&opaque("fee.note", true, Some(r#""r-1""#)), 3, &book).unwrap();
        assert_eq!(checked.reference.as_deref(), Some("r-1"));
        assert_eq!(checked.references.len(), 1);
        assert_eq!(step(&spec("No Type", ok), 3, &book).unwrap_err().reason(), "type_unknown");
    }
}
