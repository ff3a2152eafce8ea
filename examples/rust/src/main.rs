//! A cte_ctel client in Rust (tokio-postgres), as an application role that is not a superuser:
//! a top-up retried safely with its PSP reference, a transfer, a refused overdraft, and an event
//! (a transfer and a payout through an external step) completed by the bank's report. Every
//! refusal is matched by its SQLSTATE (class `L0`, docs/errors.md) and must leave the balances
//! as they were. Money is `rust_decimal::Decimal` on both sides of the wire: `numeric` in,
//! `numeric` out, and JSON payload amounts are decimal strings, never floats.
//!
//! Usage: cte_ctel_example CONNINFO   (e.g. "host=/tmp/x port=54330 dbname=cte_worker user=shop_app")
//! Prints "ok - ..." per check; exits 1 if any failed.

use std::process::ExitCode;
use std::str::FromStr;

use rust_decimal::Decimal;
use tokio_postgres::{Client, Error, NoTls};

const INSUFFICIENT_FUNDS: &str = "L0020";
const IDEMPOTENCY_CONFLICT: &str = "L0028";
const ACCOUNT_UNKNOWN: &str = "L0016";

/// What a call came back with, as the application sees it.
#[derive(Debug, PartialEq)]
enum Outcome {
    Done,
    /// One of the ledger's refusals (class L0): the call changed nothing.
    Refused(String),
}

/// Sorts an error into "refused by the ledger" (class L0, with its code) and everything else,
/// which the caller propagates (40001, 40P01 and 55P03 would mean: try again).
fn outcome(result: Result<u64, Error>) -> Result<Outcome, Error> {
    match result {
        Ok(_) => Ok(Outcome::Done),
        Err(error) => match error.code().map(|code| code.code().to_owned()) {
            Some(code) if code.starts_with("L0") => Ok(Outcome::Refused(code)),
            _ => Err(error),
        },
    }
}

fn money(text: &str) -> Decimal {
    Decimal::from_str(text).expect("a decimal literal")
}

struct Checks {
    failed: usize,
}

impl Checks {
    fn ok(&mut self, condition: bool, what: &str) {
        if condition {
            println!("ok - {what}");
        } else {
            println!("not ok - {what}");
            self.failed += 1;
        }
    }
}

async fn balance(client: &Client, account: &str, currency: &str) -> Result<Decimal, Error> {
    let row =
        client.query_one("SELECT cte_ctel.cte_balance($1, $2)", &[&account, &currency]).await?;
    Ok(row.get(0))
}

async fn run(client: &Client, checks: &mut Checks, tag: &str) -> Result<(), Error> {
    let role: String = client.query_one("SELECT current_user::text", &[]).await?.get(0);
    let superuser: bool = client
        .query_one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", &[])
        .await?
        .get(0);
    checks.ok(!superuser, &format!("the Rust client connects as {role}, not a superuser"));

    let (alice, bob) = (format!("rs-alice-{tag}"), format!("rs-bob-{tag}"));
    for account in [&alice, &bob] {
        client.execute("SELECT cte_ctel.cte_create_account($1, ARRAY['USD'])", &[account]).await?;
    }

    // A top-up confirmed by the PSP; the reply is lost, so the application sends it again: the
    // retry returns the first event (a replay), and another amount under the reference is a
    // conflict.
    let deposit = "SELECT cte_ctel.cte_deposit($1, $2, 'USD', $3)::text";
    let psp = format!("rs-psp-{tag}");
    let first: String = client.query_one(deposit, &[&alice, &money("120.00"), &psp]).await?.get(0);
    let retry: String = client.query_one(deposit, &[&alice, &money("120.00"), &psp]).await?.get(0);
    let other = outcome(client.execute(deposit, &[&alice, &money("121.00"), &psp]).await)?;
    checks.ok(
        first == retry
            && other == Outcome::Refused(IDEMPOTENCY_CONFLICT.into())
            && balance(client, &alice, "USD").await? == money("120.00"),
        "a top-up sent twice with its PSP reference is booked once (the retry: the same event; \
         another amount: idempotency_conflict)",
    );

    let transfer = "SELECT cte_ctel.cte_transfer($1, $2, $3, 'USD')";
    outcome(client.execute(transfer, &[&alice, &bob, &money("20.25")]).await)?;
    checks.ok(
        balance(client, &alice, "USD").await? == money("99.75")
            && balance(client, &bob, "USD").await? == money("20.25"),
        "a transfer of 20.25 moves exactly that",
    );
    let overdraft = outcome(client.execute(transfer, &[&bob, &alice, &money("500")]).await)?;
    checks.ok(
        overdraft == Outcome::Refused(INSUFFICIENT_FUNDS.into())
            && balance(client, &bob, "USD").await? == money("20.25"),
        &format!("an overdraft is refused by its code ({overdraft:?}) and changes nothing"),
    );
    let nobody = outcome(client.execute(transfer, &[&alice, &"nobody", &money("1")]).await)?;
    checks.ok(
        nobody == Outcome::Refused(ACCOUNT_UNKNOWN.into())
            && balance(client, &alice, "USD").await? == money("99.75"),
        &format!("a transfer to an unknown account is refused by its code ({nobody:?})"),
    );

    // An event: pay bob and pay out through the bank; it waits for the bank's report.
    let event: String = client
        .query_one("SELECT cte_ctel.cte_create_event('rs-checkout')::text", &[])
        .await?
        .get(0);
    let pay = format!(
        r#"{{"source_account_id": "{alice}", "destination_account_id": "{bob}", "amount": "30.00", "currency": "USD"}}"#
    );
    client
        .execute(
            "SELECT cte_ctel.cte_add_transaction($1::text::uuid, 'pay', 'wallet.transfer', $2::text::jsonb)",
            &[&event, &pay],
        )
        .await?;
    let bank: String = client
        .query_one(
            "SELECT cte_ctel.cte_add_transaction($1::text::uuid, 'bank', 'external', '{\"rail\": \"sepa\"}')::text",
            &[&event],
        )
        .await?
        .get(0);
    let started: String = client
        .query_one("SELECT cte_ctel.cte_start_event($1::text::uuid)", &[&event])
        .await?
        .get(0);
    let reported: String = client
        .query_one(
            "SELECT cte_ctel.cte_complete_transaction($1::text::uuid, '{\"bank_reference\": \"SEPA-9\"}')",
            &[&bank],
        )
        .await?
        .get(0);
    checks.ok(
        started == "waiting"
            && reported == "completed"
            && balance(client, &bob, "USD").await? == money("50.25"),
        &format!("an event waits for the bank ({started}), its report completes it ({reported})"),
    );
    let problems: i64 =
        client.query_one("SELECT count(*) FROM cte_ctel.cte_verify_ledger()", &[]).await?.get(0);
    checks.ok(problems == 0, "the ledger verifies");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some(conninfo) = std::env::args().nth(1) else {
        eprintln!("usage: cte_ctel_example CONNINFO");
        return ExitCode::from(2);
    };
    let (client, connection) = match tokio_postgres::connect(&conninfo, NoTls).await {
        Ok(pair) => pair,
        Err(error) => {
            eprintln!("cannot connect: {error}");
            return ExitCode::FAILURE;
        }
    };
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("connection: {error}");
        }
    });
    let tag = format!("{}", std::process::id());
    let mut checks = Checks { failed: 0 };
    if let Err(error) = run(&client, &mut checks, &tag).await {
        println!("not ok - the example ran to its end: {error}");
        return ExitCode::FAILURE;
    }
    if checks.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
