//! Read tenancy (SPEC §12, sql/tenancy.sql): what the calling role may read. The API's read
//! functions are SECURITY DEFINER, so the tables' policies do not apply inside them: they ask
//! here, and the same SQL functions the policies call answer.

use pgrx::datum::DatumWithOid;
use pgrx::Uuid;

// Between a package upgrade and ALTER EXTENSION cte_ctel UPDATE, this library serves an older
// version's SQL, which has no tenancy (and so no tenant): everyone reads everything, as then.
const INSTALLED: &str = "SELECT pg_catalog.to_regprocedure('cte_ctel.cte_reads_all()') IS NOT NULL";
const READS_ALL: &str = "SELECT cte_ctel.cte_reads_all()";
const MAY_READ_ACCOUNT: &str = "SELECT cte_ctel.cte_may_read_account($1)";
const MAY_READ_EVENT: &str = "SELECT cte_ctel.cte_may_read_event($1)";
// NULL (false) for an unknown lien or step, as for one the caller may not read.
const MAY_READ_LIEN: &str = "SELECT cte_ctel.cte_may_read_account(
    (SELECT l.account_id FROM cte_ctel.cte_liens l WHERE l.id = $1))";
// A capture's lien was on the wallet its posting took money out of (false: an unknown one).
const MAY_READ_CAPTURE: &str = "SELECT cte_ctel.cte_may_read_account(
    (SELECT n.account_id FROM cte_ctel.cte_entries n
      WHERE n.posting_id = $1 AND n.lien_id IS NOT NULL AND n.amount < 0 LIMIT 1))";
const MAY_READ_STEP: &str = "SELECT cte_ctel.cte_may_read_event(
    (SELECT t.event_id FROM cte_ctel.cte_transactions t WHERE t.id = $1))";
// The wallets an event's postings paid (a refund of it takes money back out of them).
const CREDITED_BY_EVENT: &str = "
    SELECT DISTINCT n.account_id FROM cte_ctel.cte_transactions t
      JOIN cte_ctel.cte_entries n ON n.transaction_id = t.id
     WHERE t.event_id = $1 AND n.amount > 0 AND n.balance_after IS NOT NULL
     ORDER BY 1";
// The wallets a posting paid (a refund of a lien's capture takes money back out of them).
const CREDITED_BY_POSTING: &str = "
    SELECT DISTINCT n.account_id FROM cte_ctel.cte_entries n
     WHERE n.posting_id = $1 AND n.amount > 0 AND n.balance_after IS NOT NULL
     ORDER BY 1";
const DEBITED_BY_EVENT: &str = "
    SELECT DISTINCT n.account_id FROM cte_ctel.cte_transactions t
      JOIN cte_ctel.cte_entries n ON n.transaction_id = t.id
     WHERE t.event_id = $1 AND n.amount < 0 AND n.balance_after IS NOT NULL
     ORDER BY 1";

/// Whether the caller reads every account (tenancy off, not a tenant, or an administrator).
pub fn reads_all() -> bool {
    allowed(READS_ALL, &[], true)
}

/// Whether the caller may read the account (whether or not it exists).
pub fn may_read_account(account_id: &str) -> bool {
    allowed(MAY_READ_ACCOUNT, &[account_id.into()], true)
}

/// Whether the caller may read the event (whether or not it exists).
pub fn may_read_event(event_id: Uuid) -> bool {
    allowed(MAY_READ_EVENT, &[event_id.into()], true)
}

/// Whether the caller may read the account a lien holds funds on (false for an unknown lien).
pub fn may_read_lien(lien_id: Uuid) -> bool {
    allowed(MAY_READ_LIEN, &[lien_id.into()], false)
}

/// Whether the caller may read the wallet a lien's capture was taken from (false for an unknown
/// capture).
pub fn may_read_capture(posting_id: Uuid) -> bool {
    allowed(MAY_READ_CAPTURE, &[posting_id.into()], false)
}

/// Whether the caller may read the event of a step (false for an unknown step).
pub fn may_read_step(step_id: Uuid) -> bool {
    allowed(MAY_READ_STEP, &[step_id.into()], false)
}

/// One of the tests above: true where the installed SQL has no tenancy. `always_answers`: the
/// test answers for any argument (the lookups by lien, capture or step are NULL, so false, for
/// an unknown one).
fn allowed(query: &'static str, args: &[DatumWithOid], always_answers: bool) -> bool {
    if !installed() {
        return true;
    }
    let answer = super::select_one::<bool>(query, args);
    assert!(answer.is_some() || !always_answers, "{query} answers");
    answer == Some(true)
}

/// Whether the installed SQL has read tenancy (0.3.0 on).
fn installed() -> bool {
    super::select_one::<bool>(INSTALLED, &[]) == Some(true)
}

/// The wallets an event's postings took money out of, in order.
pub fn debited_by_event(event_id: Uuid) -> Vec<String> {
    accounts(DEBITED_BY_EVENT, event_id)
}

/// The wallets an event's postings paid, in order.
pub fn credited_by_event(event_id: Uuid) -> Vec<String> {
    accounts(CREDITED_BY_EVENT, event_id)
}

/// The wallets a posting paid, in order.
pub fn credited_by_posting(posting_id: Uuid) -> Vec<String> {
    accounts(CREDITED_BY_POSTING, posting_id)
}

fn accounts(query: &'static str, id: Uuid) -> Vec<String> {
    pgrx::Spi::connect_mut(|client| {
        let table = super::run_cached(client, query, &[id.into()], false);
        table.filter_map(|row| super::spi(row.get::<String>(1), query)).collect()
    })
}
