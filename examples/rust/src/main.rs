//! A marketplace on cte_ctel in Rust, written with the project's client library
//! (`clients/rust`, crate `cte_ctel_client`, on tokio-postgres), as an application role that is
//! not a superuser (`shop_app`, a member of `cte_operator` only). The twin of
//! `examples/python/marketplace.py`, on fewer flows:
//!   - a top-up confirmed by the PSP, retried safely after a lost reply (its PSP reference), and
//!     a sale paid by transfer;
//!   - payouts as sagas whose bank step the application executes itself: two payout worker
//!     processes (`Worker`) claim the `bank.payout` steps under leases; the first is killed with
//!     SIGKILL after the bank paid and before it reported, the second takes the step over when
//!     the lease runs out, the bank (idempotent by the step's id) pays once, and the ledger posts
//!     the payout once; a payout the bank rejects is compensated (its hold released);
//!   - a named consumer of the change feed (`Consumer`): what it has not acknowledged it reads
//!     again, what it acknowledged never.
//!
//! Every refusal is `Error::Refused`, matched by its `Reason`, and leaves the ledger as it was,
//! which the example checks. Money is `rust_decimal::Decimal` throughout; amounts in JSON
//! payloads are decimal strings, never floats.
//!
//! Usage: cte_ctel_example CONNINFO
//!        (e.g. "host=/tmp/x port=54330 dbname=cte_worker user=shop_app")
//! Needs `bank.payout` registered as a hosted step type (examples/setup.sql does it).
//! Prints "ok - ..." per check; exits 1 if any failed.
//! (`cte_ctel_example --payout-worker CONNINFO NAME FOLDER MODE` is a payout worker process,
//! which the example starts itself.)

mod bank;
mod payouts;

use std::collections::BTreeMap;
use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cte_ctel_client::{connect, money, Change, Consumer, Error, Ledger, Reason};
use rust_decimal::Decimal;
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

/// What the example's functions return: an error ends the example as a failed check.
type Outcome<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The checks so far: each prints one `ok - ...` or `not ok - ...` line.
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

/// `a - b`, or an error on overflow (Decimal's `-` would panic).
fn minus(a: Decimal, b: Decimal) -> Outcome<Decimal> {
    a.checked_sub(b).ok_or_else(|| format!("{a} - {b} overflows").into())
}

/// Runs `test` every 100 ms until it holds or `seconds` have passed; returns its last answer.
async fn wait_until(seconds: u64, mut test: impl AsyncFnMut() -> Outcome<bool>) -> Outcome<bool> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if test().await? {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    test().await
}

/// Every wallet balance, the journal's length and the active holds: what a refusal must leave
/// alone.
async fn expect_refusal_snapshot(
    client: &Client,
) -> Outcome<(Vec<(String, String, Decimal, Decimal)>, i64, i64)> {
    let sql = "SELECT account_id, currency, balance, reserved FROM cte_ctel.cte_balances \
               ORDER BY 1, 2";
    let mut balances = Vec::new();
    for row in client.query(sql, &[]).await? {
        balances.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?));
    }
    let sql = "SELECT count(*) FROM cte_ctel.cte_entries";
    let entries = client.query_one(sql, &[]).await?.try_get(0)?;
    let sql = "SELECT count(*) FROM cte_ctel.cte_liens WHERE status = 'active'";
    let liens = client.query_one(sql, &[]).await?.try_get(0)?;
    Ok((balances, entries, liens))
}

/// Runs `call`, which must be refused for `reason` and change nothing.
async fn expect_refusal<T>(
    checks: &mut Checks,
    client: &Client,
    reason: Reason,
    what: &str,
    call: impl Future<Output = cte_ctel_client::Result<T>>,
) -> Outcome {
    let before = expect_refusal_snapshot(client).await?;
    match call.await {
        Err(Error::Refused(refused)) => {
            checks.ok(
                refused.reason == reason,
                &format!(
                    "{what}: refused as {:?} ({}, {})",
                    refused.reason, refused.sqlstate, refused.message
                ),
            );
            checks.ok(
                expect_refusal_snapshot(client).await? == before,
                &format!("{what}: the ledger is unchanged"),
            );
        }
        Err(error) => return Err(error.into()),
        Ok(_) => checks.ok(false, &format!("{what}: was not refused")),
    }
    Ok(())
}

/// A top-up retried after a lost reply, a sale, and the refusals of the first calls.
async fn run_top_up_and_sale(
    checks: &mut Checks,
    client: &Client,
    buyer: &str,
    seller: &str,
    tag: &str,
) -> Outcome {
    let ledger = Ledger::new(client);
    // The PSP confirms a top-up; the reply is lost, so the application sends it again.
    let psp = format!("rs-psp-{tag}");
    let amount = money::parse("120.00")?;
    let first = ledger.deposit(buyer, amount, "USD", Some(&psp)).await?;
    let retry = ledger.deposit(buyer, amount, "USD", Some(&psp)).await?;
    checks.ok(
        first == retry && ledger.balance(buyer, "USD").await? == amount,
        "a top-up retried with its PSP reference is booked once (the retry returns its event): \
         120.00",
    );
    let other = ledger.deposit(buyer, money::parse("121.00")?, "USD", Some(&psp));
    let what = "the same PSP reference with another amount";
    expect_refusal(checks, client, Reason::IdempotencyConflict, what, other).await?;
    let cents = ledger.deposit(buyer, money::parse("10.001")?, "USD", None);
    let what = "a top-up of 10.001 USD (cents only)";
    expect_refusal(checks, client, Reason::AmountScaleExceeded, what, cents).await?;

    let price = money::parse("80.25")?;
    ledger.transfer(buyer, seller, price, "USD", Some(&format!("rs-sale-{tag}")), None).await?;
    checks.ok(
        ledger.balance(buyer, "USD").await? == minus(amount, price)?
            && ledger.balance(seller, "USD").await? == price,
        "a sale of 80.25 paid by transfer moves exactly that",
    );
    let overdraft = ledger.transfer(seller, buyer, money::parse("500")?, "USD", None, None);
    let what = "a transfer of 500 with 80.25 available";
    expect_refusal(checks, client, Reason::InsufficientFunds, what, overdraft).await?;
    let nobody = ledger.transfer(buyer, "nobody", money::parse("1")?, "USD", None, None);
    let what = "a transfer to an account that does not exist";
    expect_refusal(checks, client, Reason::AccountUnknown, what, nobody).await?;
    Ok(())
}

/// What the application role may not do, and the ledger's own check.
async fn run_role_limits(
    checks: &mut Checks,
    client: &Client,
    buyer: &str,
    ended: Uuid,
) -> Outcome {
    let ledger = Ledger::new(client);
    let cancel = ledger.cancel_event(ended, Some("too late"));
    let what = "cancelling its own event after it ended";
    expect_refusal(checks, client, Reason::TransitionNotAllowed, what, cancel).await?;
    let sql = "UPDATE cte_ctel.cte_balances SET balance = balance + 1000 WHERE account_id = $1";
    let write = async { client.execute(sql, &[&buyer]).await.map_err(Error::from) };
    let what = "writing a balance directly";
    expect_refusal(checks, client, Reason::PermissionDenied, what, write).await?;
    let sql = "SELECT count(*) FROM cte_ctel.cte_verify_ledger()";
    let problems: i64 = client.query_one(sql, &[]).await?.try_get(0)?;
    checks.ok(problems == 0, "the ledger verifies");
    Ok(())
}

/// The feed consumer: what it reads and does not acknowledge it reads again; what it
/// acknowledged, never again. Each batch's acknowledgement commits in the handler's transaction.
async fn run_consumer(
    checks: &mut Checks,
    feed: &mut Client,
    consumer: &mut Consumer,
    wanted: &BTreeMap<Uuid, &str>,
) -> Outcome {
    let peeked = consumer.next(feed, 1000).await?;
    let again = consumer.next(feed, 1000).await?;
    let positions_of =
        |changes: &[Change]| changes.iter().map(|change| change.position).collect::<Vec<_>>();
    checks.ok(
        !peeked.is_empty() && positions_of(&again).starts_with(&positions_of(&peeked)),
        &format!(
            "the consumer reads {} changes, and without an ack the same ones again",
            peeked.len()
        ),
    );
    let (mut seen, mut positions) = (BTreeMap::new(), Vec::new());
    let all_seen = |seen: &BTreeMap<Uuid, String>| {
        wanted.iter().all(|(event, status)| seen.get(event).map(String::as_str) == Some(*status))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let handle = async |_: &Transaction<'_>, change: &Change| -> Result<(), Error> {
            positions.push(change.position);
            if change.kind == "event" {
                if let (Some(event), Some(status)) = (change.event_id, &change.new_status) {
                    seen.insert(event, status.clone());
                }
            }
            Ok(())
        };
        let handled = consumer.run_batch(feed, 1000, handle).await?;
        if (handled == 0 && all_seen(&seen)) || Instant::now() >= deadline {
            break;
        }
        if handled == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    checks.ok(
        all_seen(&seen),
        &format!("the feed consumer saw the payouts finish ({} changes)", positions.len()),
    );
    let increasing = positions.windows(2).all(|pair| pair[0] < pair[1]);
    checks.ok(
        increasing && positions.first() == peeked.first().map(|change| &change.position),
        "the feed's positions only increase: nothing twice, nothing skipped at the start",
    );
    let after = consumer.next(feed, 1000).await?;
    let last = positions.last();
    checks.ok(
        after.iter().all(|change| last.is_some_and(|last| change.position > *last)),
        "after the acknowledgements, nothing it handled comes back",
    );
    Ok(())
}

async fn run(checks: &mut Checks, conninfo: &str) -> Outcome {
    let config = conninfo.parse()?;
    let client = connect(&config).await?; // Each call on it is its own transaction.
    let role: String = client.query_one("SELECT current_user::text", &[]).await?.try_get(0)?;
    let sql = "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user";
    let superuser: bool = client.query_one(sql, &[]).await?.try_get(0)?;
    checks.ok(!superuser, &format!("the application connects as {role}, not a superuser"));

    // A named consumer of the change feed, on its own connection: it starts at the newest
    // position, and the extension keeps its cursor.
    let clock = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() % 1_000_000_000;
    let tag = format!("{:x}{clock:x}", std::process::id());
    let mut feed = connect(&config).await?;
    let mut consumer = Consumer::open(&feed, &format!("rs-marketplace-{tag}"), None).await?;

    let (buyer, seller) = (format!("rs-buyer-{tag}"), format!("rs-seller-{tag}"));
    let ledger = Ledger::new(&client);
    for account in [&buyer, &seller] {
        ledger.create_account(account, &["USD"]).await?;
    }
    run_top_up_and_sale(checks, &client, &buyer, &seller, &tag).await?;
    let payouts = payouts::run(checks, &client, conninfo, &seller, &tag).await?;
    run_role_limits(checks, &client, &buyer, payouts.rejected).await?;
    let wanted = BTreeMap::from([(payouts.paid, "completed"), (payouts.rejected, "compensated")]);
    run_consumer(checks, &mut feed, &mut consumer, &wanted).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, conninfo, name, folder, mode] = arguments.as_slice() {
        if flag == "--payout-worker" {
            if let Err(error) = bank::payout_worker(conninfo, name, folder, mode).await {
                eprintln!("payout worker {name}: {error}");
                return ExitCode::FAILURE;
            }
            return ExitCode::SUCCESS;
        }
    }
    let [conninfo] = arguments.as_slice() else {
        eprintln!("usage: cte_ctel_example CONNINFO");
        return ExitCode::from(2);
    };
    let mut checks = Checks { failed: 0 };
    if let Err(error) = run(&mut checks, conninfo).await {
        println!("not ok - the example ran to its end: {error}");
        return ExitCode::FAILURE;
    }
    if checks.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
