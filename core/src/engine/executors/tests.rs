//! Payload parsing and planning of the built-in step types.

use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::*;
use crate::ledger::PostingKind;

fn book(code: &str) -> Result<Currency, CteError> {
    match code {
        "USD" | "EUR" => Currency::new(code, 2),
        "JPY" => Currency::new(code, 0),
        other => Err(CteError::CurrencyUnknown { currency: other.to_string() }),
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn raw(payload: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(payload).unwrap()
}

fn postings(step_type: &str, payload: &Value) -> Result<Vec<Posting>, CteError> {
    let step_type = StepType::parse(step_type)?;
    Ok(plan(&step_type, &raw(payload), &book)?.map(|plan| plan.postings).unwrap_or_default())
}

fn reason(step_type: &str, payload: Value) -> &'static str {
    postings(step_type, &payload).unwrap_err().reason()
}

#[test]
fn types_parse_built_in_and_custom_names() {
    assert_eq!(StepType::parse("wallet.transfer").unwrap(), StepType::Transfer);
    assert_eq!(StepType::parse("external").unwrap().as_str(), "external");
    assert_eq!(
        StepType::parse("fee.collection").unwrap(),
        StepType::Custom("fee.collection".into())
    );
    for bad in ["", "Fee", "fee..x", ".fee", "fee-x", "fee.1x", "drop table;"] {
        assert_eq!(StepType::parse(bad).unwrap_err().reason(), "type_unknown", "{bad:?}");
    }
}

#[test]
fn a_transfer_reads_the_seed_payload_exactly() {
    let payload = parse(
        r#"{"source_account_id": "account-123", "destination_account_id": "account-456",
        "amount": 100.50, "currency": "USD", "reference": "tx-ref-789", "description": "P2P transfer"}"#,
    );
    let planned = postings("wallet.transfer", &payload).unwrap();
    assert_eq!(planned.len(), 1);
    assert_eq!(planned[0].entries[1].amount.to_string(), "100.50");
    assert_eq!(
        reference(&StepType::Transfer, &raw(&payload)).unwrap().as_deref(),
        Some("tx-ref-789")
    );
}

#[test]
fn a_deposit_of_one_tenth_posts_exactly_one_tenth() {
    let planned = postings(
        "wallet.deposit",
        &parse(r#"{"account_id": "a", "amount": 0.1, "currency": "USD"}"#),
    )
    .unwrap();
    assert_eq!(planned[0].entries[1].amount.to_string(), "0.10");
    assert_eq!(planned[0].kind, PostingKind::Deposit);
}

#[test]
fn payloads_are_checked_field_by_field() {
    assert_eq!(reason("wallet.deposit", json!([1])), "payload_invalid");
    assert_eq!(
        reason("wallet.deposit", json!({"amount": 1, "currency": "USD"})),
        "payload_invalid"
    );
    assert_eq!(
        reason("wallet.deposit", json!({"account_id": 7, "amount": 1, "currency": "USD"})),
        "payload_invalid"
    );
    assert_eq!(
        reason("wallet.deposit", json!({"account_id": "a", "amount": true, "currency": "USD"})),
        "payload_invalid"
    );
    assert_eq!(
        reason(
            "wallet.deposit",
            json!({"account_id": "a", "ammount": 1, "amount": 1, "currency": "USD"})
        ),
        "payload_invalid"
    );
    assert_eq!(
        reason("wallet.deposit", json!({"account_id": "a", "amount": "1.001", "currency": "USD"})),
        "amount_scale_exceeded"
    );
    assert_eq!(
        reason("wallet.deposit", json!({"account_id": "a", "amount": "-1", "currency": "USD"})),
        "amount_not_positive"
    );
    assert_eq!(
        reason("wallet.deposit", json!({"account_id": "a", "amount": "NaN", "currency": "USD"})),
        "amount_not_finite"
    );
    assert_eq!(
        reason("wallet.deposit", json!({"account_id": "a", "amount": 1, "currency": "XXX"})),
        "currency_unknown"
    );
    assert_eq!(
        reason("wallet.deposit", json!({"account_id": "@world", "amount": 1, "currency": "USD"})),
        "system_account_refused"
    );
    assert_eq!(
        reason(
            "wallet.transfer",
            json!({"source_account_id": "a", "destination_account_id": "a", "amount": 1, "currency": "USD"})
        ),
        "same_account"
    );
    let long = "r".repeat(129);
    assert_eq!(
        reason(
            "wallet.deposit",
            json!({"account_id": "a", "amount": 1, "currency": "USD", "reference": long})
        ),
        "text_too_long"
    );
}

#[test]
fn an_exchange_balances_each_currency_and_takes_its_fee() {
    let payload = parse(
        r#"{"source_account_id": "account-123", "source_currency": "USD", "source_amount": 100.00,
        "destination_account_id": "account-456", "destination_currency": "EUR", "exchange_rate": 0.85,
        "reference": "exchange-ref-123", "fee_account_id": "fees-account", "fee_amount": 2.50, "fee_currency": "USD"}"#,
    );
    let planned = postings("wallet.exchange", &payload).unwrap();
    let summary: Vec<(PostingKind, &str, String)> = planned
        .iter()
        .map(|p| (p.kind, p.currency.as_str(), p.entries[1].amount.to_string()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (PostingKind::Exchange, "USD", "100.00".to_string()),
            (PostingKind::Exchange, "EUR", "85.00".to_string()),
            (PostingKind::Fee, "USD", "2.50".to_string()),
        ]
    );
    assert_eq!(planned[0].entries[1].account_id, "@exchange");
    assert_eq!(planned[1].entries[0].account_id, "@exchange");
}

#[test]
fn an_exchange_rounds_half_to_even_and_refuses_a_wrong_stated_amount() {
    let mut payload = json!({"source_account_id": "a", "source_currency": "USD", "source_amount": "0.25",
        "destination_account_id": "b", "destination_currency": "EUR", "exchange_rate": "0.5"});
    assert_eq!(
        postings("wallet.exchange", &payload).unwrap()[1].entries[1].amount.to_string(),
        "0.12"
    );
    payload["destination_amount"] = json!("0.13");
    assert_eq!(reason("wallet.exchange", payload.clone()), "payload_invalid");
    payload["destination_amount"] = json!("0.12");
    assert!(postings("wallet.exchange", &payload).is_ok());
    payload["exchange_rate"] = json!(0);
    assert_eq!(reason("wallet.exchange", payload.clone()), "rate_invalid");
    payload["exchange_rate"] = json!(1);
    payload["destination_currency"] = json!("USD");
    assert_eq!(reason("wallet.exchange", payload), "payload_invalid");
}

#[test]
fn an_exchange_fee_needs_its_account() {
    let payload = json!({"source_account_id": "a", "source_currency": "USD", "source_amount": 1,
        "destination_account_id": "b", "destination_currency": "JPY", "exchange_rate": 150, "fee_amount": 1});
    assert_eq!(reason("wallet.exchange", payload), "payload_invalid");
}

#[test]
fn a_batch_plans_its_items_in_order() {
    let payload = parse(
        r#"{"batch_id": "batch-123", "description": "End-of-day settlement", "transactions": [
        {"id": "tx-1", "type": "wallet.transfer", "payload": {"source_account_id": "account-123",
            "destination_account_id": "account-456", "amount": 100.00, "currency": "USD"}},
        {"id": "tx-2", "type": "wallet.exchange", "payload": {"source_account_id": "account-456",
            "source_currency": "USD", "source_amount": 50.00, "destination_account_id": "account-456",
            "destination_currency": "EUR", "exchange_rate": 0.85}}]}"#,
    );
    let planned = plan(&StepType::Batch, &raw(&payload), &book).unwrap().unwrap();
    assert_eq!(planned.postings.len(), 3);
    let items: Vec<(&str, usize, usize)> =
        planned.items.iter().map(|i| (i.id.as_str(), i.first, i.count)).collect();
    assert_eq!(items, vec![("tx-1", 0, 1), ("tx-2", 1, 2)]);
}

#[test]
fn a_batch_refuses_bad_items_naming_them() {
    let item = |id: Value, step_type: &str| {
        json!({"id": id, "type": step_type,
        "payload": {"account_id": "a", "amount": 1, "currency": "USD"}})
    };
    let batch = |items: Vec<Value>| json!({"transactions": items});
    assert_eq!(reason("batch.operation", batch(vec![])), "payload_invalid");
    assert_eq!(
        reason("batch.operation", batch(vec![item(json!("x"), "external")])),
        "payload_invalid"
    );
    assert_eq!(
        reason("batch.operation", batch(vec![item(json!("x"), "batch.operation")])),
        "payload_invalid"
    );
    assert_eq!(
        reason(
            "batch.operation",
            batch(vec![item(json!("x"), "wallet.deposit"), item(json!("x"), "wallet.deposit")])
        ),
        "payload_invalid"
    );
    // A well-formed custom name cannot run in a batch either; a malformed one names no type.
    assert_eq!(
        reason("batch.operation", batch(vec![item(json!("x"), "wallet.nope")])),
        "payload_invalid"
    );
    assert_eq!(
        reason("batch.operation", batch(vec![item(json!("x"), "Not A Type")])),
        "type_unknown"
    );
    let bad = json!({"transactions": [{"id": "t9", "type": "wallet.deposit", "payload": {"account_id": "a"}}]});
    let error = postings("batch.operation", &bad).unwrap_err();
    assert!(error.to_string().contains("transaction \"t9\""), "{error}");
    let concurrent = json!({"concurrency": 4, "transactions": [item(json!(1), "wallet.deposit")]});
    assert_eq!(reason("batch.operation", concurrent), "payload_invalid");
    let too_many: Vec<Value> = (0..10_001).map(|i| item(json!(i), "wallet.deposit")).collect();
    assert_eq!(reason("batch.operation", batch(too_many)), "limit_exceeded");
}

#[test]
fn external_and_custom_steps_post_nothing() {
    assert_eq!(plan(&StepType::External, &raw(&json!({"payout": "bank"})), &book).unwrap(), None);
    assert_eq!(reason("external", json!("text")), "payload_invalid");
    let custom = StepType::Custom("fee.collection".into());
    assert_eq!(plan(&custom, &raw(&json!({"any": "thing"})), &book).unwrap(), None);
}

#[test]
fn a_hosted_type_waits_on_the_application_under_its_own_name() {
    let hosted = StepType::parse("stripe.charge").unwrap().hosted();
    assert_eq!(hosted, StepType::Hosted("stripe.charge".into()));
    assert_eq!((hosted.as_str(), hosted.kind()), ("stripe.charge", StepKind::External));
    assert!(!hosted.is_built_in() && !hosted.reads_payload());
    assert_eq!(plan(&hosted, &raw(&json!({"card": "tok_1"})), &book).unwrap(), None);
    // Only a custom name becomes hosted: a built-in type stays what it is.
    assert_eq!(StepType::External.hosted(), StepType::External);
    assert_eq!(StepType::Transfer.hosted().kind(), StepKind::Posting);
}

#[test]
fn a_batch_refuses_a_reference_used_twice_within_it() {
    let item = |id: &str, reference: &str| {
        json!({"id": id, "type": "wallet.deposit",
        "payload": {"account_id": "a", "amount": 1, "currency": "USD", "reference": reference}})
    };
    let batch =
        json!({"transactions": [item("1", "psp-1"), item("2", "psp-2"), item("3", "psp-1")]});
    let error = postings("batch.operation", &batch).unwrap_err();
    assert_eq!(error.reason(), "duplicate_reference");
    assert!(error.to_string().contains("psp-1"), "{error}");
    // The same reference on items of two types names two postings.
    let transfer = json!({"id": "4", "type": "wallet.transfer", "payload": {"source_account_id": "a",
        "destination_account_id": "b", "amount": 1, "currency": "USD", "reference": "psp-1"}});
    assert!(postings("batch.operation", &json!({"transactions": [item("1", "psp-1"), transfer]}))
        .is_ok());
}

#[test]
fn a_reference_is_checked_for_type_and_length() {
    let custom = StepType::Custom("fee.collection".into());
    let huge = json!({"numbers": vec![1; 10_000], "reference": "r-1"});
    assert_eq!(reference(&custom, &raw(&huge)).unwrap().as_deref(), Some("r-1"));
    assert_eq!(reference(&custom, &raw(&json!({"numbers": [1]}))).unwrap(), None);
    assert_eq!(
        reference(&custom, &raw(&json!({"reference": 7}))).unwrap_err().reason(),
        "payload_invalid"
    );
    assert_eq!(
        reference(&custom, &raw(&json!({"reference": "r".repeat(129)}))).unwrap_err().reason(),
        "text_too_long"
    );
    assert_eq!(reference(&custom, &raw(&json!([1]))).unwrap_err().reason(), "payload_invalid");
}

#[test]
fn an_unknown_field_is_refused_before_its_value_is_read() {
    // A field the type does not know is refused by name, however large or deep its value.
    let deep = (0..100).fold(json!(1), |inner, _| json!([inner]));
    let payload = json!({"account_id": "a", "amount": 1, "currency": "USD", "extra": deep});
    let error = postings("wallet.deposit", &payload).unwrap_err();
    assert!(error.to_string().contains("unknown field \"extra\""), "{error}");
    let typed = json!({"account_id": ["a"], "amount": 1, "currency": "USD"});
    let error = postings("wallet.deposit", &typed).unwrap_err();
    assert!(error.to_string().contains("must be a string"), "{error}");
}
