//! Who is calling: the role a session acts as outside the API's SECURITY DEFINER functions, which
//! events record as their creator (SPEC §11), and the rule of who may cancel an event.

use pgrx::prelude::*;
use pgrx::{PgSqlErrorCode, Uuid};

use cte_ctel_core::ledger::Posting;
use cte_ctel_core::CteError;

use crate::driver::security;
use crate::store::tenancy;

/// The role the caller acts as (`current_user` outside the API's SECURITY DEFINER functions):
/// the default of `cte_events.created_by`.
#[pg_extern(volatile, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_caller() -> String {
    security::outer_role().1
}

/// Refuses, with 42501 (SPEC §12), a role read tenancy limits unless `allowed` (asked only of
/// such a role) says the work is within its own accounts; `what` words what it may not do.
/// Every check below is this one: roles outside `cte_tenant` pay a catalog-cache test only.
fn limit(function: &'static str, allowed: impl FnOnce() -> bool, what: impl FnOnce() -> String) {
    if security::may_be_tenant() && !allowed() {
        refuse_limited(function, what());
    }
}

/// Refuses a read of an account outside the caller's read tenancy, whether or not the account
/// exists (a tenant learns nothing of others' accounts).
pub(crate) fn refuse_unreadable_account(function: &'static str, account_id: &str) {
    limit(
        function,
        || tenancy::may_read_account(account_id),
        || format!("read account {account_id:?}"),
    );
}

/// Refuses a read of an event outside the caller's read tenancy, whether or not it exists.
pub(crate) fn refuse_unreadable_event(function: &'static str, event_id: Uuid) {
    limit(function, || tenancy::may_read_event(event_id), || format!("read event {event_id}"));
}

/// Refuses any work on an event the caller may not read (adding a step, starting, cancelling,
/// holding funds for it, refunding it), whether or not the event exists: an event's id, learnt
/// from a reply, gives it nothing to read.
pub(crate) fn refuse_foreign_event(function: &'static str, event_id: Uuid) {
    let what = || "act on an event it may not read".to_string();
    limit(function, || tenancy::may_read_event(event_id), what);
}

/// Refuses to tell the caller the id of an event it may not read, which a replay under
/// another's key or reference would return.
pub(crate) fn refuse_foreign_reply(function: &'static str, event_id: Uuid) {
    let what = || "be told of an event it may not read".to_string();
    limit(function, || tenancy::may_read_event(event_id), what);
}

/// Refuses a change to an account the caller may not read (a currency added), whether or not
/// the account exists.
pub(crate) fn refuse_foreign_account_change(function: &'static str, account_id: &str) {
    let what = || format!("change account {account_id:?}");
    limit(function, || tenancy::may_read_account(account_id), what);
}

/// Refuses a refund of a lien's capture taken from a wallet the caller may not read, whether or
/// not the capture exists (nothing of it named).
pub(crate) fn refuse_foreign_capture(function: &'static str, capture_id: Uuid) {
    let what = || "act on a capture it may not read".to_string();
    limit(function, || tenancy::may_read_capture(capture_id), what);
}

/// Refuses a report on (or a lease of) a step of an event the caller may not read.
pub(crate) fn refuse_foreign_step(function: &'static str, step_id: Uuid) {
    let what = || format!("act on transaction {step_id}");
    limit(function, || tenancy::may_read_step(step_id), what);
}

/// Refuses a capture or release of a lien on a wallet the caller may not read (whether or not
/// the lien exists).
pub(crate) fn refuse_foreign_lien(function: &'static str, lien_id: Uuid) {
    limit(function, || tenancy::may_read_lien(lien_id), || format!("act on lien {lien_id}"));
}

/// Refuses taking money out of (or holding funds on) a wallet the caller may not read: checked
/// before its balance is, so that no refusal tells it another's balance.
pub(crate) fn refuse_foreign_debit(function: &'static str, account_id: &str) {
    let what = || format!("move money out of account {account_id:?}");
    limit(function, || tenancy::may_read_account(account_id), what);
}

/// [`refuse_foreign_debit`] for each wallet `accounts` gives, asked only of a limited role.
fn refuse_foreign_debit_of_each<A: AsRef<str>>(
    function: &'static str,
    accounts: impl FnOnce() -> Vec<A>,
) {
    if !security::may_be_tenant() {
        return;
    }
    for account_id in accounts() {
        refuse_foreign_debit(function, account_id.as_ref());
    }
}

/// [`refuse_foreign_debit`] for every wallet the postings take money out of.
pub(crate) fn refuse_foreign_debits(function: &'static str, postings: &[Posting]) {
    refuse_foreign_debit_of_each(function, || {
        let entries = postings.iter().flat_map(|posting| &posting.entries);
        entries
            .filter(|entry| !entry.is_system() && entry.amount.is_sign_negative())
            .map(|entry| entry.account_id.as_str())
            .collect()
    });
}

/// [`refuse_foreign_debit`] for every wallet an event's postings took money out of (a refund,
/// whose postings are planned from the journal): checked after they are written, so the refusal
/// undoes them.
pub(crate) fn refuse_foreign_debits_of(function: &'static str, event_id: Uuid) {
    refuse_foreign_debit_of_each(function, || tenancy::debited_by_event(event_id));
}

/// Refuses a refund that would take money back out of a wallet the caller may not read (every
/// wallet the refunded event, or capture, paid), before anything is planned: no refusal on
/// their balances may tell it what they hold.
pub(crate) fn refuse_foreign_refund(function: &'static str, paid: impl FnOnce() -> Vec<String>) {
    refuse_foreign_debit_of_each(function, paid);
}

/// Refuses what reads `what` beyond the caller's own accounts (the whole ledger, a dry run's
/// balances).
pub(crate) fn refuse_partial_reader(function: &'static str, what: &str) {
    limit(function, tenancy::reads_all, || format!("read {what}"));
}

/// A refusal as told to the caller: to a role read tenancy limits, without what holds a key or
/// a reference (`CteError::withholding_holder`).
pub(crate) fn withheld_from_tenant(error: CteError) -> CteError {
    let names_a_holder =
        matches!(error, CteError::IdempotencyConflict { .. } | CteError::DuplicateReference { .. });
    if names_a_holder && security::may_be_tenant() && !tenancy::reads_all() {
        return error.withholding_holder();
    }
    error
}

/// `cte_verify_ledger`'s refusal of a role read tenancy limits (it is SQL; this is its first
/// statement). Granted to no role: only the definer function calls it.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_verify_ledger_reader() {
    refuse_partial_reader("cte_verify_ledger", "the whole ledger");
}

fn refuse_limited(function: &'static str, what: String) {
    let caller = security::outer_role().1;
    crate::raise::unwinding(crate::raise::Unwinding {
        code: PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        message: format!("{caller:?} may not {what}: read tenancy limits it to its own accounts"),
        detail: Some("reason: permission_denied"),
        hint: Some(
            "a member of cte_tenant reads, and takes money out of, the accounts whose owner is a \
             role it has the rights of (cte_set_account_owner), and acts on the events that \
             created or touched them",
        ),
        function,
    })
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
    crate::raise::unwinding(crate::raise::Unwinding {
        code: PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        message: format!("{caller_name:?} may not cancel event {event_id}, created by {who}"),
        detail: Some("reason: permission_denied"),
        hint: Some(
            "an event is cancelled by the role that created it, or by a member of cte_admin",
        ),
        function: "cte_cancel_event",
    })
}
