//! `Consumer`: a named consumer of the change feed, its cursor kept by the extension.
//!
//! [`Consumer::next`] reads the changes after the cursor (the same ones again until
//! acknowledged); [`Consumer::ack`] moves the cursor in the caller's transaction.
//! [`Consumer::run_batch`] does both in one transaction, handing the handler that transaction,
//! so the handler's own writes and the acknowledgement commit together: a crash between
//! processing and acknowledgement rolls both back, and the changes are seen again
//! (at-least-once, as for executors: make the handler idempotent, e.g. by `position`).

use std::time::{Duration, SystemTime};

use rust_decimal::Decimal;
use serde_json::Value;
use tokio::sync::watch;
use tokio_postgres::{Client, GenericClient, Row, Transaction};
use uuid::Uuid;

use crate::connection::Wakeups;
use crate::error::{Error, Result};

/// The channel the ledger notifies when it gives new positions.
pub const CHANNEL: &str = "cte_events";

const COLUMNS: &str = "position, at, kind, event_id, event_name, transaction_id, \
                       transaction_type, lien_id, account_id, old_status, new_status, amount, \
                       currency, reference, actor, reason, metadata";

/// One row of the change feed (`cte_changes`); see docs/sql-reference.md, "The change feed".
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)] // The columns of cte_changes, documented there.
pub struct Change {
    pub position: i64,
    pub at: SystemTime,
    pub kind: String,
    pub event_id: Option<Uuid>,
    pub event_name: Option<String>,
    pub transaction_id: Option<Uuid>,
    pub transaction_type: Option<String>,
    pub lien_id: Option<Uuid>,
    pub account_id: Option<String>,
    pub old_status: Option<String>,
    pub new_status: Option<String>,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub reference: Option<String>,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub metadata: Option<Value>,
}

fn change_of(row: &Row) -> Result<Change> {
    Ok(Change {
        position: row.try_get(0)?,
        at: row.try_get(1)?,
        kind: row.try_get(2)?,
        event_id: row.try_get(3)?,
        event_name: row.try_get(4)?,
        transaction_id: row.try_get(5)?,
        transaction_type: row.try_get(6)?,
        lien_id: row.try_get(7)?,
        account_id: row.try_get(8)?,
        old_status: row.try_get(9)?,
        new_status: row.try_get(10)?,
        amount: row.try_get(11)?,
        currency: row.try_get(12)?,
        reference: row.try_get(13)?,
        actor: row.try_get(14)?,
        reason: row.try_get(15)?,
        metadata: row.try_get(16)?,
    })
}

/// The consumer `name`, and its cursor as this client last saw it.
#[derive(Clone, Debug)]
pub struct Consumer {
    name: String,
    cursor: i64,
}

impl Consumer {
    /// The consumer `name`, created if missing (`cte_create_consumer` is a replay when it
    /// exists: its cursor stays where it is). Without `start_after` a new consumer starts at the
    /// newest position now; with it, after that position.
    pub async fn open<C: GenericClient + Sync>(
        client: &C,
        name: &str,
        start_after: Option<i64>,
    ) -> Result<Consumer> {
        let sql = "SELECT cte_ctel.cte_create_consumer($1, $2)";
        let cursor = client.query_one(sql, &[&name, &start_after]).await?.try_get(0)?;
        Ok(Consumer { name: name.to_owned(), cursor })
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cursor as this client last saw it (acknowledged positions are at or before it).
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// Up to `limit` changes after the cursor; the cursor does not move.
    pub async fn next<C: GenericClient + Sync>(
        &self,
        client: &C,
        limit: i32,
    ) -> Result<Vec<Change>> {
        let sql = format!("SELECT {COLUMNS} FROM cte_ctel.cte_consumer_next($1, $2)");
        let rows = client.query(&sql, &[&self.name, &limit]).await?;
        rows.iter().map(change_of).collect()
    }

    /// Moves the cursor forward to `position` in the caller's transaction (an older position
    /// changes nothing); returns the cursor.
    pub async fn ack<C: GenericClient + Sync>(&mut self, client: &C, position: i64) -> Result<i64> {
        let sql = "SELECT cte_ctel.cte_consumer_ack($1, $2)";
        self.cursor = client.query_one(sql, &[&self.name, &position]).await?.try_get(0)?;
        Ok(self.cursor)
    }

    /// One batch in one transaction: each change to `handler` with that transaction, in order,
    /// then the acknowledgement of the last, then the commit. An error from the handler rolls
    /// the batch back, acknowledgement included, and is returned. Returns how many changes
    /// were handled.
    pub async fn run_batch<E, F>(
        &mut self,
        client: &mut Client,
        limit: i32,
        mut handler: F,
    ) -> Result<usize, E>
    where
        E: From<Error>,
        F: AsyncFnMut(&Transaction<'_>, &Change) -> Result<(), E>,
    {
        let transaction = client.transaction().await.map_err(Error::from)?;
        let changes = self.next(&transaction, limit).await?;
        for change in &changes {
            handler(&transaction, change).await?;
        }
        let cursor = self.cursor;
        if let Some(last) = changes.last() {
            self.ack(&transaction, last.position).await?;
        }
        if let Err(error) = transaction.commit().await {
            self.cursor = cursor; // Not acknowledged after all.
            return Err(Error::from(error).into());
        }
        Ok(changes.len())
    }

    /// Batches until `stop` holds true. Between empty batches it waits for `NOTIFY cte_events`
    /// (it runs `LISTEN` on `client`, whose notifications `wakeups` receives: see
    /// [`crate::connect_listening`]) or `poll`, whichever comes first: a notification is only a
    /// wake-up, so it also polls. The handler's errors end the run and are returned.
    pub async fn run<E, F>(
        &mut self,
        client: &mut Client,
        wakeups: &mut Wakeups,
        limit: i32,
        mut handler: F,
        mut stop: watch::Receiver<bool>,
        poll: Duration,
    ) -> Result<(), E>
    where
        E: From<Error>,
        F: AsyncFnMut(&Transaction<'_>, &Change) -> Result<(), E>,
    {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await.map_err(Error::from)?;
        while !*stop.borrow() {
            wakeups.clear();
            if self.run_batch(client, limit, &mut handler).await? == 0 {
                tokio::select! {
                    _ = wakeups.next() => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = stop.changed() => {}
                }
            }
        }
        Ok(())
    }
}
