//! Who is calling: the role a session acts as outside the API's SECURITY DEFINER functions, which
//! events record as their creator (SPEC §11), and the rule of who may cancel an event.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{PgSqlErrorCode, Uuid};

use crate::driver::security;

/// The role the caller acts as (`current_user` outside the API's SECURITY DEFINER functions):
/// the default of `cte_events.created_by`.
#[pg_extern(volatile, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_caller() -> String {
    security::outer_role().1
}

/// Refuses, with 42501 (SPEC §12), a read of an account outside the caller's read tenancy,
/// whether or not the account exists (a tenant learns nothing of others' accounts).
pub(crate) fn refuse_unreadable_account(function: &'static str, account_id: &str) {
    if !crate::store::tenancy::may_read_account(account_id) {
        refuse_read(function, format!("account {account_id:?}"));
    }
}

/// Refuses, with 42501 (SPEC §12), a read of an event outside the caller's read tenancy,
/// whether or not the event exists.
pub(crate) fn refuse_unreadable_event(function: &'static str, event_id: Uuid) {
    if !crate::store::tenancy::may_read_event(event_id) {
        refuse_read(function, format!("event {event_id}"));
    }
}

/// Refuses, with 42501 (SPEC §12), a check of the whole ledger by a role read tenancy limits.
pub(crate) fn refuse_partial_reader(function: &'static str) {
    if !crate::store::tenancy::reads_all() {
        refuse_read(function, "the whole ledger".to_string());
    }
}

/// `cte_verify_ledger`'s refusal of a role read tenancy limits (it is SQL; this is its first
/// statement). Granted to no role: only the definer function calls it.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_verify_ledger_reader() {
    refuse_partial_reader("cte_verify_ledger");
}

fn refuse_read(function: &'static str, what: String) {
    let caller = security::outer_role().1;
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("{caller:?} may not read {what}: read tenancy limits it to its own accounts"),
        function,
    )
    .set_detail("reason: permission_denied")
    .set_hint(
        "a member of cte_tenant reads the accounts whose owner is a role it has the rights of \
         (cte_set_account_owner), and the events that created or touched them",
    )
    .report(PgLogLevel::ERROR);
}

/// Refuses, with 42501 (SPEC §11), a cancel by a role that neither created the event nor acts
/// with `cte_admin`'s rights. An unknown event passes: the drive refuses it in its own words.
pub(crate) fn refuse_cancel_by_another(event_id: Uuid) {
    let (caller, caller_name) = security::outer_role();
    if security::acts_as_admin(caller) {
        return;
    }
    let Some(creator) = crate::store::events::creator(event_id) else {
        return;
    };
    if creator.as_deref() == Some(caller_name.as_str()) {
        return;
    }
    let who =
        creator.map_or("an administrator, before 0.3.0".to_string(), |role| format!("{role:?}"));
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("{caller_name:?} may not cancel event {event_id}, created by {who}"),
        "cte_cancel_event",
    )
    .set_detail("reason: permission_denied")
    .set_hint("an event is cancelled by the role that created it, or by a member of cte_admin")
    .report(PgLogLevel::ERROR);
}
