//! The `Worker`: claims steps of the types it hosts, calls their executors, reports.
//!
//! A worker claims (`cte_claim_steps`, a statement of its own that commits at once, so the claim
//! holds no row lock while the work runs) up to `limit` steps, calls the executor of each in
//! turn, and reports under the step's lease token. A heartbeat, on a connection of its own,
//! extends the lease of the step running now, so a step that takes longer than its lease is not
//! handed to another worker. Steps of a batch waiting their turn are not extended: right before
//! a step starts, the worker extends its lease once, and if that is refused with
//! `lease_expired` (it waited past its lease, so it may be another worker's already) the step
//! is skipped without being executed ([`Report::LeaseLost`], logged). So an executor that hangs
//! holds only its own step, never the rest of its batch; the other side is that a batch's later
//! steps must start within their lease: choose `limit` and `lease` so that `limit` times a
//! step's usual time fits in the lease. A report refused with `lease_expired` means another
//! worker took the step over: the worker logs it and goes on. Leases live in the ledger, not in
//! the worker: a worker that dies holds nothing once they run out, and the steps are claimed
//! again, by another worker or by it restarted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Row};

use crate::connection::connect;
use crate::error::{Error, Result};
use crate::executor::{DynExecutor, Executor, Phase, Step, StepError};
use crate::heartbeat::{extend_lease, Heartbeat};
use crate::ledger::milliseconds;
use crate::reason::Reason;

/// The shortest lease the server takes.
pub const LEASE_MIN: Duration = Duration::from_secs(1);

/// What became of one claimed step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// Executed and reported complete.
    Completed,
    /// Failed, reported as a try-again failure.
    Retry,
    /// Failed for good: its event compensates.
    Failed,
    /// Compensated and reported.
    Compensated,
    /// The compensation failed for good: the event is left `failed` for an operator.
    CompensationFailed,
    /// A compensation that may succeed later: not reported, claimed again after its lease.
    Released,
    /// The report was refused with `lease_expired`: another worker holds the step now. Or, for
    /// a step of a batch, its lease ran out while it waited its turn: skipped, not executed.
    LeaseLost,
    /// The report was refused for another reason (logged).
    Refused,
}

/// Claims and runs the steps of the hosted types of its executors.
pub struct Worker {
    config: Config,
    executors: BTreeMap<String, Arc<dyn DynExecutor>>,
    worker_name: String,
    lease: Duration,
    limit: i32,
    heartbeat: bool,
    client: Option<Client>,
}

impl Worker {
    /// A worker named `worker_name` connecting with `conninfo`; lease 30 s, up to 10 steps a
    /// claim, heartbeats on. Host types with [`Worker::host`].
    pub fn new(conninfo: &str, worker_name: &str) -> Result<Worker> {
        Ok(Worker {
            config: conninfo.parse()?,
            executors: BTreeMap::new(),
            worker_name: worker_name.to_owned(),
            lease: Duration::from_secs(30),
            limit: 10,
            heartbeat: true,
            client: None,
        })
    }

    /// The same worker running `executor` for the steps of `step_type`.
    pub fn host(mut self, step_type: &str, executor: impl Executor) -> Worker {
        self.executors.insert(step_type.to_owned(), Arc::new(executor));
        self
    }

    /// The same worker with leases of `lease` (at least [`LEASE_MIN`]).
    pub fn lease(mut self, lease: Duration) -> Worker {
        assert!(lease >= LEASE_MIN, "the server refuses a lease shorter than a second");
        self.lease = lease;
        self
    }

    /// The same worker claiming up to `limit` steps at a time. They run one after another and
    /// only the running one's lease is extended, so a later one must start within its lease
    /// (otherwise it is skipped, and claimed again once maintenance ends its lease).
    pub fn limit(mut self, limit: i32) -> Worker {
        assert!(limit >= 1, "a claim asks for at least one step");
        self.limit = limit;
        self
    }

    /// The same worker with heartbeats on or off (off: a lease runs out while the work runs).
    pub fn heartbeat(mut self, heartbeat: bool) -> Worker {
        self.heartbeat = heartbeat;
        self
    }

    /// The worker's name, as the leases record it.
    pub fn name(&self) -> &str {
        &self.worker_name
    }

    async fn client(&mut self) -> Result<&Client> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(connect(&self.config).await?);
        }
        self.client.as_ref().ok_or_else(|| Error::Unexpected("no connection".into()))
    }

    /// Claims up to `limit` steps, in a transaction of its own that commits at once.
    pub async fn claim(&mut self) -> Result<Vec<Step>> {
        assert!(!self.executors.is_empty(), "a worker hosts at least one step type");
        let types: Vec<String> = self.executors.keys().cloned().collect();
        let lease_ms = milliseconds(self.lease)?;
        let (name, limit) = (self.worker_name.clone(), self.limit);
        let sql = "SELECT transaction_id, event_id, type, phase, payload, result, attempt, \
                   lease_token FROM cte_ctel.cte_claim_steps($1, $2, \
                   $3::bigint * interval '1 millisecond', $4)";
        let rows = self.client().await?.query(sql, &[&types, &name, &lease_ms, &limit]).await?;
        rows.iter().map(step_of).collect()
    }

    /// Claims a batch, executes or compensates each step in turn and reports it; returns how
    /// many steps were claimed (0: nothing waits). Each step's lease is extended right before it
    /// starts, and the step skipped if its lease ran out while it waited its turn; the
    /// heartbeat extends the running step's lease only.
    pub async fn run_once(&mut self) -> Result<usize> {
        let steps = self.claim().await?;
        if steps.is_empty() {
            return Ok(0);
        }
        let beat = self.heartbeat.then(|| Heartbeat::start(self.config.clone(), self.lease));
        let mut outcome = Ok(steps.len());
        for step in &steps {
            let report = self.run_in_turn(step, beat.as_ref()).await;
            if let Some(beat) = &beat {
                beat.drop_step(step.transaction_id).await;
            }
            if let Err(error) = report {
                outcome = Err(error);
                break;
            }
        }
        if let Some(beat) = beat {
            beat.stop().await;
        }
        outcome
    }

    /// Runs batches until `stop` holds true, waiting `idle` when nothing waits; a lost
    /// connection is logged and opened again on the next round.
    pub async fn run_forever(&mut self, mut stop: watch::Receiver<bool>, idle: Duration) {
        while !*stop.borrow() {
            let claimed = match self.run_once().await {
                Ok(claimed) => claimed,
                Err(error) => {
                    log::error!("worker {}: {error}; connecting again", self.worker_name);
                    self.client = None;
                    0
                }
            };
            if claimed == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(idle) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Runs a step of a batch when its turn comes: extends its lease first, and skips it
    /// ([`Report::LeaseLost`], nothing executed) if the lease ran out while it waited; else
    /// the heartbeat extends its lease while it runs.
    async fn run_in_turn(&mut self, step: &Step, beat: Option<&Heartbeat>) -> Result<Report> {
        if !self.renew(step).await? {
            return Ok(Report::LeaseLost);
        }
        if let Some(beat) = beat {
            beat.hold(step.transaction_id, step.lease_token).await;
        }
        self.process(step).await
    }

    /// Extends the lease of a step about to start; false if it ran out (the step may be another
    /// worker's by now). Another refusal, or a lost connection, is the caller's.
    async fn renew(&mut self, step: &Step) -> Result<bool> {
        let lease = self.lease;
        let client = self.client().await?;
        match extend_lease(client, step.transaction_id, step.lease_token, lease).await {
            Ok(()) => Ok(true),
            Err(Error::Refused(refused)) if refused.reason == Reason::LeaseExpired => {
                log::warn!(
                    "step {} waited past its lease, skipped: {refused}",
                    step.transaction_id
                );
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// Runs one claimed step and reports it; returns what became of it. A refused report is
    /// logged and returned; other errors (the connection) are the caller's.
    pub async fn process(&mut self, step: &Step) -> Result<Report> {
        let Some(executor) = self.executors.get(&step.step_type).cloned() else {
            return Err(Error::Unexpected(format!("no executor for {:?}", step.step_type)));
        };
        let outcome = process_run(executor, step).await;
        if let Err(error) = &outcome {
            log::warn!(
                "step {} ({:?}, attempt {}) failed: {error}",
                step.transaction_id,
                step.phase,
                step.attempt
            );
        }
        let report = process_report_of(step.phase, &outcome);
        match self.process_send(step, outcome).await {
            Some(sent) => process_refusal(step, report, sent),
            None => Ok(report),
        }
    }

    /// Sends the report an outcome makes, or None when it makes none (a compensation that may
    /// succeed later: its lease runs out and it is claimed again).
    async fn process_send(
        &mut self,
        step: &Step,
        outcome: Result<Value, StepError>,
    ) -> Option<Result<u64>> {
        let (id, lease) = (&step.transaction_id, &Some(step.lease_token));
        let sent = match (step.phase, outcome) {
            (Phase::Execute, Ok(result)) => {
                let sql = "SELECT cte_ctel.cte_complete_transaction($1, $2, $3)";
                self.send(sql, &[id, &result_of(result), lease]).await
            }
            (Phase::Compensate, Ok(result)) => {
                let sql = "SELECT cte_ctel.cte_complete_compensation($1, $2, $3)";
                self.send(sql, &[id, &result_of(result), lease]).await
            }
            (Phase::Execute, Err(error)) => {
                let sql = "SELECT cte_ctel.cte_fail_transaction($1, $2, $3, $4)";
                let retryable = error.is_retryable();
                self.send(sql, &[id, &error.to_string(), &retryable, lease]).await
            }
            (Phase::Compensate, Err(error @ StepError::Permanent(_))) => {
                let sql = "SELECT cte_ctel.cte_fail_compensation($1, $2, $3)";
                self.send(sql, &[id, &error.to_string(), lease]).await
            }
            (Phase::Compensate, Err(StepError::Retryable(_) | StepError::Unknown(_))) => {
                return None;
            }
        };
        Some(sent)
    }

    async fn send(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        Ok(self.client().await?.execute(sql, params).await?)
    }
}

/// A result to keep: a null result is no result (SQL NULL, not the JSON `null`).
fn result_of(result: Value) -> Option<Value> {
    (!result.is_null()).then_some(result)
}

/// Runs the executor on a task of its own, so a panic is an unknown outcome, not the worker's.
async fn process_run(executor: Arc<dyn DynExecutor>, step: &Step) -> Result<Value, StepError> {
    let owned = step.clone();
    let task = tokio::spawn(async move { executor.work(&owned).await });
    match task.await {
        Ok(outcome) => outcome,
        Err(error) => Err(StepError::Unknown(format!("the executor did not finish: {error}"))),
    }
}

/// What a step's outcome reports, when the report is accepted.
fn process_report_of(phase: Phase, outcome: &Result<Value, StepError>) -> Report {
    match (phase, outcome) {
        (Phase::Execute, Ok(_)) => Report::Completed,
        (Phase::Execute, Err(StepError::Permanent(_))) => Report::Failed,
        (Phase::Execute, Err(StepError::Retryable(_) | StepError::Unknown(_))) => Report::Retry,
        (Phase::Compensate, Ok(_)) => Report::Compensated,
        (Phase::Compensate, Err(StepError::Permanent(_))) => Report::CompensationFailed,
        (Phase::Compensate, Err(StepError::Retryable(_) | StepError::Unknown(_))) => {
            Report::Released
        }
    }
}

/// A report's answer: `lease_expired` is another worker's step now; another refusal is logged.
fn process_refusal(step: &Step, report: Report, sent: Result<u64>) -> Result<Report> {
    match sent {
        Ok(_) => Ok(report),
        Err(Error::Refused(refused)) if refused.reason == Reason::LeaseExpired => {
            log::warn!(
                "step {} was taken over, its report dropped: {refused}",
                step.transaction_id
            );
            Ok(Report::LeaseLost)
        }
        Err(Error::Refused(refused)) => {
            log::error!("report of step {} refused: {refused}", step.transaction_id);
            Ok(Report::Refused)
        }
        Err(error) => Err(error),
    }
}

fn step_of(row: &Row) -> Result<Step> {
    let phase: String = row.try_get(3)?;
    let phase = match phase.as_str() {
        "execute" => Phase::Execute,
        "compensate" => Phase::Compensate,
        other => return Err(Error::Unexpected(format!("phase {other:?}"))),
    };
    Ok(Step {
        transaction_id: row.try_get(0)?,
        event_id: row.try_get(1)?,
        step_type: row.try_get(2)?,
        phase,
        payload: row.try_get(4)?,
        result: row.try_get(5)?,
        attempt: row.try_get(6)?,
        lease_token: row.try_get(7)?,
    })
}
