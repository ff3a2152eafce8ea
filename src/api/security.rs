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
