//! The bank and the application's payout executor: what runs in the payout worker processes.
//!
//! The bank is a stand-in for a payout API, kept in a folder so that every worker process sees
//! the same one: each call is logged, and a payout is made once per idempotency key (a second
//! call with the key returns the first payout), as a real payout API does with its
//! Idempotency-Key header. The executor passes the step's `transaction_id` as that key: a step
//! executed twice (its first worker killed after the bank paid) pays once.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cte_ctel_client::{money, Executor, Step, StepError, StepResult, Worker};
use serde_json::json;
use tokio::sync::watch;

use crate::Outcome;

/// The step type the application hosts (examples/setup.sql registers it).
pub const PAYOUT_TYPE: &str = "bank.payout";
/// How long a claim holds a step: a killed worker's step goes to another after this.
pub const LEASE: Duration = Duration::from_secs(2);
/// The IBAN the bank refuses for good (an account closed).
pub const IBAN_CLOSED: &str = "closed";

/// The bank's folder.
pub struct Bank {
    folder: PathBuf,
}

impl Bank {
    /// The bank kept in `folder` (which exists).
    pub fn new(folder: &Path) -> Bank {
        Bank { folder: folder.to_owned() }
    }

    /// Pays `amount` to `iban` once per `key`; returns the payout's reference (the first one's
    /// on a replay). A closed account is a permanent refusal.
    pub fn pay(&self, key: &str, amount: &str, iban: &str) -> StepResult {
        let mut log = OpenOptions::new().append(true).create(true).open(self.calls_log())?;
        writeln!(log, "{key}")?;
        if iban == IBAN_CLOSED {
            return Err(StepError::permanent("the bank rejected the payout: account closed"));
        }
        let paid = self.folder.join(format!("paid-{key}"));
        match OpenOptions::new().write(true).create_new(true).open(&paid) {
            Ok(mut file) => {
                // The process id says which worker process made the payout.
                let reference =
                    format!("BANK-{}-{}", std::process::id(), key.get(..8).unwrap_or(key));
                writeln!(file, "{reference} {amount}")?;
                Ok(json!({ "bank_reference": reference }))
            }
            Err(error) if error.kind() == ErrorKind::AlreadyExists => {
                Ok(json!({ "bank_reference": self.reference(&paid)? }))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// How many times the bank was called with `key`.
    pub fn calls(&self, key: &str) -> std::io::Result<usize> {
        match fs::read_to_string(self.calls_log()) {
            Ok(log) => Ok(log.lines().filter(|line| *line == key).count()),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(0),
            Err(error) => Err(error),
        }
    }

    /// The keys the bank made a payout for, in order.
    pub fn payouts(&self) -> std::io::Result<Vec<String>> {
        let mut keys = Vec::new();
        for entry in fs::read_dir(&self.folder)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(key) = name.strip_prefix("paid-") {
                keys.push(key.to_owned());
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// The reference of the payout made for `key`.
    pub fn reference_of(&self, key: &str) -> std::io::Result<String> {
        self.reference(&self.folder.join(format!("paid-{key}")))
    }

    fn reference(&self, paid: &Path) -> std::io::Result<String> {
        let text = fs::read_to_string(paid)?;
        match text.split_whitespace().next() {
            Some(reference) => Ok(reference.to_owned()),
            None => Err(std::io::Error::other(format!("{} is empty", paid.display()))),
        }
    }

    fn calls_log(&self) -> PathBuf {
        self.folder.join("calls.log")
    }
}

/// Executes `bank.payout` steps. At least once: the step's transaction_id is the bank's
/// idempotency key, so a step executed twice pays once. Nothing to compensate: a payout the
/// bank refused was never made.
struct Payout {
    bank: Bank,
    hang_after_paying: bool,
}

impl Executor for Payout {
    async fn execute(&self, step: &Step) -> StepResult {
        let amount = money::field(&step.payload, "amount")?;
        let Some(iban) = step.payload["iban"].as_str() else {
            return Err(StepError::permanent("the payout names no iban"));
        };
        let paid = self.bank.pay(&step.transaction_id.to_string(), &amount.to_string(), iban)?;
        if self.hang_after_paying {
            // The process stalls here, the bank paid and nothing reported, until it is killed.
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Ok(paid)
    }
}

/// The payout worker process (`--payout-worker CONNINFO NAME FOLDER MODE`): claims and executes
/// `bank.payout` steps until it is killed. MODE `hang-after-paying` stalls after the bank paid.
/// It exits as soon as its standard input closes: the example holds the other end, so a worker
/// never outlives the example, however the example ends.
pub async fn payout_worker(conninfo: &str, name: &str, folder: &str, mode: &str) -> Outcome {
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        // EOF or an error: either way the example is gone.
        if let Err(error) = std::io::stdin().read_to_end(&mut sink) {
            eprintln!("payout worker: stdin: {error}");
        }
        std::process::exit(0);
    });
    let hang_after_paying = match mode {
        "serve" => false,
        "hang-after-paying" => true,
        other => return Err(format!("unknown mode {other:?}").into()),
    };
    let executor = Payout { bank: Bank::new(Path::new(folder)), hang_after_paying };
    let mut worker = Worker::new(conninfo, name)?.host(PAYOUT_TYPE, executor).lease(LEASE);
    let (_stop, stopped) = watch::channel(false); // never set: the worker runs until killed
    worker.run_forever(stopped, Duration::from_millis(200)).await;
    Ok(())
}
