//! The heartbeat: a task that extends the leases a worker holds, every third of a lease, on a
//! connection of its own, so a step that takes longer than its lease is not handed to another
//! worker while its executor runs. An extension refused with `lease_expired` means the step was
//! taken over: the heartbeat forgets it (the worker's own report will be refused as well).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config};
use uuid::Uuid;

use crate::connection::connect;
use crate::error::{Error, Result};
use crate::ledger::milliseconds;
use crate::reason::Reason;

/// Leases held: transaction id -> lease token. Locked for a whole round of extensions, so a
/// step dropped after its report is never extended after that.
type Held = Arc<Mutex<BTreeMap<Uuid, Uuid>>>;

/// A running heartbeat; [`Heartbeat::stop`] ends it.
pub(crate) struct Heartbeat {
    held: Held,
    stopping: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Heartbeat {
    /// Starts extending the leases in `held` by `lease`, connecting with `config`.
    pub(crate) fn start(config: Config, lease: Duration, held: BTreeMap<Uuid, Uuid>) -> Heartbeat {
        let held = Arc::new(Mutex::new(held));
        let (stopping, stopped) = watch::channel(false);
        let task = tokio::spawn(beat(config, lease, held.clone(), stopped));
        Heartbeat { held, stopping, task }
    }

    /// Stops extending the lease of `transaction_id` (reported, or given up).
    pub(crate) async fn drop_step(&self, transaction_id: Uuid) {
        self.held.lock().await.remove(&transaction_id);
    }

    /// Ends the task and waits for it.
    pub(crate) async fn stop(self) {
        // The task may have ended already (it never does on its own); either way it is over.
        if self.stopping.send(true).is_err() {
            log::debug!("heartbeat had already ended");
        }
        if let Err(error) = self.task.await {
            log::error!("heartbeat task failed: {error}");
        }
    }
}

async fn beat(config: Config, lease: Duration, held: Held, mut stopped: watch::Receiver<bool>) {
    let interval = lease / 3;
    let mut client: Option<Client> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopped.changed() => return,
        }
        if client.as_ref().is_none_or(Client::is_closed) {
            client = match connect(&config).await {
                Ok(connected) => Some(connected),
                Err(error) => {
                    log::error!("heartbeat cannot connect, leases not extended: {error}");
                    continue;
                }
            };
        }
        let Some(connected) = client.as_ref() else { continue };
        let mut held = held.lock().await;
        if let Err(error) = beat_extend_all(connected, lease, &mut held).await {
            log::error!("heartbeat round failed: {error}");
        }
    }
}

async fn beat_extend_all(
    client: &Client,
    lease: Duration,
    held: &mut BTreeMap<Uuid, Uuid>,
) -> Result<()> {
    let lease_ms = milliseconds(lease)?;
    let sql = "SELECT cte_ctel.cte_extend_lease($1, $2, $3::bigint * interval '1 millisecond')";
    let mut lost = Vec::new();
    for (transaction_id, token) in held.iter() {
        match client.execute(sql, &[transaction_id, token, &lease_ms]).await.map_err(Error::from) {
            Ok(_) => {}
            Err(Error::Refused(refused)) => {
                if refused.reason == Reason::LeaseExpired {
                    log::warn!("lease on {transaction_id} lost: {refused}");
                } else {
                    log::error!("lease on {transaction_id} not extended: {refused}");
                }
                lost.push(*transaction_id);
            }
            Err(error) => return Err(error),
        }
    }
    for transaction_id in lost {
        held.remove(&transaction_id);
    }
    Ok(())
}
