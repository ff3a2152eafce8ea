//! Refusals arrive as `Error::Refused` with their catalog reason, keep the server's message,
//! DETAIL and HINT, and change nothing; the generated reason table agrees with the live
//! catalog; races lost are `TryAgain`, other server errors `Database`, no server `Connection`.

mod common;

use common::{balance, money, suffix, wallets, USD};
use cte_ctel_client::{catalog, refusal_from, Error, HoldOptions, Ledger, Reason, CATALOG};

#[tokio::test]
async fn generated_reason_table_matches_the_live_catalog() {
    let Some(env) = common::env("generated_reason_table_matches_the_live_catalog") else { return };
    let admin = env.admin().await;
    let live = catalog::read(&admin).await.unwrap();
    assert_eq!(
        include_str!("../src/reason.rs"),
        catalog::render(&live),
        "src/reason.rs is out of date: cargo run -p cte_ctel_client --bin generate_errors -- DSN"
    );
    assert_eq!(CATALOG.len(), live.len());
    for ((reason, sqlstate, name), row) in CATALOG.iter().zip(&live) {
        assert_eq!((*sqlstate, *name), (row.sqlstate.as_str(), row.reason.as_str()));
        assert_eq!((reason.name(), reason.sqlstate()), (*name, Some(*sqlstate)));
        assert_eq!(format!("{reason:?}"), catalog::variant_name(name));
    }
}

#[tokio::test]
async fn overdraft_is_insufficient_funds_and_changes_nothing() {
    let Some(env) = common::env("overdraft_is_insufficient_funds_and_changes_nothing") else {
        return;
    };
    let (app, name) = (env.app().await, suffix());
    let accounts = wallets(&app, &name, &[("alice", "10.00"), ("bob", "0")]).await;
    let ledger = Ledger::new(&app);
    let key = format!("over-{name}");
    let refused =
        ledger.transfer(&accounts[0], &accounts[1], money("10.01"), USD, Some(&key), None).await;
    match refused {
        Err(Error::Refused(r)) if r.reason == Reason::InsufficientFunds => {
            assert_eq!(r.sqlstate, "L0020");
            assert_eq!(r.detail.as_deref(), Some("reason: insufficient_funds"));
            assert!(r.message.contains(&accounts[0]), "the message names the account");
        }
        other => panic!("expected insufficient_funds, got {other:?}"),
    }
    assert_eq!(balance(&app, &accounts[0]).await, money("10.00"));
    assert_eq!(balance(&app, &accounts[1]).await, money("0.00"));
    // The refused call left its key free: sent again with enough money, it posts.
    ledger.deposit(&accounts[0], money("1"), USD, None).await.unwrap();
    ledger
        .transfer(&accounts[0], &accounts[1], money("10.01"), USD, Some(&key), None)
        .await
        .unwrap();
    assert_eq!(balance(&app, &accounts[1]).await, money("10.01"));
}

#[tokio::test]
async fn key_reused_for_another_request_is_idempotency_conflict() {
    let Some(env) = common::env("key_reused_for_another_request_is_idempotency_conflict") else {
        return;
    };
    let (app, name) = (env.app().await, suffix());
    let accounts = wallets(&app, &name, &[("alice", "50"), ("bob", "0")]).await;
    let ledger = Ledger::new(&app);
    let key = format!("p2p-{name}");
    let (alice, bob) = (&accounts[0], &accounts[1]);
    let first = ledger.transfer(alice, bob, money("5"), USD, Some(&key), None).await.unwrap();
    let again = ledger.transfer(alice, bob, money("5.00"), USD, Some(&key), None).await.unwrap();
    assert_eq!(first, again, "a replay returns the first event");
    let conflict = ledger.transfer(alice, bob, money("6"), USD, Some(&key), None).await;
    let Err(Error::Refused(refused)) = conflict else { panic!("expected a refusal: {conflict:?}") };
    assert_eq!(refused.reason, Reason::IdempotencyConflict);
    assert!(refused.hint.unwrap_or_default().contains(&first.to_string()), "the hint names it");
    assert_eq!(balance(&app, bob).await, money("5.00"));
    assert_eq!(balance(&app, alice).await, money("45.00"));
}

#[tokio::test]
async fn refusals_map_to_their_reasons_and_change_nothing() {
    let Some(env) = common::env("refusals_map_to_their_reasons_and_change_nothing") else {
        return;
    };
    let (app, name) = (env.app().await, suffix());
    let accounts = wallets(&app, &name, &[("alice", "10"), ("bob", "0")]).await;
    let (alice, bob) = (accounts[0].as_str(), accounts[1].as_str());
    let ledger = Ledger::new(&app);
    let nobody = format!("nobody-{name}");
    let lien = ledger.hold(alice, money("2"), USD, &HoldOptions::default()).await.unwrap();
    let cases: Vec<(Reason, Result<uuid::Uuid, Error>)> = vec![
        (
            Reason::AccountUnknown,
            ledger.transfer(alice, &nobody, money("1"), USD, None, None).await,
        ),
        (Reason::AmountScaleExceeded, ledger.deposit(alice, money("1.001"), USD, None).await),
        (Reason::AmountNotPositive, ledger.deposit(alice, money("0"), USD, None).await),
        (Reason::SameAccount, ledger.transfer(alice, alice, money("1"), USD, None, None).await),
        (Reason::CaptureExceedsLien, ledger.capture(lien, bob, Some(money("3")), None).await),
        (Reason::CurrencyUnknown, ledger.deposit(alice, money("1"), "QQQ", None).await),
    ];
    for (reason, result) in cases {
        match result {
            Err(Error::Refused(refused)) => {
                assert_eq!(refused.reason, reason, "{refused}");
                assert_eq!(Some(refused.sqlstate.as_str()), reason.sqlstate());
            }
            other => panic!("expected {reason:?}, got {other:?}"),
        }
    }
    assert_eq!(balance(&app, alice).await, money("10.00"));
    assert_eq!(balance(&app, bob).await, money("0.00"));
    assert_eq!(ledger.available_balance(alice, USD).await.unwrap(), money("8.00"), "lien kept");
}

#[tokio::test]
async fn cancel_by_another_role_is_permission_denied() {
    let Some(env) = common::env("cancel_by_another_role_is_permission_denied") else { return };
    let (mut admin, app, name) = (env.admin().await, env.app().await, suffix());
    let role = format!("rs_other_{name}");
    admin.batch_execute(&format!("CREATE ROLE {role} NOLOGIN IN ROLE cte_operator")).await.unwrap();
    let wait = cte_ctel_client::NewStep::new("wait", "external", serde_json::json!({}));
    let event = Ledger::new(&app).run_event("hold-open", &[wait], &Default::default()).await;
    let event = event.unwrap().event_id;
    let transaction = admin.transaction().await.unwrap();
    transaction.batch_execute(&format!("SET LOCAL ROLE {role}")).await.unwrap();
    let denied = Ledger::new(&transaction).cancel_event(event, None).await;
    drop(transaction);
    match denied {
        Err(Error::Refused(refused)) => {
            assert_eq!(
                (refused.reason, refused.sqlstate.as_str()),
                (Reason::PermissionDenied, "42501")
            );
        }
        other => panic!("expected permission_denied, got {other:?}"),
    }
    assert_eq!(common::status(&app, event).await, "waiting", "nothing changed");
    assert_eq!(Ledger::new(&app).cancel_event(event, None).await.unwrap(), "compensating");
    admin.batch_execute(&format!("DROP ROLE {role}")).await.unwrap();
}

#[tokio::test]
async fn races_lost_are_try_again_and_other_errors_keep_their_kind() {
    let Some(env) = common::env("races_lost_are_try_again_and_other_errors_keep_their_kind") else {
        return;
    };
    let (mut holder, other, name) = (env.admin().await, env.admin().await, suffix());
    let table = format!("rs_lock_{name}");
    holder.batch_execute(&format!("CREATE TABLE {table} (id int)")).await.unwrap();
    let transaction = holder.transaction().await.unwrap();
    transaction.batch_execute(&format!("LOCK TABLE {table}")).await.unwrap();
    let busy = other.batch_execute(&format!("BEGIN; LOCK TABLE {table} NOWAIT; COMMIT")).await;
    other.batch_execute("ROLLBACK").await.unwrap();
    match busy.map_err(Error::from) {
        Err(Error::TryAgain(error)) => assert_eq!(error.code().unwrap().code(), "55P03"),
        other => panic!("expected TryAgain, got {other:?}"),
    }
    transaction.rollback().await.unwrap();
    holder.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
    let division = other.execute("SELECT 1 / 0", &[]).await.map_err(Error::from);
    assert!(matches!(division, Err(Error::Database(ref e)) if e.code().unwrap().code() == "22012"));
    let nowhere = "host=/nonexistent-rs port=1 user=nobody".parse().unwrap();
    let unreachable = cte_ctel_client::connect(&nowhere).await;
    assert!(matches!(unreachable, Err(Error::Connection(_))), "{unreachable:?}");
}

#[test]
fn an_unknown_or_mismatched_refusal_is_refused_with_its_reason_named() {
    let newer = refusal_from("L0999", "refused", Some("reason: from_a_newer_server"), None);
    assert_eq!(newer.unwrap().reason, Reason::Unknown("from_a_newer_server".into()));
    let mismatched = refusal_from("L0020", "refused", Some("reason: account_unknown"), Some("h"));
    let mismatched = mismatched.unwrap();
    assert_eq!(
        (mismatched.reason, mismatched.hint.as_deref()),
        (Reason::Unknown("account_unknown".into()), Some("h"))
    );
    let known = refusal_from("L0020", "refused", Some("reason: insufficient_funds"), None);
    assert_eq!(known.unwrap().reason, Reason::InsufficientFunds);
    assert_eq!(refusal_from("42501", "no", None, None).unwrap().reason, Reason::PermissionDenied);
    assert!(refusal_from("23505", "duplicate", None, None).is_none(), "not a refusal");
    assert!(refusal_from("40001", "race", None, None).is_none(), "a race is not a refusal");
}
