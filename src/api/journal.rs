//! The guard that keeps the journal append-only, whoever asks.

use cte_ctel_core::CteError;
use pgrx::prelude::*;

/// Trigger on `cte_entries`: refuses every UPDATE, DELETE and TRUNCATE.
#[pg_trigger]
fn cte_journal_append_only<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, CteError> {
    let operation = match trigger.op() {
        Ok(op) => op.to_string(),
        Err(_) => "a change".to_string(),
    };
    super::raise("cte_journal_append_only", CteError::JournalAppendOnly { operation })
}
