//! `cte_transfers` (SPEC §11): many independent transfers in one call, set-based. Each item is
//! checked on its own (a refusal needs no subtransaction: nothing of it was written); every
//! reference is claimed by one statement before any wallet is locked (a racing twin waits for
//! this call, as a single transfer's would); every wallet of the call is locked once, in the
//! global lock order; the items are applied to the wallets in memory in their order, each
//! posted or refused on its own; then entries, balances, events, steps and changes are written
//! with one statement each. The same saga as every one-step event decides each posted item's
//! statuses and changes (`fast::run_one_step`).
//!
//! References: an item's reference is its key (SPEC §9). One another step holds makes the item
//! a replay of it (the same request) or `idempotency_conflict`. Within the call, the first item
//! naming a reference claims it; a later one is a replay of it once it posted, a conflict if it
//! asks otherwise, and tried itself if the first was refused (which keeps no key).

use std::collections::HashMap;

use cte_ctel_core::engine::checks::{self, Payload, StepSpec};
use cte_ctel_core::engine::executors::StepType;
use cte_ctel_core::engine::transfer::TransferRequest;
use cte_ctel_core::ledger::Posting;
use cte_ctel_core::CteError;
use pgrx::Uuid;
use rust_decimal::Decimal;

use super::fast::{self, OneStep};
use super::{build, steps, Context};
use crate::store::postings::{Each, Origin};
use crate::store::{events, new_id, references};

/// What became of one item.
#[derive(Debug)]
pub enum Outcome {
    Posted(Uuid),
    /// The same request under its reference was posted before: its event.
    Replayed(Uuid),
    Refused(CteError),
}

/// A checked item: its request, its step's payload and its one posting.
pub struct Checked {
    pub request: TransferRequest,
    pub payload: String,
    pub posting: Posting,
}

const STEP_TYPE: &str = "wallet.transfer";

/// Checks a request as `cte_transfer` checks its arguments: its payload as a step's, planned.
pub fn check(request: TransferRequest) -> Result<Checked, CteError> {
    let payload = request.payload();
    let spec = StepSpec {
        name: STEP_TYPE,
        description: None,
        type_name: STEP_TYPE,
        payload: Payload::Text(&payload),
        payload_bytes: payload.len(),
        order: None,
        max_attempts: Some(1),
    };
    let mut checked = checks::step(&spec, 1, &build::currency_book())?;
    assert_eq!(checked.reference, request.reference, "the payload carries the reference");
    let mut plan = build::only_posting(checked.plan.take(), &checked.step_type)?;
    assert_eq!(plan.postings.len(), 1, "a transfer plans one posting");
    let posting = plan.postings.remove(0);
    Ok(Checked { request, payload, posting })
}

/// Who holds a reference named in the call.
enum Holder {
    /// Another step, outside the call: each item naming it is a replay or a conflict.
    Elsewhere,
    /// Claimed by the call for item `claimant`; `owner` is the item trying it now (the first
    /// one naming it, or a later one after that was refused); `posted` once it posted.
    Call { claimant: usize, owner: usize, posted: bool },
}

/// Posts the checked items (`None`: refused already) in their order, each on its own; returns
/// each item's outcome.
pub fn post(items: &[Option<Checked>], ctx: &Context) -> Result<Vec<Option<Outcome>>, CteError> {
    let ids: Vec<(Uuid, Uuid)> = items.iter().map(|_| (new_id(), new_id())).collect();
    let mut outcomes: Vec<Option<Outcome>> = items.iter().map(|_| None).collect();
    let mut holders = claim(items, &ids, &mut outcomes);
    let mut wallets = Each::lock(&pending(items, &outcomes), ctx.wait)?;
    let mut posted: Vec<(usize, Vec<Option<Decimal>>)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(item) = item.as_ref().filter(|_| outcomes[index].is_none()) else {
            continue;
        };
        match item.request.reference.as_deref().and_then(|r| holders.get_mut(r)) {
            Some(Holder::Call { owner, posted: true, .. }) => {
                // An earlier item of the call posted this reference: the same request replays it.
                let (first, event_id) = (*owner, ids[*owner].0);
                let same = items[first].as_ref().is_some_and(|held| held.payload == item.payload);
                let reference = item.request.reference.clone().unwrap_or_default();
                let held_by = format!("event {event_id}");
                let found = Some((event_id, same));
                let outcome = fast::replay_of(found, STEP_TYPE.to_string(), reference, held_by);
                outcomes[index] = Some(outcome.map_or_else(Outcome::Refused, Outcome::Replayed));
                continue;
            }
            // The first to name it was refused (keeping no key): this one tries it.
            Some(Holder::Call { owner, .. }) => *owner = index,
            Some(Holder::Elsewhere) | None => {}
        }
        match wallets.apply(&item.posting, index) {
            Ok(after) => {
                posted.push((index, after));
                if let Some(Holder::Call { posted, .. }) =
                    item.request.reference.as_deref().and_then(|r| holders.get_mut(r))
                {
                    *posted = true;
                }
            }
            Err(refusal) => outcomes[index] = Some(Outcome::Refused(refusal)),
        }
    }
    settle_references(items, &ids, &holders);
    write(items, &ids, posted, wallets, ctx, &mut outcomes);
    Ok(outcomes)
}

/// The postings of the items still to decide.
fn pending<'i>(items: &'i [Option<Checked>], outcomes: &[Option<Outcome>]) -> Vec<&'i Posting> {
    items
        .iter()
        .zip(outcomes)
        .filter(|(_, outcome)| outcome.is_none())
        .filter_map(|(item, _)| item.as_ref().map(|item| &item.posting))
        .collect()
}

/// Claims each reference the items name (the first item naming it claims it) and decides the
/// items whose reference another step holds: replays and conflicts. Returns who holds each.
fn claim(
    items: &[Option<Checked>],
    ids: &[(Uuid, Uuid)],
    outcomes: &mut [Option<Outcome>],
) -> HashMap<String, Holder> {
    let mut holders: HashMap<String, Holder> = HashMap::new();
    let mut wanted: Vec<(&str, Uuid)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(reference) = item.as_ref().and_then(|item| item.request.reference.as_deref())
        else {
            continue;
        };
        if !holders.contains_key(reference) {
            holders.insert(
                reference.to_string(),
                Holder::Call { claimant: index, owner: index, posted: false },
            );
            wanted.push((reference, ids[index].1));
        }
    }
    for taken in references::claim_each(STEP_TYPE, &wanted) {
        holders.insert(wanted[taken].0.to_string(), Holder::Elsewhere);
    }
    // Every item naming a reference held elsewhere, with its own payload: each is a replay or
    // a conflict on its own.
    let asked: Vec<(usize, &str, &str)> = items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| {
            let item = item.as_ref()?;
            let reference = item.request.reference.as_deref()?;
            matches!(holders.get(reference), Some(Holder::Elsewhere)).then_some((
                index,
                reference,
                item.payload.as_str(),
            ))
        })
        .collect();
    let pairs: Vec<(&str, &str)> = asked.iter().map(|(_, r, payload)| (*r, *payload)).collect();
    let found = events::one_steps_by_reference(STEP_TYPE, &pairs);
    for ((index, reference, _), found) in asked.iter().zip(found) {
        let held_by =
            found.map_or("another event".to_string(), |(event, _)| format!("event {event}"));
        let outcome = fast::replay_of(found, STEP_TYPE.to_string(), reference.to_string(), held_by);
        outcomes[*index] = Some(outcome.map_or_else(Outcome::Refused, Outcome::Replayed));
    }
    holders
}

/// What the call keeps of the references it claimed: none of a reference no item posted (a
/// refused item keeps no key), and a reference posted by a later item than the one that
/// claimed it is handed to that item's step.
fn settle_references(
    items: &[Option<Checked>],
    ids: &[(Uuid, Uuid)],
    holders: &HashMap<String, Holder>,
) {
    let mut free: Vec<(String, String, Uuid)> = Vec::new();
    let mut moves: Vec<(&str, Uuid, Uuid)> = Vec::new();
    for (reference, holder) in holders {
        match *holder {
            Holder::Call { claimant, posted: false, .. } => {
                free.push((STEP_TYPE.to_string(), reference.clone(), ids[claimant].1));
            }
            Holder::Call { claimant, owner, posted: true } if owner != claimant => {
                moves.push((reference, ids[claimant].1, ids[owner].1));
            }
            Holder::Call { .. } | Holder::Elsewhere => {}
        }
    }
    assert!(items.len() == ids.len(), "ids for each item");
    references::release(&free);
    references::hand_over(STEP_TYPE, &moves);
}

/// Writes the posted items: their postings, then their events, steps and changes.
fn write(
    items: &[Option<Checked>],
    ids: &[(Uuid, Uuid)],
    posted: Vec<(usize, Vec<Option<Decimal>>)>,
    wallets: Each,
    ctx: &Context,
    outcomes: &mut [Option<Outcome>],
) {
    let checked: Vec<&Checked> =
        posted.iter().filter_map(|(index, _)| items[*index].as_ref()).collect();
    assert_eq!(checked.len(), posted.len(), "every posted item was checked");
    let postings: Vec<&Posting> = checked.iter().map(|item| &item.posting).collect();
    let references: Vec<Option<&str>> =
        checked.iter().map(|item| item.request.reference.as_deref()).collect();
    let origins: Vec<Origin> =
        posted.iter().map(|(index, _)| Origin { step: Some(ids[*index].1), lien: None }).collect();
    let indexes: Vec<usize> = posted.iter().map(|(index, _)| *index).collect();
    let balances_after = posted.into_iter().map(|(_, after)| after).collect();
    let posting_ids = wallets.write(&postings, &references, &origins, balances_after);
    let step_type = StepType::parse(STEP_TYPE).unwrap_or_else(|_| unreachable!());
    let event = |item: &Checked| OneStep {
        name: STEP_TYPE,
        description: None,
        refund_of: None,
        metadata: item.request.metadata.value().cloned(),
    };
    let mut made = Vec::with_capacity(indexes.len());
    for ((&index, item), posting_id) in indexes.iter().zip(&checked).zip(&posting_ids) {
        let (event_id, step_id) = ids[index];
        let ran =
            fast::run_one_step(&step_type, ctx, || Ok(steps::postings_result(&[*posting_id])));
        let Ok((saga, result)) = ran else {
            panic!("a posted one-step event completes");
        };
        let changes = fast::changes_of(&saga, event_id, step_id, ctx);
        made.push((index, event(item), saga, result, changes));
        outcomes[index] = Some(Outcome::Posted(event_id));
    }
    let rows: Vec<_> = made
        .iter()
        .map(|(index, event, saga, result, changes)| {
            let item = items[*index].as_ref();
            assert!(item.is_some(), "a posted item was checked");
            let (payload, reference) = item.map_or(("", None), |item| {
                (item.payload.as_str(), item.request.reference.as_deref())
            });
            let result = result.as_deref();
            fast::completed_row(
                ids[*index],
                event,
                saga,
                &step_type,
                payload,
                reference,
                result,
                changes,
                ctx,
            )
        })
        .collect();
    events::insert_completed_one_steps(&rows);
    if !rows.is_empty() {
        crate::wake::at_commit();
    }
}
