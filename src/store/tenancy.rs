//! Read tenancy (SPEC §12, sql/tenancy.sql): what the calling role may read. The API's read
//! functions are SECURITY DEFINER, so the tables' policies do not apply inside them: they ask
//! here, and the same SQL functions the policies call answer.

use pgrx::Uuid;

// Between a package upgrade and ALTER EXTENSION cte_ctel UPDATE, this library serves an older
// version's SQL, which has no tenancy (and so no tenant): everyone reads everything, as then.
const INSTALLED: &str = "SELECT pg_catalog.to_regprocedure('cte_ctel.cte_reads_all()') IS NOT NULL";
const READS_ALL: &str = "SELECT cte_ctel.cte_reads_all()";
const MAY_READ_ACCOUNT: &str = "SELECT cte_ctel.cte_may_read_account($1)";
const MAY_READ_EVENT: &str = "SELECT cte_ctel.cte_may_read_event($1)";

/// Whether the caller reads every account (tenancy off, not a tenant, or an administrator).
pub fn reads_all() -> bool {
    if !installed() {
        return true;
    }
    let answer = super::select_one::<bool>(READS_ALL, &[]);
    assert!(answer.is_some(), "cte_reads_all answers");
    answer == Some(true)
}

/// Whether the caller may read the account (whether or not it exists).
pub fn may_read_account(account_id: &str) -> bool {
    if !installed() {
        return true;
    }
    let answer = super::select_one::<bool>(MAY_READ_ACCOUNT, &[account_id.into()]);
    assert!(answer.is_some(), "cte_may_read_account answers");
    answer == Some(true)
}

/// Whether the caller may read the event (whether or not it exists).
pub fn may_read_event(event_id: Uuid) -> bool {
    if !installed() {
        return true;
    }
    let answer = super::select_one::<bool>(MAY_READ_EVENT, &[event_id.into()]);
    assert!(answer.is_some(), "cte_may_read_event answers");
    answer == Some(true)
}

/// Whether the installed SQL has read tenancy (0.3.0 on).
fn installed() -> bool {
    super::select_one::<bool>(INSTALLED, &[]) == Some(true)
}
