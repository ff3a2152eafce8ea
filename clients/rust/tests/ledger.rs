//! The ledger's calls beyond one transfer: bulk transfers (each item posted, refused or
//! replayed on its own), refunds by legs, and the description a step keeps.

mod common;

use common::{balance, money, suffix, wallets, USD};
use cte_ctel_client::{
    money as amounts, Error, Ledger, NewStep, Reason, RefundLeg, RunOptions, TransferItem,
    TransferOutcome, TransferStatus,
};
use serde_json::{json, Value};
use tokio_postgres::Client;

/// A `wallet.transfer` step's payload.
fn pay(source: &str, destination: &str, amount: &str) -> Value {
    json!({"source_account_id": source, "destination_account_id": destination,
           "amount": amounts::to_json(money(amount)), "currency": USD})
}

/// The balances of `accounts` in USD, in order.
async fn balances(app: &Client, accounts: &[String]) -> Vec<String> {
    let mut read = Vec::new();
    for account in accounts {
        read.push(balance(app, account).await.to_string());
    }
    read
}

#[tokio::test]
async fn bulk_transfers_post_the_items_around_a_refused_one() {
    let Some(env) = common::env("bulk_transfers_post_the_items_around_a_refused_one") else {
        return;
    };
    let (app, name) = (env.app().await, suffix());
    let accounts = wallets(&app, &name, &[("alice", "50"), ("bob", "0"), ("carol", "0")]).await;
    let (alice, bob, carol) = (&accounts[0], &accounts[1], &accounts[2]);
    let items = [
        TransferItem::new(alice, bob, money("10.00"), USD)
            .reference(&format!("bulk-1-{name}"))
            .metadata(json!({"order": 1})),
        TransferItem::new(alice, carol, money("100.00"), USD).reference(&format!("bulk-2-{name}")),
        TransferItem::new(alice, carol, money("5.25"), USD),
    ];
    let outcomes = Ledger::new(&app).transfers(&items).await.unwrap();
    let seen: Vec<_> = outcomes.iter().map(|o| (o.item, o.status, o.reason.as_deref())).collect();
    assert_eq!(
        seen,
        [
            (1, TransferStatus::Posted, None),
            (2, TransferStatus::Refused, Some("insufficient_funds")),
            (3, TransferStatus::Posted, None),
        ]
    );
    assert_eq!(outcomes[1].event_id, None, "a refused item has no event");
    let (first, third) = (outcomes[0].event_id.unwrap(), outcomes[2].event_id.unwrap());
    assert_ne!(first, third);
    assert_eq!(common::status(&app, first).await, "completed");
    assert_eq!(common::status(&app, third).await, "completed");
    assert_eq!(balances(&app, &accounts).await, ["34.75", "10.00", "5.25"]);
    let sql = "SELECT metadata FROM cte_ctel.cte_events WHERE id = $1";
    let metadata: Option<Value> = app.query_one(sql, &[&first]).await.unwrap().get(0);
    assert_eq!(metadata, Some(json!({"order": 1})), "an item's metadata is its event's");
    assert_eq!(Ledger::new(&app).transfers(&[]).await.unwrap(), [], "no item, no row");
}

#[tokio::test]
async fn bulk_transfers_sent_again_replay_and_post_nothing_twice() {
    use TransferStatus::{Posted, Refused, Replayed};
    let Some(env) = common::env("bulk_transfers_sent_again_replay_and_post_nothing_twice") else {
        return;
    };
    let (app, name) = (env.app().await, suffix());
    let accounts = wallets(&app, &name, &[("alice", "50"), ("bob", "0"), ("carol", "0")]).await;
    let (alice, bob, carol) = (&accounts[0], &accounts[1], &accounts[2]);
    let ledger = Ledger::new(&app);
    let to_bob = TransferItem::new(alice, bob, money("10"), USD).reference(&format!("r1-{name}"));
    let items = [
        to_bob.clone(),
        TransferItem::new(alice, carol, money("100"), USD).reference(&format!("r2-{name}")),
        TransferItem::new(alice, carol, money("5"), USD).reference(&format!("r3-{name}")),
        to_bob, // an earlier item's key in the same call: replayed, not posted again
    ];
    let statuses = |outcomes: &[TransferOutcome]| {
        outcomes.iter().map(|outcome| outcome.status).collect::<Vec<_>>()
    };
    let first = ledger.transfers(&items).await.unwrap();
    assert_eq!(statuses(&first), [Posted, Refused, Posted, Replayed]);
    assert_eq!(first[3].event_id, first[0].event_id);
    assert_eq!(balances(&app, &accounts).await, ["35.00", "10.00", "5.00"]);

    let again = ledger.transfers(&items).await.unwrap();
    assert_eq!(statuses(&again), [Replayed, Refused, Replayed, Replayed]);
    let events = |outcomes: &[TransferOutcome]| {
        outcomes.iter().map(|outcome| outcome.event_id).collect::<Vec<_>>()
    };
    assert_eq!(events(&again), events(&first), "each replay names the first event");
    assert_eq!(again[1].reason.as_deref(), Some("insufficient_funds"));
    assert_eq!(balances(&app, &accounts).await, ["35.00", "10.00", "5.00"], "nothing twice");

    // The refused item kept no key: with the money there, the same call posts it alone.
    ledger.deposit(alice, money("100"), USD, None).await.unwrap();
    let third = ledger.transfers(&items).await.unwrap();
    assert_eq!(statuses(&third), [Replayed, Posted, Replayed, Replayed]);
    assert_eq!(balances(&app, &accounts).await, ["35.00", "10.00", "105.00"]);
}

#[tokio::test]
async fn refund_by_legs_gives_each_part_back_to_its_payer() {
    let Some(env) = common::env("refund_by_legs_gives_each_part_back_to_its_payer") else {
        return;
    };
    let (app, name) = (env.app().await, suffix());
    let accounts = wallets(&app, &name, &[("alice", "100"), ("bob", "100"), ("carol", "0")]).await;
    let (alice, bob, carol) = (&accounts[0], &accounts[1], &accounts[2]);
    let ledger = Ledger::new(&app);
    // Two payers: a leg must say which one it goes back to.
    let steps = [
        NewStep::new("alice-pays", "wallet.transfer", pay(alice, carol, "10")),
        NewStep::new("bob-pays", "wallet.transfer", pay(bob, carol, "90")),
    ];
    let run = ledger.run_event("checkout", &steps, &RunOptions::default()).await.unwrap();
    assert_eq!(run.status, "completed");
    assert_eq!(balances(&app, &accounts).await, ["90.00", "10.00", "100.00"]);

    let legs = [
        RefundLeg::new(carol, money("5.00")).to(alice),
        RefundLeg::new(carol, money("20.50")).to(bob),
    ];
    let key = format!("rma-{name}");
    let not_the_sum =
        ledger.reverse_event(run.event_id, "rma", Some(money("25")), None, Some(&legs));
    match not_the_sum.await {
        Err(Error::Refused(refused)) => assert_eq!(refused.reason, Reason::PayloadInvalid),
        other => panic!("legs adding up to 25.50, amount 25: {other:?}"),
    }
    let refund =
        ledger.reverse_event(run.event_id, "rma", None, Some(&key), Some(&legs)).await.unwrap();
    assert_eq!(common::status(&app, refund).await, "completed");
    assert_eq!(balances(&app, &accounts).await, ["95.00", "30.50", "74.50"]);

    let again = ledger.reverse_event(run.event_id, "resent", None, Some(&key), Some(&legs)).await;
    assert_eq!(again.unwrap(), refund, "the same legs under the key are a replay");
    assert_eq!(balances(&app, &accounts).await, ["95.00", "30.50", "74.50"], "nothing twice");
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
