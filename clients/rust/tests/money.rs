//! Money is Decimal: amounts go and come back exact (0.1 + 0.2 is 0.3, a 20-digit amount keeps
//! every digit, in a `numeric` column and in a JSON payload, as a string or as a number), and
//! no function of the library takes or makes a float.

mod common;

use std::path::Path;
use std::str::FromStr;

use common::{balance, hosted_type, money, suffix, wallets, USD};
use cte_ctel_client::{money as amounts, Error, Ledger, NewStep, Reason, RunOptions, Worker};
use serde_json::{json, Number, Value};

#[tokio::test]
async fn point_one_plus_point_two_is_exactly_point_three() {
    let Some(env) = common::env("point_one_plus_point_two_is_exactly_point_three") else { return };
    let (app, name) = (env.app().await, suffix());
    let accounts = wallets(&app, &name, &[("alice", "0.1"), ("bob", "0")]).await;
    let ledger = Ledger::new(&app);
    ledger.deposit(&accounts[0], money("0.2"), USD, None).await.unwrap();
    assert_eq!(balance(&app, &accounts[0]).await, money("0.3"));
    assert_eq!(balance(&app, &accounts[0]).await.to_string(), "0.30", "the currency's scale");
    ledger.transfer(&accounts[0], &accounts[1], money("0.3"), USD, None, None).await.unwrap();
    assert_eq!(balance(&app, &accounts[0]).await, money("0"));
    assert_eq!(ledger.available_balance(&accounts[1], USD).await.unwrap(), money("0.30"));
}

#[tokio::test]
async fn a_twenty_digit_amount_round_trips() {
    let Some(env) = common::env("a_twenty_digit_amount_round_trips") else { return };
    let (admin, app, name) = (env.admin().await, env.app().await, suffix());
    let made = admin.execute("SELECT cte_ctel.cte_create_currency('XTS', 4)", &[]).await;
    match made.map_err(Error::from) {
        Ok(_) => {}
        Err(error) if error.is_refused(&Reason::CurrencyExists) => {}
        Err(error) => panic!("XTS: {error}"),
    }
    let amount = money("1234567890123456.7891"); // 16 digits before the point, 4 after
    let account = format!("rs-big-{name}");
    let ledger = Ledger::new(&app);
    ledger.create_account(&account, &["XTS"]).await.unwrap();
    ledger.deposit(&account, amount, "XTS", None).await.unwrap();
    let read = ledger.balance(&account, "XTS").await.unwrap();
    assert_eq!((read, read.to_string().as_str()), (amount, "1234567890123456.7891"));

    // In a payload, as a decimal string and as a JSON number: both come back digit for digit.
    let hosted = hosted_type(&admin, &name).await;
    let number = Value::Number(Number::from_str("1234567890123456.7891").unwrap());
    let tiny = Value::Number(Number::from_str("0.1").unwrap());
    let payload = json!({"amount": amounts::to_json(amount), "number": number, "tiny": tiny});
    let step = NewStep::new("charge", &hosted, payload);
    ledger.run_event("big", &[step], &RunOptions::default()).await.unwrap();
    let mut worker = Worker::new(&env.app_dsn, "rs-big").unwrap().host(&hosted, Noop);
    let claimed = worker.claim().await.unwrap();
    let [step] = claimed.as_slice() else { panic!("one step: {claimed:?}") };
    assert_eq!(amounts::field(&step.payload, "amount").unwrap(), amount);
    assert_eq!(amounts::field(&step.payload, "number").unwrap(), amount);
    assert_eq!(step.payload["number"].to_string(), "1234567890123456.7891", "the text is kept");
    assert_eq!(amounts::field(&step.payload, "tiny").unwrap(), money("0.1"));
}

struct Noop;

impl cte_ctel_client::Executor for Noop {
    async fn execute(&self, _step: &cte_ctel_client::Step) -> cte_ctel_client::StepResult {
        Ok(Value::Null)
    }
}

/// The type system keeps floats out of the API only if no code names one: none does (comments
/// may say so).
#[test]
fn no_float_in_the_library() {
    let mut files = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut read = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code: Vec<&str> =
            text.lines().filter(|line| !line.trim_start().starts_with("//")).collect();
        let text = code.join("\n");
        for word in ["f32", "f64", "as_f64", "from_f64"] {
            let found = text.split(|c: char| !c.is_alphanumeric() && c != '_').any(|w| w == word);
            assert!(!found, "{} names {word}", path.display());
        }
        read += 1;
    }
    assert!(read >= 10, "the sources were read");
}
