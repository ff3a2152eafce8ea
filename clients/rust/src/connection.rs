//! Opening connections the client's way: the driver's connection task spawned on the running
//! tokio runtime, its end logged, and (for a consumer) its notifications forwarded.

use std::future::poll_fn;

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Notification};

use crate::error::Result;

/// A client connected to `config`, its connection driven by a spawned task.
pub async fn connect(config: &Config) -> Result<Client> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            log::error!("cte_ctel connection ended: {error}");
        }
    });
    Ok(client)
}

/// `NOTIFY`s received on a connection made by [`connect_listening`]: each one only a wake-up.
#[derive(Debug)]
pub struct Wakeups {
    receiver: mpsc::UnboundedReceiver<Notification>,
}

impl Wakeups {
    /// The next notification, or None once the connection has ended.
    pub async fn next(&mut self) -> Option<Notification> {
        self.receiver.recv().await
    }

    /// Forgets the notifications already received (one batch reads what they announced).
    pub fn clear(&mut self) {
        while self.receiver.try_recv().is_ok() {}
    }
}

/// As [`connect`], and the notifications the connection receives (after a `LISTEN` on it).
pub async fn connect_listening(config: &Config) -> Result<(Client, Wakeups)> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = poll_fn(|context| connection.poll_message(context)).await {
            match message {
                Ok(AsyncMessage::Notification(notification)) => {
                    // A receiver that is gone wants no wake-ups; the client still needs driving.
                    if sender.send(notification).is_err() {
                        log::debug!("cte_ctel notification dropped: nobody listens");
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    log::error!("cte_ctel connection ended: {error}");
                    break;
                }
            }
        }
    });
    Ok((client, Wakeups { receiver }))
}
