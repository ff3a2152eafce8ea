//! Registering custom step types (SPEC §4): as the calling role, which must own the functions.

use pgrx::pg_sys::Oid;
use pgrx::prelude::*;

use super::{refused, required};
use crate::driver::security;

/// Registers (or replaces) a custom step type: `execute_fn(uuid, jsonb) RETURNS jsonb` and
/// optionally `compensate_fn(uuid, jsonb, jsonb) RETURNS void`, both owned by the calling role.
/// SECURITY INVOKER (its CREATE FUNCTION is in `sql/executors.sql`): the registrant is the
/// caller, never hidden behind a definer.
#[pg_extern(sql = false)]
fn cte_register_executor(
    step_type: Option<String>,
    execute_fn: Option<Oid>,
    compensate_fn: default!(Option<Oid>, "NULL"),
) {
    refused("cte_register_executor", move || {
        let type_name = required(step_type, "type")?;
        let execute_fn = required(execute_fn, "execute_fn")?;
        security::register(&type_name, execute_fn, compensate_fn)
    })
}

/// 0.1.0's registration by oid, which ran as the extension's owner: the symbol is kept so that
/// 0.1.0's SQL still loads between a package upgrade and `ALTER EXTENSION cte_ctel UPDATE`,
/// but it registers nothing (0.2.0 drops the function).
#[pg_extern(sql = false)]
fn cte_register_executor_by_oid(
    _step_type: Option<String>,
    _execute_fn: Option<Oid>,
    _compensate_fn: Option<Oid>,
) {
    refused("cte_register_executor", move || {
        Err(cte_ctel_core::CteError::ExecutorInvalid {
            step_type: String::new(),
            why:
                "this database still has cte_ctel 0.1.0's SQL: run ALTER EXTENSION cte_ctel UPDATE"
                    .into(),
            fix: "run ALTER EXTENSION cte_ctel UPDATE, then register again",
        })
    })
}
