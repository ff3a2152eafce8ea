//! The heartbeat: a task that extends the lease of the step the worker is running now, every
//! third of a lease, on a connection of its own, so a step that takes longer than its lease is
//! not handed to another worker while its executor runs. Only that step's: the steps of a batch
//! waiting their turn are not extended (the worker renews each when its turn comes), so an
//! executor that hangs holds its own step and nothing else. An extension refused with
//! `lease_expired` means the step was taken over: the heartbeat forgets it (the worker's own
//! report will be refused as well).

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

/// The lease extended: transaction id -> lease token of the step running now (at most one).
/// Locked for a whole round of extensions, so a step dropped after its report is never extended
/// after that.
type Held = Arc<Mutex<BTreeMap<Uuid, Uuid>>>;

/// A running heartbeat; [`Heartbeat::stop`] ends it.
pub(crate) struct Heartbeat {
    held: Held,
    stopping: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Heartbeat {
    /// Starts a heartbeat extending leases by `lease`, connecting with `config`; it extends
    /// none until [`Heartbeat::hold`] names the step running.
    pub(crate) fn start(config: Config, lease: Duration) -> Heartbeat {
        let held = Arc::new(Mutex::new(BTreeMap::new()));
        let (stopping, stopped) = watch::channel(false);
        let task = tokio::spawn(beat(config, lease, held.clone(), stopped));
        Heartbeat { held, stopping, task }
    }

    /// Extends the lease of `transaction_id`, the step starting now, from the next round on.
    pub(crate) async fn hold(&self, transaction_id: Uuid, lease_token: Uuid) {
        self.held.lock().await.insert(transaction_id, lease_token);
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
    let mut lost = Vec::new();
    for (transaction_id, token) in held.iter() {
        match extend_lease(client, *transaction_id, *token, lease).await {
            Ok(()) => {}
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

/// Extends the lease `lease_token` on `transaction_id` by `lease` (`cte_extend_lease`); refused
/// with `lease_expired` when it no longer holds.
pub(crate) async fn extend_lease(
    client: &Client,
    transaction_id: Uuid,
    lease_token: Uuid,
    lease: Duration,
) -> Result<()> {
    let lease_ms = milliseconds(lease)?;
    let sql = "SELECT cte_ctel.cte_extend_lease($1, $2, $3::bigint * interval '1 millisecond')";
    client.execute(sql, &[&transaction_id, &lease_token, &lease_ms]).await?;
    Ok(())
}
