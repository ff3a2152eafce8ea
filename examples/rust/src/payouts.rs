//! Payouts as sagas whose bank step the application executes itself: the amount is held on the
//! seller's wallet (`wallet.withdrawal`) while a `bank.payout` step, claimed under a lease by one
//! of the application's payout worker processes, pays it at the bank.
//!
//! Shown here: two worker processes, the first killed with SIGKILL after the bank paid and
//! before it reported; the second takes the step over once the lease runs out; the bank,
//! idempotent by the step's transaction_id, pays once; the ledger posts the payout once. A payout
//! the bank rejects is compensated: its hold is released. The worker processes are this binary
//! started again (`--payout-worker`), and every one is killed before this module returns,
//! whatever happened.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use cte_ctel_client::{money, EventRun, Ledger, NewStep, RunOptions};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::bank::{Bank, IBAN_CLOSED, PAYOUT_TYPE};
use crate::{minus, wait_until, Checks, Outcome};

const IBAN: &str = "DE89370400440532013000";

/// The two payout events, for the feed consumer to look for.
pub struct Payouts {
    /// Paid by the bank and posted.
    pub paid: Uuid,
    /// Rejected by the bank and compensated.
    pub rejected: Uuid,
}

/// A payout saga: the amount held on the seller's wallet while the bank pays it; posted when
/// the bank paid, released if it refused. Its key makes the request safe to send again.
async fn payout(
    ledger: &Ledger<'_, Client>,
    seller: &str,
    amount: Decimal,
    payout_id: &str,
    iban: &str,
) -> cte_ctel_client::Result<EventRun> {
    let hold = json!({"account_id": seller, "amount": money::to_json(amount), "currency": "USD"});
    let bank = json!({"payout_id": payout_id, "amount": money::to_json(amount),
                      "currency": "USD", "iban": iban});
    let steps =
        [NewStep::new("hold", "wallet.withdrawal", hold), NewStep::new("bank", PAYOUT_TYPE, bank)];
    let options = RunOptions {
        idempotency_key: Some(format!("payout-{payout_id}")),
        ..RunOptions::default()
    };
    ledger.run_event("payout", &steps, &options).await
}

/// The payout worker processes started so far; dropping this kills every one still running.
#[derive(Default)]
struct WorkerProcesses {
    children: Vec<Child>,
}

impl WorkerProcesses {
    /// Starts a worker process named `name`; returns its process id. Its standard input is a
    /// pipe the example holds (the process exits when it closes); it prints nothing.
    fn start(&mut self, conninfo: &str, name: &str, folder: &Path, mode: &str) -> Outcome<u32> {
        let child = Command::new(std::env::current_exe()?)
            .arg("--payout-worker")
            .args([conninfo, name])
            .arg(folder)
            .arg(mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let pid = child.id();
        self.children.push(child);
        Ok(pid)
    }

    /// Kills the worker process `pid` with SIGKILL and waits for it (it stays in the list, ended).
    fn kill(&mut self, pid: u32) -> Outcome {
        let Some(index) = self.children.iter().position(|child| child.id() == pid) else {
            return Err(format!("no worker process {pid}").into());
        };
        let child = &mut self.children[index];
        child.kill()?;
        child.wait()?;
        Ok(())
    }
}

impl Drop for WorkerProcesses {
    fn drop(&mut self) {
        for child in &mut self.children {
            if let Ok(Some(_)) = child.try_wait() {
                continue; // Killed already, and waited for.
            }
            if let Err(error) = child.kill().and_then(|()| child.wait().map(drop)) {
                eprintln!("payout worker {}: {error}", child.id());
            }
        }
    }
}

/// The payouts, from the seller's wallet; `tag` keeps this run's names apart.
pub async fn run(
    checks: &mut Checks,
    client: &Client,
    conninfo: &str,
    seller: &str,
    tag: &str,
) -> Outcome<Payouts> {
    let ledger = Ledger::new(client);
    let folder = std::env::temp_dir().join(format!("cte-bank-{tag}"));
    fs::create_dir(&folder)?;
    let before = ledger.balance(seller, "USD").await?;
    let fifty = money::parse("50.00")?;
    let first = payout(&ledger, seller, fifty, &format!("{tag}-a"), IBAN).await?;
    checks.ok(
        first.status == "waiting"
            && ledger.available_balance(seller, "USD").await? == minus(before, fifty)?,
        &format!(
            "a payout of 50 waits for the bank ({}), the amount held on the seller",
            first.status
        ),
    );
    let again = payout(&ledger, seller, fifty, &format!("{tag}-a"), IBAN).await?;
    checks.ok(
        again.replayed && again.event_id == first.event_id,
        "the payout request sent twice is one payout (a replay by its idempotency key)",
    );
    let mut workers = WorkerProcesses::default();
    let by_workers = async {
        run_take_over(checks, client, conninfo, &folder, seller, &first, &mut workers).await?;
        run_rejected(checks, &ledger, seller, tag, minus(before, fifty)?).await
    }
    .await;
    drop(workers); // Whatever happened, no worker process outlives the payouts.
    let rejected = by_workers?;
    fs::remove_dir_all(&folder)?;
    Ok(Payouts { paid: first.event_id, rejected })
}

/// A payout the bank rejects: compensated, the seller's `available` balance as it was.
async fn run_rejected(
    checks: &mut Checks,
    ledger: &Ledger<'_, Client>,
    seller: &str,
    tag: &str,
    available: Decimal,
) -> Outcome<Uuid> {
    let five = money::parse("5.00")?;
    let rejected = payout(ledger, seller, five, &format!("{tag}-b"), IBAN_CLOSED).await?;
    let compensated = wait_until(30, async || {
        Ok(ledger.event_status(rejected.event_id).await?.as_deref() == Some("compensated"))
    })
    .await?;
    checks.ok(
        compensated && ledger.available_balance(seller, "USD").await? == available,
        "a payout the bank rejects (Permanent) is compensated: its hold is released",
    );
    Ok(rejected.event_id)
}

/// Worker 1 pays at the bank and is killed before its report; worker 2 takes the step over.
async fn run_take_over(
    checks: &mut Checks,
    client: &Client,
    conninfo: &str,
    folder: &Path,
    seller: &str,
    first: &EventRun,
    workers: &mut WorkerProcesses,
) -> Outcome {
    let (ledger, bank) = (Ledger::new(client), Bank::new(folder));
    let before = ledger.balance(seller, "USD").await?;
    let sql = "SELECT id FROM cte_ctel.cte_transactions WHERE event_id = $1 AND name = 'bank'";
    let step: Uuid = client.query_one(sql, &[&first.event_id]).await?.try_get(0)?;
    let key = step.to_string();
    let doomed = workers.start(conninfo, "payout-1", folder, "hang-after-paying")?;
    let paid = wait_until(20, async || Ok(bank.calls(&key)? == 1)).await?;
    checks.ok(paid, "payout worker 1 claimed the bank step and the bank paid");
    let sql = "SELECT lease_worker FROM cte_ctel.cte_steps_awaiting WHERE transaction_id = $1";
    let row = client.query_opt(sql, &[&step]).await?;
    let holder: Option<String> = row.map(|row| row.try_get(0)).transpose()?.flatten();
    checks.ok(
        holder.as_deref() == Some("payout-1"),
        &format!(
            "the step waits under worker 1's lease ({}), not yet reported",
            holder.as_deref().unwrap_or("none")
        ),
    );
    workers.kill(doomed)?; // Mid-step: after the bank paid, before the report.
    checks.ok(
        ledger.event_status(first.event_id).await?.as_deref() == Some("waiting")
            && ledger.balance(seller, "USD").await? == before,
        "worker 1 is killed with SIGKILL mid-step: the payout still waits, nothing posted",
    );
    workers.start(conninfo, "payout-2", folder, "serve")?;
    let completed = wait_until(30, async || {
        Ok(ledger.event_status(first.event_id).await?.as_deref() == Some("completed"))
    })
    .await?;
    checks.ok(
        completed,
        "payout worker 2 takes the step over once the lease runs out, and the payout completes",
    );
    run_take_over_paid_once(checks, client, &bank, step, doomed).await?;
    let sql = "SELECT count(*) FROM cte_ctel.cte_entries WHERE account_id = $1 AND transaction_id \
               IN (SELECT id FROM cte_ctel.cte_transactions WHERE event_id = $2)";
    let entries: i64 = client.query_one(sql, &[&seller, &first.event_id]).await?.try_get(0)?;
    checks.ok(
        ledger.balance(seller, "USD").await? == minus(before, money::parse("50.00")?)?
            && entries == 1,
        "the ledger posts the payout exactly once: the seller's balance fell by 50.00, one entry",
    );
    Ok(())
}

/// The bank was called by both workers and paid once, by worker 1 (`doomed`); the step's result
/// is that payout.
async fn run_take_over_paid_once(
    checks: &mut Checks,
    client: &Client,
    bank: &Bank,
    step: Uuid,
    doomed: u32,
) -> Outcome {
    let key = step.to_string();
    let sql = "SELECT result, attempts FROM cte_ctel.cte_transactions WHERE id = $1";
    let row = client.query_one(sql, &[&step]).await?;
    let (result, attempts): (Option<Value>, i32) = (row.try_get(0)?, row.try_get(1)?);
    let payouts = bank.payouts()?;
    let reference = match payouts.as_slice() {
        [only] if *only == key => Some(bank.reference_of(&key)?),
        _ => None,
    };
    let reported = result.as_ref().and_then(|result| result["bank_reference"].as_str());
    checks.ok(
        bank.calls(&key)? == 2
            && reference
                .as_deref()
                .is_some_and(|paid| paid.starts_with(&format!("BANK-{doomed}-")))
            && reported == reference.as_deref(),
        &format!(
            "the bank was called twice ({attempts} attempts) and paid once, by worker 1: the \
             step's id is its key, and worker 2 reported worker 1's payout"
        ),
    );
    Ok(())
}
