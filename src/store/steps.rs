//! Running one step, or its compensation, inside a subtransaction: built-in steps post their
//! planned postings; `external` waits; a custom step calls its registered functions.

use std::cell::RefCell;
use std::collections::HashMap;

use cte_ctel_core::engine::executors::{self, StepPlan, StepType};
use cte_ctel_core::money::Currency;
use cte_ctel_core::CteError;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};

use super::events::StepRow;
use super::subtransaction::{self, Failure};
use super::{bulk, ledger, liens, spi};

/// How a step (or its compensation) ended, when it did not fail.
pub enum Outcome {
    /// Done; the step's result (kept on the step).
    Done(Option<Value>),
    /// Waiting on the outside world.
    Waiting,
}

/// Plans a built-in step from its payload, reading each currency from the table once (a batch
/// of a thousand items in one currency asked for it a thousand times: a quarter of its time).
pub fn plan(step_type: &StepType, payload: &Value) -> Result<Option<StepPlan>, CteError> {
    let read: RefCell<HashMap<String, Currency>> = RefCell::new(HashMap::new());
    executors::plan(step_type, payload, &|code: &str| {
        if let Some(currency) = read.borrow().get(code) {
            return Ok(currency.clone());
        }
        let currency = ledger::currency(code)?;
        read.borrow_mut().insert(code.to_string(), currency.clone());
        Ok(currency)
    })
}

/// A built-in step's plan, made on first use in this drive and kept on the step.
fn plan_of<'s>(step_type: &StepType, step: &'s StepRow) -> Result<Option<&'s StepPlan>, CteError> {
    if step.plan.get().is_none() {
        if let Some(made) = plan(step_type, &step.payload)? {
            let _ = step.plan.set(made);
        }
    }
    Ok(step.plan.get())
}

/// The plan of a built-in money step, which always has one.
fn planned<'s>(step_type: &StepType, step: &'s StepRow) -> Result<&'s StepPlan, CteError> {
    let planned = plan_of(step_type, step)?;
    assert!(planned.is_some(), "built-in money steps have a plan");
    planned.ok_or_else(|| CteError::StepTypeUnknown { step_type: step.step_type.clone() })
}

/// Every wallet (account, currency) the built-in steps of an event touch, and how many postings
/// they plan in all. Custom steps are not known in advance.
pub fn wallets_touched(steps: &[StepRow]) -> (Vec<(String, String)>, usize) {
    let mut wallets = Vec::new();
    let mut postings = 0;
    for step in steps {
        let planned =
            StepType::parse(&step.step_type).ok().and_then(|t| plan_of(&t, step).ok().flatten());
        for posting in planned.iter().flat_map(|planned| planned.postings.iter()) {
            postings += 1;
            for entry in posting.entries.iter().filter(|entry| !entry.is_system()) {
                wallets.push((entry.account_id.clone(), posting.currency.clone()));
            }
        }
    }
    (wallets, postings)
}

/// Makes the postings of the steps whose funds were held (withdrawals, exchanges), in order,
/// as their event completes.
pub fn capture_held(steps: &[StepRow]) -> Result<(), CteError> {
    for step in steps {
        let step_type = StepType::parse(&step.step_type)?;
        if matches!(step_type, StepType::Withdrawal | StepType::Exchange) {
            let reference = step.payload.get("reference").and_then(Value::as_str);
            liens::capture_step(step.id, planned(&step_type, step)?, reference)?;
        }
    }
    Ok(())
}

/// Runs a step in a subtransaction: none of its writes remain if it fails.
pub fn execute(step: &StepRow) -> Result<Outcome, Failure> {
    subtransaction::run(|| {
        let step_type = StepType::parse(&step.step_type)?;
        match step_type {
            StepType::External => Ok(Outcome::Waiting),
            StepType::Custom(name) => {
                let (execute_fn, _) = executor_functions(&name)?;
                Ok(Outcome::Done(call_execute(&execute_fn, step)))
            }
            StepType::Withdrawal | StepType::Exchange => {
                // Their funds are held with liens; the postings are made when the event
                // completes (`capture_held`), or the liens released if it is compensated.
                let planned = planned(&step_type, step)?;
                let lien_ids = liens::hold_for_step(step.event_id, step.id, planned)?;
                let ids: Vec<String> = lien_ids.iter().map(ToString::to_string).collect();
                Ok(Outcome::Done(Some(json!({ "lien_ids": ids }))))
            }
            StepType::Transfer | StepType::Deposit | StepType::Batch => {
                let planned = planned(&step_type, step)?;
                post_plan(step, planned).map(|result| Outcome::Done(Some(result)))
            }
        }
    })
}

/// Posts a plan's postings with the step's reference, all at once (`bulk`); a batch records a
/// result per item, and a refused item names itself in the step's error.
fn post_plan(step: &StepRow, planned: &StepPlan) -> Result<Value, Failure> {
    let reference = step.payload.get("reference").and_then(Value::as_str);
    if planned.items.is_empty() {
        let ids = if planned.postings.len() == 1 {
            vec![ledger::post(&planned.postings[0], reference, Some(step.id))?]
        } else {
            let references = vec![reference; planned.postings.len()];
            bulk::post_all(&planned.postings, &references, step.id).map_err(|(_, error)| error)?
        };
        return Ok(super::events::postings_result(&ids));
    }
    let mut references = Vec::with_capacity(planned.postings.len());
    for item in &planned.items {
        references.extend(std::iter::repeat_n(item.reference.as_deref(), item.count));
    }
    let ids =
        bulk::post_all(&planned.postings, &references, step.id).map_err(|(index, error)| {
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
    Ok(json!({ "batch_id": step.payload.get("batch_id"), "items": items }))
}

/// Compensates a completed step in a subtransaction: built-in steps post the reversal of
/// exactly what they posted; `external` waits for the application to report; a custom step
/// calls its compensation function, if it has one.
pub fn compensate(step: &StepRow) -> Result<Outcome, Failure> {
    subtransaction::run(|| {
        let step_type = StepType::parse(&step.step_type)?;
        match step_type {
            StepType::External => Ok(Outcome::Waiting),
            StepType::Custom(name) => {
                // An executor without a compensation function has nothing to undo.
                if let (_, Some(compensate_fn)) = executor_functions(&name)? {
                    call_compensate(&compensate_fn, step);
                }
                Ok(Outcome::Done(None))
            }
            StepType::Withdrawal | StepType::Exchange => {
                liens::release_of_step(step.id, "its transaction was compensated")?;
                Ok(Outcome::Done(None))
            }
            StepType::Transfer | StepType::Deposit | StepType::Batch => {
                let reversals = ledger::reverse_postings_of(step.id)?;
                let ids: Vec<String> = reversals.iter().map(ToString::to_string).collect();
                Ok(Outcome::Done(Some(json!({ "reversals": ids }))))
            }
        }
    })
}

const EXECUTOR_FUNCTIONS: &str = "
    SELECT execute_fn::oid::regproc::text, compensate_fn::oid::regproc::text
      FROM cte_ctel.cte_executors WHERE type = $1";

/// A custom type's execute and compensate functions, named as PostgreSQL quotes and qualifies
/// them (the search_path is pg_catalog, pg_temp, so anything else comes schema-qualified).
fn executor_functions(step_type: &str) -> Result<(String, Option<String>), CteError> {
    let row = Spi::connect(|client| {
        let table = spi(
            client.select(EXECUTOR_FUNCTIONS, Some(1), &[step_type.into()]),
            EXECUTOR_FUNCTIONS,
        );
        if table.is_empty() {
            return None;
        }
        let row = table.first();
        let execute_fn = spi(row.get::<String>(1), EXECUTOR_FUNCTIONS);
        Some((execute_fn.unwrap_or_default(), spi(row.get::<String>(2), EXECUTOR_FUNCTIONS)))
    });
    row.ok_or_else(|| CteError::StepTypeUnknown { step_type: step_type.to_string() })
}

fn call_execute(function: &str, step: &StepRow) -> Option<Value> {
    // Generated text holds only a function name quoted by PostgreSQL itself; values are bound.
    let query = format!("SELECT {function}($1::uuid, $2::jsonb)");
    let args = [step.id.into(), JsonB(step.payload.clone()).into()];
    let result: Option<JsonB> = Spi::connect_mut(|client| {
        let table = spi(client.update(query.as_str(), Some(1), &args), &query);
        spi(table.first().get_one(), &query)
    });
    result.map(|JsonB(value)| value)
}

fn call_compensate(function: &str, step: &StepRow) {
    let query = format!("SELECT {function}($1::uuid, $2::jsonb, $3::jsonb)");
    let args =
        [step.id.into(), JsonB(step.payload.clone()).into(), step.result.clone().map(JsonB).into()];
    Spi::connect_mut(|client| {
        spi(client.update(query.as_str(), None, &args), &query);
    });
}

const EXECUTOR_REGISTERED: &str =
    "SELECT EXISTS (SELECT 1 FROM cte_ctel.cte_executors WHERE type = $1)";

/// Whether a custom type has a registered executor.
pub fn is_registered(step_type: &str) -> bool {
    crate::store::select_one::<bool>(EXECUTOR_REGISTERED, &[step_type.into()]) == Some(true)
}

const SIGNATURE_MATCHES: &str = "
    SELECT p.prokind = 'f' AND p.prorettype = $2::regtype
           AND pg_catalog.oidvectortypes(p.proargtypes) = $3
      FROM pg_catalog.pg_proc p WHERE p.oid = $1";

const EXECUTOR_UPSERT: &str = "
    INSERT INTO cte_ctel.cte_executors (type, execute_fn, compensate_fn) VALUES ($1, $2, $3)
    ON CONFLICT (type) DO UPDATE
       SET execute_fn = EXCLUDED.execute_fn, compensate_fn = EXCLUDED.compensate_fn,
           registered_at = now()";

fn signature_matches(function: pgrx::pg_sys::Oid, returns: &str, arguments: &str) -> bool {
    let args = [function.into(), returns.into(), arguments.into()];
    crate::store::select_one::<bool>(SIGNATURE_MATCHES, &args) == Some(true)
}

/// Registers (or replaces) the functions of a custom step type, after checking their shapes:
/// `execute_fn(uuid, jsonb) RETURNS jsonb`, `compensate_fn(uuid, jsonb, jsonb) RETURNS void`.
pub fn register_executor(
    type_name: &str,
    execute_fn: pgrx::pg_sys::Oid,
    compensate_fn: Option<pgrx::pg_sys::Oid>,
) -> Result<(), CteError> {
    let invalid = |why: &str| CteError::ExecutorInvalid {
        step_type: type_name.to_string(),
        why: why.to_string(),
    };
    match StepType::parse(type_name) {
        Ok(StepType::Custom(_)) => {}
        Ok(_) => return Err(invalid("the type is built in")),
        Err(_) => {
            return Err(invalid(
                "a type is lowercase words of letters, digits and _ joined by dots",
            ))
        }
    }
    if !signature_matches(execute_fn, "jsonb", "uuid, jsonb") {
        return Err(invalid("execute_fn must be a function (uuid, jsonb) RETURNS jsonb"));
    }
    if let Some(compensate_fn) = compensate_fn {
        if !signature_matches(compensate_fn, "void", "uuid, jsonb, jsonb") {
            return Err(invalid(
                "compensate_fn must be a function (uuid, jsonb, jsonb) RETURNS void",
            ));
        }
    }
    let args = [type_name.into(), execute_fn.into(), compensate_fn.into()];
    Spi::connect_mut(|client| {
        spi(client.update(EXECUTOR_UPSERT, None, &args), EXECUTOR_UPSERT);
    });
    Ok(())
}
