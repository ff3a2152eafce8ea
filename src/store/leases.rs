//! Leases on steps waiting for the application (SPEC §10): who claimed a step, with which token,
//! until when. `cte_claim_steps` and `cte_extend_lease` (sql/leases.sql) take and extend them;
//! here a report is checked against the lease and ends it, and the worker finds the expired.

use cte_ctel_core::CteError;
use pgrx::prelude::*;
use pgrx::Uuid;

use super::{required, run_cached, spi};

const LEASE: &str = "
    SELECT lease_token, lease_worker, lease_expires_at > pg_catalog.clock_timestamp()
      FROM cte_ctel.cte_transactions WHERE id = $1";

/// Whether a report on `step_id` may go on: with a token, only under the lease it names while
/// it holds; without one, only while no lease holds (as before leases existed). `Ok(true)` when
/// the step carries a lease (holding or run out) that the report is then to end.
pub fn check(step_id: Uuid, token: Option<Uuid>) -> Result<bool, CteError> {
    let lease = Spi::connect(|client| {
        let table = spi(client.select(LEASE, Some(1), &[step_id.into()]), LEASE);
        if table.is_empty() {
            return None;
        }
        let row = table.first();
        Some((
            spi(row.get::<Uuid>(1), LEASE),
            spi(row.get::<String>(2), LEASE),
            spi(row.get::<bool>(3), LEASE) == Some(true),
        ))
    });
    let expired = |why: String| CteError::LeaseExpired { transaction_id: step_id.to_string(), why };
    match (token, lease) {
        (_, None) => Ok(false), // no such step: the drive refuses it in its own words
        (None, Some((_, worker, true))) => Err(expired(format!(
            "it is leased to {}; report with its lease_token",
            worker_name(worker)
        ))),
        (None, Some((held, _, _))) => Ok(held.is_some()),
        (Some(token), Some((Some(held), _, true))) if held == token => Ok(true),
        (Some(_), Some((Some(_), worker, true))) => {
            Err(expired(format!("it was taken over by {}", worker_name(worker))))
        }
        (Some(_), Some(_)) => Err(expired("it has expired".into())),
    }
}

const CLEAR: &str = "
    UPDATE cte_ctel.cte_transactions
       SET lease_worker = NULL, lease_token = NULL, lease_expires_at = NULL
     WHERE id = $1 AND lease_token IS NOT NULL";

/// Ends a step's lease (after the report it was held for, or once it expired).
pub fn clear(step_id: Uuid) {
    Spi::connect_mut(|client| {
        run_cached(client, CLEAR, &[step_id.into()], true);
    });
}

/// The worker a live lease names, quoted (a CHECK keeps a lease's worker with its token).
fn worker_name(worker: Option<String>) -> String {
    format!("{:?}", required(worker, LEASE, "a lease's worker"))
}

// Leases that have run out, oldest first: the step, its event, whether it was claimed to be
// executed (its status waiting), and the worker that held it.
const EXPIRED: &str = "
    SELECT id, event_id, status = 'waiting', lease_worker FROM cte_ctel.cte_transactions
     WHERE lease_expires_at <= pg_catalog.statement_timestamp()
     ORDER BY lease_expires_at LIMIT $1";

/// An expired lease: the step, its event, whether it was an execution, and its worker.
pub struct Expired {
    pub step_id: Uuid,
    pub event_id: Uuid,
    pub executing: bool,
    pub worker: String,
}

/// Up to `limit` leases that have run out.
pub fn expired(limit: i64) -> Vec<Expired> {
    Spi::connect_mut(|client| {
        let table = run_cached(client, EXPIRED, &[limit.into()], false);
        table
            .filter_map(|row| {
                Some(Expired {
                    step_id: spi(row.get::<Uuid>(1), EXPIRED)?,
                    event_id: spi(row.get::<Uuid>(2), EXPIRED)?,
                    executing: spi(row.get::<bool>(3), EXPIRED) == Some(true),
                    // A CHECK: a lease has its worker.
                    worker: required(spi(row.get::<String>(4), EXPIRED), EXPIRED, "its worker"),
                })
            })
            .collect()
    })
}
