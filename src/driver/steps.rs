//! Performing what the saga asks of one step: running it or compensating it, each in a
//! subtransaction (a step that fails leaves none of its writes), and its plan, made from its
//! payload when first needed in a drive and kept for the rest of it.

use cte_ctel_core::engine::executors::custom::Role;
use cte_ctel_core::engine::executors::{self, StepKind, StepPlan, StepType};
use cte_ctel_core::limits::RESULT_BYTES_MAX;
use cte_ctel_core::CteError;
use pgrx::pg_sys::Datum;
use pgrx::{IntoDatum, Uuid};
use serde_json::json;
use serde_json::value::RawValue;

use super::security;
use crate::store::changes::Change;
use crate::store::events::{self, StepRow};
use crate::store::subtransaction::{self, Failure};
use crate::store::{executors as stored_executors, jsonb_text, liens, postings, LockWait};

/// Plans a built-in step from its payload text.
pub fn plan(step_type: &StepType, payload: &str) -> Result<Option<StepPlan>, CteError> {
    let raw: &RawValue = serde_json::from_str(payload).map_err(|_| CteError::PayloadInvalid {
        step_type: step_type.as_str().to_string(),
        why: "the payload must be a JSON object".into(),
    })?;
    executors::plan(step_type, raw, &super::build::currency_book())
}

/// The plans of a drive's built-in money steps, made from their payloads when first needed.
pub struct Plans(Vec<Option<StepPlan>>);

impl Plans {
    pub fn new(count: usize) -> Plans {
        Plans((0..count).map(|_| None).collect())
    }

    /// The plan of step `index` (a built-in money step, which always has one).
    pub fn of(&mut self, index: usize, step: &StepRow) -> Result<&StepPlan, CteError> {
        if self.0[index].is_none() {
            let payload = events::payload_text(step.id);
            self.0[index] = plan(&step.step_type, &payload)?;
        }
        let planned = self.0[index].as_ref();
        assert!(planned.is_some(), "built-in money steps have a plan");
        planned
            .ok_or_else(|| CteError::StepTypeUnknown { step_type: step.step_type.as_str().into() })
    }
}

/// What a step run left: its result (JSON text) and the lien changes it made.
pub type Done = (Option<String>, Vec<Change>);

/// Runs step `index` in a subtransaction: none of its writes remain if it fails.
pub fn execute(
    event_id: Uuid,
    step: &StepRow,
    plan: Option<&StepPlan>,
    wait: LockWait,
) -> Result<Done, Failure> {
    subtransaction::run(|| match step.step_type.kind() {
        StepKind::Posting => {
            let plan = plan.ok_or_else(|| Failure::from(missing_plan(step)))?;
            Ok((Some(post_plan(step, plan, wait)?), Vec::new()))
        }
        StepKind::Held => {
            // Their funds are held with liens; the postings are made when the event
            // completes (`CaptureHeld`), or the liens released if it is compensated.
            let plan = plan.ok_or_else(|| Failure::from(missing_plan(step)))?;
            let (lien_ids, changes) =
                super::step_holds::hold_for_step(event_id, step.id, plan, wait)?;
            let ids: Vec<String> = lien_ids.iter().map(ToString::to_string).collect();
            Ok((Some(json!({ "lien_ids": ids }).to_string()), changes))
        }
        StepKind::Custom => Ok((execute_custom(step)?, Vec::new())),
        StepKind::External => panic!("the saga never asks the shell to run an external step"),
    })
}

fn missing_plan(step: &StepRow) -> CteError {
    CteError::StepTypeUnknown { step_type: step.step_type.as_str().to_string() }
}

/// A step's result for a posting step: the postings it made.
pub fn postings_result(posting_ids: &[Uuid]) -> String {
    let ids: Vec<String> = posting_ids.iter().map(ToString::to_string).collect();
    json!({ "postings": ids }).to_string()
}

/// Posts a plan's postings with the step's reference, all at once; a batch records a result
/// per item, and a refused item names itself in the step's error.
fn post_plan(step: &StepRow, planned: &StepPlan, wait: LockWait) -> Result<String, Failure> {
    let reference = step.reference.as_deref();
    if planned.items.is_empty() {
        let references = vec![reference; planned.postings.len()];
        let posted = postings::post(
            &planned.postings,
            &references,
            postings::Origin { step: Some(step.id), lien: None },
            wait,
        );
        return Ok(postings_result(&posted.map_err(|(_, error)| error)?));
    }
    let mut references = Vec::with_capacity(planned.postings.len());
    for item in &planned.items {
        references.extend(std::iter::repeat_n(item.reference.as_deref(), item.count));
    }
    let ids = postings::post(
        &planned.postings,
        &references,
        postings::Origin { step: Some(step.id), lien: None },
        wait,
    )
    .map_err(|(index, error)| {
        let item = planned
            .items
            .iter()
            .find(|item| (item.first..item.first + item.count).contains(&index));
        assert!(item.is_some(), "every posting of a batch belongs to an item");
        let failure = Failure::from(error);
        Failure {
            message: format!(
                "transaction {:?}: {}",
                item.map(|item| item.id.as_str()).unwrap_or(""),
                failure.message
            ),
            ..failure
        }
    })?;
    let items = planned
        .items
        .iter()
        .map(|item| {
            let ids: Vec<String> =
                ids[item.first..item.first + item.count].iter().map(ToString::to_string).collect();
            json!({"id": item.id, "type": item.step_type, "status": "completed", "postings": ids})
        })
        .collect::<Vec<_>>();
    Ok(json!({ "batch_id": planned.batch_id, "items": items }).to_string())
}

/// Runs a custom step's execute function as its registrant; its result, bounded.
fn execute_custom(step: &StepRow) -> Result<Option<String>, Failure> {
    let type_name = step.step_type.as_str();
    let executor = stored_executors::executor(type_name)
        .ok_or_else(|| CteError::StepTypeUnknown { step_type: type_name.to_string() })?;
    let checked = security::checked(type_name, &executor, Role::Execute)?;
    let Some((registrant, function)) = checked else {
        return Err(CteError::StepTypeUnknown { step_type: type_name.to_string() }.into());
    };
    let (payload, _) = events::payload_and_result(step.id);
    let result = security::call(registrant, function, &[step.id.into_datum(), Some(payload)]);
    result.map(bounded_result).transpose()
}

/// A result within `RESULT_BYTES_MAX`, as JSON text; a larger one fails the step.
fn bounded_result(datum: Datum) -> Result<String, Failure> {
    jsonb_text(datum, RESULT_BYTES_MAX).ok_or_else(|| {
        Failure::from(CteError::LimitExceeded {
            what: "result size in bytes",
            value: RESULT_BYTES_MAX + 1,
            limit: RESULT_BYTES_MAX,
        })
    })
}

/// Compensates a completed step in a subtransaction: built-in steps post the reversal of
/// exactly what they posted, or release what they hold; a custom step calls its compensation
/// function as its registrant, if it has one. Returns the lien changes it made.
pub fn compensate(step: &StepRow, wait: LockWait) -> Result<Vec<Change>, Failure> {
    subtransaction::run(|| match step.step_type.kind() {
        StepKind::Posting => {
            postings::reverse_postings_of(step.id, wait)?;
            Ok(Vec::new())
        }
        StepKind::Held => {
            Ok(liens::release_of_step(step.id, "its transaction was compensated", wait)?)
        }
        StepKind::Custom => {
            compensate_custom(step)?;
            Ok(Vec::new())
        }
        StepKind::External => {
            panic!("the saga never asks the shell to compensate an external step")
        }
    })
}

fn compensate_custom(step: &StepRow) -> Result<(), Failure> {
    let type_name = step.step_type.as_str();
    let executor = stored_executors::executor(type_name)
        .ok_or_else(|| CteError::StepTypeUnknown { step_type: type_name.to_string() })?;
    // An executor without a compensation function has nothing to undo.
    if let Some((registrant, function)) = security::checked(type_name, &executor, Role::Compensate)?
    {
        let (payload, result) = events::payload_and_result(step.id);
        security::call(registrant, function, &[step.id.into_datum(), Some(payload), result]);
    }
    Ok(())
}
