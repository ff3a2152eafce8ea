//! `batch.operation`: wallet items run in order inside one step, all or nothing.
//!
//! One backend runs one batch: its items are executed one after another in the step's
//! subtransaction, so "concurrency" is always 1 here. A payload may say `"concurrency": 1`;
//! any other value is refused rather than silently ignored. Parallelism comes from running
//! several events in several sessions.

use serde_json::value::RawValue;
use serde_json::Value;

use std::collections::BTreeSet;

use super::fields::Fields;
use super::{CurrencyBook, StepPlan, StepType};
use crate::error::CteError;
use crate::limits::{BATCH_ITEMS_MAX, NAME_BYTES_MAX};

const BATCH_FIELDS: [&str; 5] =
    ["batch_id", "description", "transactions", "reference", "concurrency"];
const ITEM_FIELDS: [&str; 3] = ["id", "type", "payload"];

/// One item of a batch and the postings it made: `postings[first..first + count]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPlan {
    pub id: String,
    pub step_type: String,
    /// The item payload's `reference`, recorded on its entries.
    pub reference: Option<String>,
    pub first: usize,
    pub count: usize,
}

pub(super) fn plan(payload: &RawValue, book: &CurrencyBook) -> Result<StepPlan, CteError> {
    let fields = Fields::new("batch.operation", payload, &BATCH_FIELDS)?;
    let batch_id = fields.text_optional("batch_id", NAME_BYTES_MAX)?;
    fields.description()?;
    fields.reference()?;
    if fields.has("concurrency") && fields.value("concurrency")? != 1 {
        return Err(fields
            .invalid("concurrency must be 1: one backend runs a batch's items in order".into()));
    }
    let items = fields.array("transactions")?;
    if items.is_empty() {
        return Err(fields.invalid("a batch holds at least one transaction".into()));
    }
    if items.len() > BATCH_ITEMS_MAX {
        return Err(CteError::LimitExceeded {
            what: "transactions in one batch",
            value: items.len(),
            limit: BATCH_ITEMS_MAX,
        });
    }
    let mut plan =
        StepPlan { postings: Vec::new(), items: Vec::with_capacity(items.len()), batch_id };
    let mut ids = BTreeSet::new();
    let mut references = BTreeSet::new();
    for (position, item) in items.iter().enumerate() {
        let item_plan = item_postings(position, item, book, &mut plan)?;
        if !ids.insert(item_plan.id.clone()) {
            return Err(fields.invalid(format!("transaction id {:?} appears twice", item_plan.id)));
        }
        // A reference names one posting of its type, within the batch as everywhere else.
        if let Some(reference) = &item_plan.reference {
            if !references.insert((item_plan.step_type.clone(), reference.clone())) {
                return Err(CteError::DuplicateReference {
                    step_type: item_plan.step_type.clone(),
                    reference: reference.clone(),
                    held_by: "this batch".into(),
                });
            }
        }
        plan.items.push(item_plan);
    }
    // One plan per item, whose postings lie end to end: item i's run of postings is its own.
    assert_eq!(plan.items.len(), items.len());
    assert_eq!(plan.items.iter().map(|item| item.count).sum::<usize>(), plan.postings.len());
    Ok(plan)
}

fn item_postings(
    position: usize,
    item: &RawValue,
    book: &CurrencyBook,
    plan: &mut StepPlan,
) -> Result<ItemPlan, CteError> {
    let fields = Fields::new("batch.operation", item, &ITEM_FIELDS)?;
    let bad_id =
        || fields.invalid(format!("transaction {position}: id must be a short string or a number"));
    let id = match fields.raw("id").and_then(|_| fields.value("id")) {
        Ok(Value::String(text)) if text.len() <= NAME_BYTES_MAX => text,
        Ok(Value::Number(number)) => number.to_string(),
        Ok(_) => return Err(bad_id()),
        Err(error) if fields.raw("id").is_err() => return Err(error),
        Err(_) => return Err(bad_id()),
    };
    let type_name = fields.text("type")?;
    let step_type = StepType::parse(&type_name)?;
    let payload = fields.raw("payload")?;
    let postings = match step_type {
        StepType::Transfer => super::wallet::transfer(payload, book),
        StepType::Deposit => super::wallet::deposit(payload, book),
        StepType::Withdrawal => super::wallet::withdrawal(payload, book),
        StepType::Exchange => super::exchange::plan(payload, book),
        StepType::Split => super::split::plan(payload, book),
        StepType::Batch
        | StepType::External
        | StepType::Refund
        | StepType::Custom(_)
        | StepType::Hosted(_) => {
            return Err(fields.invalid(format!(
                "transaction {id:?}: type {type_name:?} cannot run in a batch (wallet.* types only)"
            )));
        }
    };
    let postings = postings.map_err(|error| in_item(error, &id))?;
    // Every wallet type posts (or refuses): an item's run of postings is never empty.
    assert!(!postings.is_empty(), "a wallet item posts");
    let reference = super::reference(&step_type, payload)?;
    let first = plan.postings.len();
    let count = postings.len();
    plan.postings.extend(postings);
    assert_eq!(plan.postings.len(), first + count);
    Ok(ItemPlan { id, step_type: type_name, reference, first, count })
}

/// A payload refusal inside an item names the item.
fn in_item(error: CteError, id: &str) -> CteError {
    let sqlstate = error.sqlstate();
    let named = match error {
        CteError::PayloadInvalid { step_type, why } => {
            CteError::PayloadInvalid { step_type, why: format!("transaction {id:?}: {why}") }
        }
        other => other,
    };
    // Naming the item changes the message only: the reason and its code stay.
    assert_eq!(named.sqlstate(), sqlstate);
    named
}
