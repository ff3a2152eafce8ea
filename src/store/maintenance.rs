//! One maintenance pass: compensate events past their deadline, run retries that fell due,
//! expire liens past their expiry, fold system-account deltas, send queued notifications.
//! Bounded per pass; each event is handled in its own subtransaction, so one that fails is
//! logged and the pass goes on.

use cte_ctel_core::engine::RetryPolicy;
use cte_ctel_core::limits::EVENTS_PER_MAINTENANCE_MAX;
use pgrx::prelude::*;
use pgrx::Uuid;
use serde_json::{json, Value};

use super::run::{self, Command};
use super::{ledger, liens, notifications, spi, subtransaction};

// SKIP LOCKED: an event another session is driving is left for the next pass.
const OVERDUE_EVENTS: &str = "
    SELECT id FROM cte_ctel.cte_events
     WHERE status = 'waiting' AND deadline < now()
     ORDER BY deadline LIMIT $1 FOR UPDATE SKIP LOCKED";

const DUE_RETRIES: &str = "
    SELECT e.id FROM cte_ctel.cte_events e
     WHERE e.status = 'waiting'
       AND EXISTS (SELECT 1 FROM cte_ctel.cte_transactions t
                    WHERE t.event_id = e.id AND t.status = 'waiting'
                      AND t.next_attempt_at <= now())
     LIMIT $1 FOR UPDATE SKIP LOCKED";

fn event_ids(query: &str) -> Vec<Uuid> {
    Spi::connect_mut(|client| {
        let table = spi(client.update(query, None, &[EVENTS_PER_MAINTENANCE_MAX.into()]), query);
        table.filter_map(|row| spi(row.get::<Uuid>(1), query)).collect()
    })
}

/// Drives each event with `command`, each in its own subtransaction; returns (done, failed).
fn drive_each(
    ids: &[Uuid],
    command: fn() -> Command,
    now_ms: i64,
    policy: &RetryPolicy,
) -> (usize, usize) {
    let mut failed = 0;
    for id in ids {
        let outcome = subtransaction::run(|| Ok(run::drive(*id, command(), now_ms, policy)?));
        if let Err(failure) = outcome {
            failed += 1;
            pgrx::warning!(
                "cte_ctel maintenance: event {id}: {} ({})",
                failure.message,
                failure.sqlstate
            );
        }
    }
    (ids.len() - failed, failed)
}

/// One pass; returns what it did. The pass is one transaction: it picks its events (locking
/// their rows) and its due liens, then locks every wallet any of them touches in the global
/// order before changing anything, so it cannot deadlock with a caller's posting.
pub fn run(now_ms: i64, policy: &RetryPolicy) -> Value {
    let overdue = event_ids(OVERDUE_EVENTS);
    let mut due = event_ids(DUE_RETRIES);
    due.retain(|id| !overdue.contains(id)); // timed out first: nothing left to retry
    let due_liens = liens::lock_due(EVENTS_PER_MAINTENANCE_MAX);
    let mut wallets = run::wallets_of_events(&overdue);
    wallets.extend(run::wallets_of_events(&due));
    wallets.extend(due_liens.iter().map(|lien| (lien.account_id.clone(), lien.currency.clone())));
    if !wallets.is_empty() {
        ledger::lock_wallets(wallets);
    }
    let (timed_out, timeout_failures) = drive_each(&overdue, || Command::Timeout, now_ms, policy);
    let (retried, retry_failures) = drive_each(&due, || Command::Resume, now_ms, policy);
    let expired = liens::expire(due_liens);
    let folded = ledger::fold_system_balances();
    let notified = notifications::send_queued();
    json!({
        "events_timed_out": timed_out,
        "events_retried": retried,
        "events_failed": timeout_failures + retry_failures,
        "liens_expired": expired,
        "system_deltas_folded": folded,
        "notifications_sent": notified,
    })
}
