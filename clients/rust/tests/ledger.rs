//! The ledger's calls beyond one transfer: the description a step keeps.

mod common;

use common::{money, suffix, wallets, USD};
use cte_ctel_client::{money as amounts, Error, Ledger, NewStep, Reason, RunOptions};
use serde_json::{json, Value};

/// A `wallet.transfer` step's payload.
fn pay(source: &str, destination: &str, amount: &str) -> Value {
    json!({"source_account_id": source, "destination_account_id": destination,
           "amount": amounts::to_json(money(amount)), "currency": USD})
}

#[tokio::test]
async fn a_step_description_is_stored_with_the_step() {
    let Some(env) = common::env("a_step_description_is_stored_with_the_step") else { return };
    let (app, name) = (env.app().await, suffix());
    let accounts = wallets(&app, &name, &[("alice", "10"), ("bob", "0")]).await;
    let (alice, bob) = (&accounts[0], &accounts[1]);
    let ledger = Ledger::new(&app);
    let said = "order 7: the seller's share";
    let steps = [
        NewStep::new("pay", "wallet.transfer", pay(alice, bob, "2.50")).description(said),
        NewStep::new("tip", "wallet.transfer", pay(alice, bob, "0.50")),
    ];
    let options =
        RunOptions { idempotency_key: Some(format!("described-{name}")), ..Default::default() };
    let run = ledger.run_event("described", &steps, &options).await.unwrap();
    assert_eq!(run.status, "completed");
    let sql = "SELECT name, description FROM cte_ctel.cte_transactions WHERE event_id = $1 \
               ORDER BY \"order\"";
    let rows = app.query(sql, &[&run.event_id]).await.unwrap();
    let kept: Vec<(String, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(kept, [("pay".into(), Some(said.into())), ("tip".into(), None)]);

    // The description is part of the request the key names: another one is a conflict.
    let other = [steps[0].clone().description("another"), steps[1].clone()];
    match ledger.run_event("described", &other, &options).await {
        Err(Error::Refused(refused)) => assert_eq!(refused.reason, Reason::IdempotencyConflict),
        other => panic!("another description under the key: {other:?}"),
    }
}
