//! A step's holds: made as the step runs (the funds its postings will take out of wallets),
//! captured as its event completes (its postings made, the holds given back in the same update
//! of each wallet), each move decided by the lien machine.

use cte_ctel_core::engine::executors::StepPlan;
use cte_ctel_core::ledger::{
    wallet_debits, AccountId, LienAsk, LienEffects, Metadata, Posting, Reserve,
};
use cte_ctel_core::money::Amount;
use cte_ctel_core::CteError;
use pgrx::Uuid;
use rust_decimal::Decimal;

use crate::store::changes::Change;
use crate::store::liens::{self, LienRow, NewLien};
use crate::store::postings::{self, WalletKey};
use crate::store::{ledger, LockWait};

/// Holds the funds a step's postings will take out of wallets, until its event completes.
pub fn hold_for_step(
    event_id: Uuid,
    step_id: Uuid,
    plan: &StepPlan,
    wait: LockWait,
) -> Result<(Vec<Uuid>, Vec<Change>), CteError> {
    let (mut ids, mut changes) = (Vec::new(), Vec::new());
    for (account_id, currency_code, amount) in wallet_debits(&plan.postings) {
        let currency = ledger::currency(&currency_code)?;
        let amount = Amount::parse(&amount.to_string(), &currency)?;
        let account = AccountId::parse(&account_id)?;
        let metadata = Metadata::parse(None, 0)?;
        let lien = NewLien {
            event_id: Some(event_id),
            step_id: Some(step_id),
            account: &account,
            amount: &amount,
            expires_at: None,
            metadata: &metadata,
            idempotency_key: None,
            active: true,
        };
        let (id, change) = liens::create(&lien, wait)?;
        ids.push(id);
        changes.extend(change);
    }
    Ok((ids, changes))
}

/// At its event's completion: gives back a step's holds and makes its postings, marking each
/// lien captured. The funds cannot go elsewhere in between: their rows stay locked.
pub fn capture_step(
    step_id: Uuid,
    plan: &StepPlan,
    reference: Option<&str>,
    wait: LockWait,
) -> Result<Vec<Change>, CteError> {
    let held = liens::lock_of_step(step_id);
    let mut wallets: Vec<WalletKey> = held.iter().map(LienRow::wallet).collect();
    for posting in &plan.postings {
        let entries = posting.entries.iter().filter(|entry| !entry.is_system());
        wallets.extend(entries.map(|entry| (entry.account_id.clone(), posting.currency.clone())));
    }
    postings::lock_wallets(wallets, wait)?;
    let moves = held.iter().map(|lien| match lien.handle(LienAsk::StepCompletes)? {
        Some(effects) => Ok(effects),
        None => panic!("the lien machine captures a step's held lien"),
    });
    let moves: Vec<LienEffects> = moves.collect::<Result<_, CteError>>()?;
    // The holds are given back with the postings' own update of each wallet.
    let releases = held.iter().zip(&moves).map(|(lien, effects)| match effects.reserve {
        Reserve::GiveBack(amount) => (lien.wallet(), amount),
        reserve => panic!("a step's capture gives its hold back: {reserve:?}"),
    });
    let releases: Vec<(WalletKey, Decimal)> = releases.collect();
    let references = vec![reference; plan.postings.len()];
    // They spend what the step held before any freeze.
    let settling: Vec<Posting> =
        plan.postings.iter().cloned().map(|posting| Posting { settles: true, ..posting }).collect();
    let origin = postings::Origin { step: Some(step_id), lien: None };
    let posted = postings::post_releasing(&settling, &references, origin, &releases, wait);
    let posting_ids = posted.map_err(|(_, error)| error)?;
    let Some(&first) = posting_ids.first() else {
        // A step holds only what its postings take: no posting, no lien to write.
        assert!(held.is_empty(), "a step's liens hold what its postings take");
        return Ok(Vec::new());
    };
    Ok(held
        .iter()
        .zip(&moves)
        .map(|(lien, effects)| liens::write_capture(lien, effects, first))
        .collect())
}
