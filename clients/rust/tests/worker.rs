//! Executors in the application: a Worker claims steps of a hosted type under leases, runs the
//! executor and reports with the lease token. Shown here: a step done end to end; a Permanent
//! failure compensates the event, and a later step's failure asks the executor to compensate;
//! two workers never hold one step; a lease that runs out hands the step to another worker and
//! refuses the stale worker's report; a heartbeat keeps a long step; an executor that hangs holds
//! only its own step, not the rest of its batch; a worker process killed with SIGKILL mid-step
//! leaves the step to another, and the ledger posts once. Leases are short
//! (1 second, the least the server takes) and maintenance passes are run by hand, so the suite
//! does not depend on the server's own worker serving this database.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{balance, hosted_type, maintenance, money, status, suffix, wait_until, wallets, USD};
use cte_ctel_client::{
    money as amounts, EventRun, Executor, Ledger, NewStep, Phase, Report, RunOptions, Step,
    StepError, StepResult, Worker,
};
use serde_json::json;
use tokio::sync::{mpsc, Notify};
use tokio_postgres::Client;
use uuid::Uuid;

const ONE_SECOND: Duration = Duration::from_secs(1);

type Calls = Arc<Mutex<Vec<(String, Step)>>>;

/// Records each call under its label and returns the charge it "made", keyed by the step.
#[derive(Clone)]
struct Recording {
    label: String,
    calls: Calls,
    delay: Duration,
}

impl Recording {
    fn new(label: &str, calls: &Calls) -> Recording {
        Recording { label: label.to_owned(), calls: calls.clone(), delay: Duration::ZERO }
    }

    fn record(&self, step: &Step) {
        self.calls.lock().unwrap().push((self.label.clone(), step.clone()));
    }
}

impl Executor for Recording {
    async fn execute(&self, step: &Step) -> StepResult {
        tokio::time::sleep(self.delay).await;
        self.record(step);
        let amount = amounts::field(&step.payload, "amount")?;
        let charge_id = format!("ch_{}", step.transaction_id);
        Ok(json!({"charge_id": charge_id, "amount": amounts::to_json(amount)}))
    }

    async fn compensate(&self, step: &Step) -> StepResult {
        self.record(step);
        Ok(json!({"refund_of": step.result.as_ref().and_then(|result| result.get("charge_id"))}))
    }
}

/// What each test starts from: the two connections, a suffix, a hosted type registered for the
/// test, and two USD wallets: escrow (funded with the amount given) and seller (empty).
struct Order {
    admin: Client,
    app: Client,
    name: String,
    hosted: String,
    accounts: Vec<String>,
}

impl Order {
    async fn new(env: &common::Env, escrow: &str) -> Order {
        let (admin, app, name) = (env.admin().await, env.app().await, suffix());
        let hosted = hosted_type(&admin, &name).await;
        let accounts = wallets(&app, &name, &[("escrow", escrow), ("seller", "0")]).await;
        Order { admin, app, name, hosted, accounts }
    }
}

/// An event: the PSP charge (a hosted step), then the payout from escrow to the seller.
async fn charge_then_pay(
    app: &Client,
    hosted: &str,
    accounts: &[String],
    amount: &str,
) -> EventRun {
    let charge = json!({"amount": amounts::to_json(money(amount)), "currency": USD});
    let pay = json!({"source_account_id": accounts[0], "destination_account_id": accounts[1],
                     "amount": amounts::to_json(money(amount)), "currency": USD});
    let steps = [
        NewStep::new("charge", hosted, charge).max_attempts(5),
        NewStep::new("pay", "wallet.transfer", pay),
    ];
    Ledger::new(app).run_event("order", &steps, &RunOptions::default()).await.unwrap()
}

async fn step_result(app: &Client, transaction_id: Uuid) -> serde_json::Value {
    let sql = "SELECT result FROM cte_ctel.cte_transactions WHERE id = $1";
    app.query_one(sql, &[&transaction_id]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_executes_a_hosted_step_end_to_end() {
    let Some(env) = common::env("worker_executes_a_hosted_step_end_to_end") else { return };
    let Order { app, hosted, accounts, .. } = Order::new(&env, "100").await;
    let run = charge_then_pay(&app, &hosted, &accounts, "12.34").await;
    assert_eq!(run.status, "waiting");
    let calls = Calls::default();
    let mut worker = Worker::new(&env.app_dsn, "rs-worker-a")
        .unwrap()
        .host(&hosted, Recording::new("a", &calls));
    assert_eq!(worker.run_once().await.unwrap(), 1);
    assert_eq!(worker.run_once().await.unwrap(), 0, "nothing else waits");
    let calls = calls.lock().unwrap().clone();
    let [(_, step)] = calls.as_slice() else { panic!("one call: {calls:?}") };
    assert_eq!(
        (step.event_id, step.step_type.as_str(), step.phase, step.attempt),
        (run.event_id, hosted.as_str(), Phase::Execute, 1)
    );
    assert_eq!(step.payload, json!({"amount": "12.34", "currency": "USD"}));
    assert_eq!(status(&app, run.event_id).await, "completed");
    assert_eq!(balance(&app, &accounts[1]).await, money("12.34"));
    let result = step_result(&app, step.transaction_id).await;
    assert_eq!(result["charge_id"], json!(format!("ch_{}", step.transaction_id)));
    assert_eq!(amounts::field(&result, "amount").unwrap(), money("12.34"));
}

/// Fails the `declined` event for good, the others once (try again) and then succeeds.
struct Flaky {
    declined: Uuid,
    seen: Mutex<BTreeMap<Uuid, u32>>,
}

impl Executor for Flaky {
    async fn execute(&self, step: &Step) -> StepResult {
        let seen = {
            let mut seen = self.seen.lock().unwrap();
            let count = seen.entry(step.event_id).or_default();
            *count += 1;
            *count
        };
        if step.event_id == self.declined {
            return Err(StepError::permanent("card declined"));
        }
        if seen == 1 {
            return Err(StepError::retryable("PSP timed out"));
        }
        Ok(serde_json::Value::Null)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failure_compensates_and_retryable_is_tried_again() {
    let Some(env) = common::env("permanent_failure_compensates_and_retryable_is_tried_again")
    else {
        return;
    };
    let Order { admin, app, hosted, accounts, .. } = Order::new(&env, "100").await;
    let retried = charge_then_pay(&app, &hosted, &accounts, "1").await;
    let declined = charge_then_pay(&app, &hosted, &accounts, "2").await;
    let flaky = Flaky { declined: declined.event_id, seen: Mutex::default() };
    let mut worker = Worker::new(&env.app_dsn, "rs-flaky").unwrap().host(&hosted, flaky);
    assert_eq!(worker.run_once().await.unwrap(), 2);
    assert_eq!(status(&app, declined.event_id).await, "compensated");
    assert_ne!(status(&app, retried.event_id).await, "completed", "the first attempt failed");
    wait_until(&admin, "the retry", async || worker.run_once().await.unwrap() == 1).await;
    assert_eq!(status(&app, retried.event_id).await, "completed");
    assert_eq!(balance(&app, &accounts[1]).await, money("1.00"), "only the retried event paid");
    assert_eq!(balance(&app, &accounts[0]).await, money("99.00"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_failure_asks_the_executor_to_compensate() {
    let Some(env) = common::env("a_later_failure_asks_the_executor_to_compensate") else { return };
    // Escrow holds less than the payout: the transfer after the charge fails for good.
    let Order { app, hosted, accounts, .. } = Order::new(&env, "1").await;
    let run = charge_then_pay(&app, &hosted, &accounts, "5").await;
    let calls = Calls::default();
    let mut worker =
        Worker::new(&env.app_dsn, "rs-undo").unwrap().host(&hosted, Recording::new("u", &calls));
    assert_eq!(worker.run_once().await.unwrap(), 1, "the charge");
    assert_eq!(status(&app, run.event_id).await, "compensating");
    assert_eq!(worker.run_once().await.unwrap(), 1, "its compensation");
    assert_eq!(status(&app, run.event_id).await, "compensated");
    let calls = calls.lock().unwrap().clone();
    let phases: Vec<Phase> = calls.iter().map(|(_, step)| step.phase).collect();
    assert_eq!(phases, [Phase::Execute, Phase::Compensate]);
    let charge_id = format!("ch_{}", calls[0].1.transaction_id);
    assert_eq!(
        calls[1].1.result.as_ref().unwrap()["charge_id"],
        json!(charge_id),
        "it sees the result"
    );
    assert_eq!(balance(&app, &accounts[0]).await, money("1.00"));
    assert_eq!(balance(&app, &accounts[1]).await, money("0.00"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_never_hold_the_same_step() {
    let Some(env) = common::env("two_workers_never_hold_the_same_step") else { return };
    let Order { app, hosted, accounts, .. } = Order::new(&env, "100").await;
    let mut events = Vec::new();
    for _ in 0..24 {
        events.push(charge_then_pay(&app, &hosted, &accounts, "1").await.event_id);
    }
    let calls = Calls::default();
    let mut drains = Vec::new();
    for label in ["w0", "w1"] {
        let executor =
            Recording { delay: Duration::from_millis(20), ..Recording::new(label, &calls) };
        let mut worker = Worker::new(&env.app_dsn, &format!("rs-{label}"))
            .unwrap()
            .host(&hosted, executor)
            .limit(3);
        drains.push(tokio::spawn(async move { while worker.run_once().await.unwrap() > 0 {} }));
    }
    for drain in drains {
        drain.await.unwrap();
    }
    let calls = calls.lock().unwrap().clone();
    let mut executed: BTreeMap<Uuid, u32> = BTreeMap::new();
    for (_, step) in &calls {
        *executed.entry(step.transaction_id).or_default() += 1;
    }
    assert_eq!(executed.len(), 24);
    assert!(executed.values().all(|count| *count == 1), "each step ran once: {executed:?}");
    let labels: std::collections::BTreeSet<&str> =
        calls.iter().map(|(label, _)| label.as_str()).collect();
    assert_eq!(labels.len(), 2, "both workers took steps");
    for event in events {
        assert_eq!(status(&app, event).await, "completed");
    }
    assert_eq!(balance(&app, &accounts[1]).await, money("24.00"), "the ledger posted each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_goes_to_another_worker_and_the_stale_report_is_refused() {
    let Some(env) = common::env("an_expired_lease_goes_to_another_worker") else { return };
    let Order { admin, app, hosted, accounts, .. } = Order::new(&env, "100").await;
    let run = charge_then_pay(&app, &hosted, &accounts, "5").await;
    let calls = Calls::default();
    let mut stale = Worker::new(&env.app_dsn, "rs-stale")
        .unwrap()
        .host(&hosted, Recording::new("stale", &calls))
        .lease(ONE_SECOND)
        .heartbeat(false);
    let mut fresh = Worker::new(&env.app_dsn, "rs-fresh")
        .unwrap()
        .host(&hosted, Recording::new("fresh", &calls));
    let held = stale.claim().await.unwrap();
    assert_eq!(held.len(), 1);
    assert!(fresh.claim().await.unwrap().is_empty(), "a held lease is not handed out twice");
    tokio::time::sleep(Duration::from_millis(1100)).await; // the stale worker stalls past its lease
    wait_until(&admin, "the step claimable again", async || fresh.run_once().await.unwrap() == 1)
        .await;
    assert_eq!(stale.process(&held[0]).await.unwrap(), Report::LeaseLost);
    let calls = calls.lock().unwrap().clone();
    let attempts: Vec<(&str, i32)> =
        calls.iter().map(|(label, step)| (label.as_str(), step.attempt)).collect();
    assert_eq!(attempts, [("fresh", 2), ("stale", 1)], "the stale worker's attempt did not count");
    assert_eq!(status(&app, run.event_id).await, "completed");
    assert_eq!(balance(&app, &accounts[1]).await, money("5.00"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_keeps_a_long_step_from_being_taken_over() {
    let Some(env) = common::env("a_heartbeat_keeps_a_long_step_from_being_taken_over") else {
        return;
    };
    let Order { admin, app, hosted, accounts, .. } = Order::new(&env, "100").await;
    let run = charge_then_pay(&app, &hosted, &accounts, "3").await;
    let calls = Calls::default();
    let slow = Recording { delay: Duration::from_millis(2500), ..Recording::new("slow", &calls) };
    let mut worker =
        Worker::new(&env.app_dsn, "rs-slow").unwrap().host(&hosted, slow).lease(ONE_SECOND);
    let mut other = Worker::new(&env.app_dsn, "rs-other")
        .unwrap()
        .host(&hosted, Recording::new("other", &calls));
    let working = tokio::spawn(async move { worker.run_once().await.unwrap() });
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2400) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        maintenance(&admin).await;
        assert!(other.claim().await.unwrap().is_empty(), "the step is still the slow worker's");
    }
    assert_eq!(working.await.unwrap(), 1);
    assert_eq!(status(&app, run.event_id).await, "completed");
    assert_eq!(calls.lock().unwrap().len(), 1);
}

/// Hangs on the first step it is handed until the test releases it (or 30 seconds pass), and
/// counts its executions per step.
struct Hanging {
    executed: Arc<Mutex<BTreeMap<Uuid, u32>>>,
    started: mpsc::UnboundedSender<Step>,
    release: Arc<Notify>,
}

impl Executor for Hanging {
    async fn execute(&self, step: &Step) -> StepResult {
        let first = {
            let mut executed = self.executed.lock().unwrap();
            let first = executed.is_empty();
            *executed.entry(step.transaction_id).or_default() += 1;
            first
        };
        if first {
            self.started.send(step.clone()).unwrap();
            let released = self.release.notified();
            if tokio::time::timeout(Duration::from_secs(30), released).await.is_err() {
                return Err(StepError::retryable("never released"));
            }
        }
        Ok(json!({"by": "hanging"}))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_executor_holds_only_its_own_step_not_its_batch() {
    let Some(env) = common::env("a_hung_executor_holds_only_its_own_step") else { return };
    let Order { admin, app, hosted, accounts, .. } = Order::new(&env, "100").await;
    let events = [
        charge_then_pay(&app, &hosted, &accounts, "1").await.event_id,
        charge_then_pay(&app, &hosted, &accounts, "2").await.event_id,
    ];
    let executed = Arc::new(Mutex::new(BTreeMap::new()));
    let (started, mut hung) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let hanging = Hanging { executed: executed.clone(), started, release: release.clone() };
    let mut worker_a = Worker::new(&env.app_dsn, "rs-hung")
        .unwrap()
        .host(&hosted, hanging)
        .limit(2)
        .lease(ONE_SECOND);
    let working = tokio::spawn(async move { worker_a.run_once().await.unwrap() });
    let hung = tokio::time::timeout(Duration::from_secs(10), hung.recv()).await.unwrap().unwrap();
    let hung_at = Instant::now();
    let calls = Calls::default();
    let mut worker_b =
        Worker::new(&env.app_dsn, "rs-behind").unwrap().host(&hosted, Recording::new("b", &calls));
    // The step queued behind the hung one is not extended: its lease runs out and B takes it.
    wait_until(&admin, "the queued step taken over", async || {
        worker_b.run_once().await.unwrap() == 1
    })
    .await;
    // The hung step itself stays A's, for several leases: the heartbeat extends it.
    while hung_at.elapsed() < Duration::from_millis(3500) {
        maintenance(&admin).await;
        assert!(worker_b.claim().await.unwrap().is_empty(), "the hung step is still A's");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    release.notify_one();
    assert_eq!(working.await.unwrap(), 2, "A claimed both steps");
    let executed = executed.lock().unwrap().clone();
    assert_eq!(executed, BTreeMap::from([(hung.transaction_id, 1)]), "A skipped the queued step");
    let calls = calls.lock().unwrap().clone();
    let [(_, queued)] = calls.as_slice() else { panic!("B ran one step: {calls:?}") };
    assert_ne!(queued.transaction_id, hung.transaction_id);
    assert_eq!(queued.attempt, 2, "A's attempt at it ended with its lease");
    assert_eq!(step_result(&app, hung.transaction_id).await, json!({"by": "hanging"}));
    let result = step_result(&app, queued.transaction_id).await;
    assert_eq!(result["charge_id"], json!(format!("ch_{}", queued.transaction_id)));
    for event in events {
        assert_eq!(status(&app, event).await, "completed");
    }
    assert_eq!(balance(&app, &accounts[1]).await, money("3.00"), "each payout posted once");
    assert_eq!(balance(&app, &accounts[0]).await, money("97.00"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_step_is_replaced_and_the_ledger_posts_once() {
    let Some(env) = common::env("a_worker_killed_mid_step_is_replaced") else { return };
    let Order { admin, app, name, hosted, accounts, .. } = Order::new(&env, "100").await;
    let run = charge_then_pay(&app, &hosted, &accounts, "7.77").await;
    let started = std::env::temp_dir().join(format!("rs-started-{name}"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_worker_process"))
        .args([&env.app_dsn, &hosted, started.to_str().unwrap()])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !started.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the worker process runs");
        assert!(Instant::now() < deadline, "the worker process claimed the step");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL mid-step: the charge is made, the report is not
    child.wait().unwrap();
    let first_attempt = std::fs::read_to_string(&started).unwrap();
    std::fs::remove_file(&started).unwrap();
    assert_eq!(status(&app, run.event_id).await, "waiting", "nothing reported yet");
    let calls = Calls::default();
    let mut worker = Worker::new(&env.app_dsn, "rs-restarted")
        .unwrap()
        .host(&hosted, Recording::new("r", &calls))
        .lease(ONE_SECOND);
    wait_until(&admin, "the orphaned step", async || worker.run_once().await.unwrap() == 1).await;
    let calls = calls.lock().unwrap().clone();
    let [(_, step)] = calls.as_slice() else { panic!("one call: {calls:?}") };
    assert_eq!(step.transaction_id.to_string(), first_attempt, "the same step, the same key");
    assert_eq!(step.attempt, 2);
    assert_eq!(status(&app, run.event_id).await, "completed");
    assert_eq!(balance(&app, &accounts[1]).await, money("7.77"), "posted once");
    assert_eq!(balance(&app, &accounts[0]).await, money("92.23"));
}
