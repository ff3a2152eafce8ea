//! References in SQL: a step's `reference` (and each batch item's) names one posting of its step
//! type among steps that did not fail. The table's primary key holds that against racing
//! sessions; a claim waits only for the session that holds the same reference, not for wallets,
//! since it is made before any wallet is locked.

use cte_ctel_core::CteError;
use pgrx::prelude::*;
use pgrx::Uuid;

use super::{run_cached, Row};

const CLAIM: &str = "
    WITH wanted AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
                   WITH ORDINALITY AS w(type, reference, item_id, n)),
    claimed AS (
        INSERT INTO cte_ctel.cte_references (type, reference, transaction_id, item_id)
        SELECT type, reference, $4, item_id FROM wanted ORDER BY n
        ON CONFLICT (type, reference) DO NOTHING
        RETURNING type, reference)
    SELECT w.type, w.reference,
           (SELECT t.event_id FROM cte_ctel.cte_references r
              JOIN cte_ctel.cte_transactions t ON t.id = r.transaction_id
             WHERE r.type = w.type AND r.reference = w.reference)
      FROM wanted w
     WHERE NOT EXISTS (SELECT 1 FROM claimed c WHERE c.type = w.type AND c.reference = w.reference)
     ORDER BY w.n LIMIT 1";

/// One reference to claim: the step type it names a posting of, the reference, and the batch
/// item holding it (`None` for a step's own).
pub struct Claim<'a> {
    pub step_type: &'a str,
    pub reference: &'a str,
    pub item_id: Option<&'a str>,
}

/// Claims references for `step_id`; refused with `duplicate_reference`, naming the event that
/// holds it, if one is taken (by a step that did not fail, committed or not yet: a racing claim
/// waits for the other to commit or roll back, then decides).
pub fn claim(claims: &[Claim], step_id: Uuid) -> Result<(), CteError> {
    if claims.is_empty() {
        return Ok(());
    }
    let types: Vec<&str> = claims.iter().map(|claim| claim.step_type).collect();
    let references: Vec<&str> = claims.iter().map(|claim| claim.reference).collect();
    let items: Vec<Option<&str>> = claims.iter().map(|claim| claim.item_id).collect();
    let args = [types.into(), references.into(), items.into(), step_id.into()];
    let taken = Spi::connect_mut(|client| {
        let table = run_cached(client, CLAIM, &args, true);
        if table.is_empty() {
            return None;
        }
        Some(Row::first_of(table, CLAIM, |row| {
            (row.required(1, "step type"), row.required(2, "reference"), row.optional::<Uuid>(3))
        }))
    });
    match taken {
        None => Ok(()),
        Some((step_type, reference, event)) => Err(CteError::DuplicateReference {
            step_type,
            reference,
            held_by: event.map_or("another event".into(), |event| format!("event {event}")),
        }),
    }
}

const RELEASE: &str = "
    DELETE FROM cte_ctel.cte_references r
     USING unnest($1::text[], $2::text[], $3::uuid[]) AS h(type, reference, transaction_id)
     WHERE r.type = h.type AND r.reference = h.reference AND r.transaction_id = h.transaction_id";

/// Gives back references held by steps that failed for good: (step type, reference, step).
pub fn release(held: &[(String, String, Uuid)]) {
    if held.is_empty() {
        return;
    }
    let types: Vec<&str> = held.iter().map(|(step_type, _, _)| step_type.as_str()).collect();
    let references: Vec<&str> = held.iter().map(|(_, reference, _)| reference.as_str()).collect();
    let steps: Vec<Uuid> = held.iter().map(|(_, _, step)| *step).collect();
    let args = [types.into(), references.into(), steps.into()];
    Spi::connect_mut(|client| {
        run_cached(client, RELEASE, &args, true);
    });
}

// Each reference once (the caller's duplicates removed), in bytewise order, so that two bulk
// calls claiming some of the same references wait for each other instead of deadlocking.
const CLAIM_EACH: &str = "
    WITH wanted AS (
        SELECT * FROM unnest($2::text[], $3::uuid[]) WITH ORDINALITY AS w(reference, step, n)),
    claimed AS (
        INSERT INTO cte_ctel.cte_references (type, reference, transaction_id, item_id)
        SELECT $1, reference, step, NULL FROM wanted ORDER BY reference COLLATE \"C\"
        ON CONFLICT (type, reference) DO NOTHING
        RETURNING reference)
    SELECT w.n FROM wanted w
     WHERE NOT EXISTS (SELECT 1 FROM claimed c WHERE c.reference = w.reference)
     ORDER BY w.n";

/// Claims each `(reference, step)` for `step_type` (each reference once); returns the indexes
/// of those another step holds (committed, or waited for until it commits or rolls back).
pub fn claim_each(step_type: &str, wanted: &[(&str, Uuid)]) -> Vec<usize> {
    if wanted.is_empty() {
        return Vec::new();
    }
    let references: Vec<&str> = wanted.iter().map(|(reference, _)| *reference).collect();
    let steps: Vec<Uuid> = wanted.iter().map(|(_, step)| *step).collect();
    let args = [step_type.into(), references.into(), steps.into()];
    Spi::connect_mut(|client| {
        let table = run_cached(client, CLAIM_EACH, &args, true);
        Row::each(table, CLAIM_EACH, |row| {
            let n: i64 = row.required(1, "an index");
            usize::try_from(n - 1).unwrap_or(usize::MAX)
        })
    })
}

const HAND_OVER: &str = "
    UPDATE cte_ctel.cte_references r SET transaction_id = h.to_step
      FROM unnest($2::text[], $3::uuid[], $4::uuid[]) AS h(reference, from_step, to_step)
     WHERE r.type = $1 AND r.reference = h.reference AND r.transaction_id = h.from_step";

/// Hands claimed references of `step_type` from one step to another: `(reference, from, to)`
/// (a bulk item refused, its reference posted by a later item of the same call).
pub fn hand_over(step_type: &str, moves: &[(&str, Uuid, Uuid)]) {
    if moves.is_empty() {
        return;
    }
    let references: Vec<&str> = moves.iter().map(|(reference, _, _)| *reference).collect();
    let from: Vec<Uuid> = moves.iter().map(|(_, from, _)| *from).collect();
    let to: Vec<Uuid> = moves.iter().map(|(_, _, to)| *to).collect();
    let args = [step_type.into(), references.into(), from.into(), to.into()];
    Spi::connect_mut(|client| {
        run_cached(client, HAND_OVER, &args, true);
    });
}
