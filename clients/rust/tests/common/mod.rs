//! What the client's integration tests share, against a live server with cte_ctel installed.
//!
//! Two connection strings come from the environment (clients/rust/run-tests.sh sets both):
//! CTE_CTEL_TEST_DSN, an application role that is not a superuser and holds only cte_operator
//! (the API is always called as that role), and CTE_CTEL_TEST_ADMIN_DSN, a superuser, for what
//! an administrator does (registering hosted types, running maintenance passes). Without them a
//! test prints `skipped: ...` and passes, so a plain `cargo test` works; with
//! CTE_CTEL_TEST_REQUIRED set (run-tests.sh sets it) a missing one fails instead. Every name a
//! test makes carries a fresh suffix, so the suite can run again on the same database.
#![allow(dead_code)] // Each test binary uses a part of this module.

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cte_ctel_client::{connect, Error, Ledger, Reason};
use rust_decimal::Decimal;
use tokio_postgres::Client;

pub const USD: &str = "USD";

/// The two connection strings.
pub struct Env {
    pub app_dsn: String,
    pub admin_dsn: String,
}

/// The environment, or None (and a `skipped:` line) when it is not set and not required.
pub fn env(test: &str) -> Option<Env> {
    let app = std::env::var("CTE_CTEL_TEST_DSN").ok().filter(|value| !value.is_empty());
    let admin = std::env::var("CTE_CTEL_TEST_ADMIN_DSN").ok().filter(|value| !value.is_empty());
    match (app, admin) {
        (Some(app_dsn), Some(admin_dsn)) => Some(Env { app_dsn, admin_dsn }),
        (_, _) => {
            let required = std::env::var_os("CTE_CTEL_TEST_REQUIRED").is_some();
            assert!(!required, "CTE_CTEL_TEST_DSN and CTE_CTEL_TEST_ADMIN_DSN must be set");
            println!(
                "skipped: {test}: CTE_CTEL_TEST_DSN or CTE_CTEL_TEST_ADMIN_DSN is not set \
                 (clients/rust/run-tests.sh HOST PORT DATABASE sets both)"
            );
            None
        }
    }
}

pub fn money(text: &str) -> Decimal {
    Decimal::from_str(text).expect("a decimal literal")
}

impl Env {
    /// A superuser connection; maintenance passes retry due steps at once (backoff 0). Makes
    /// the currency USD if it is missing.
    pub async fn admin(&self) -> Client {
        let client = connect(&self.admin_dsn.parse().unwrap()).await.unwrap();
        client.batch_execute("SET cte_ctel.retry_backoff_ms = 0").await.unwrap();
        let made = client.execute("SELECT cte_ctel.cte_create_currency('USD', 2)", &[]).await;
        match made.map_err(Error::from) {
            Ok(_) => {}
            Err(error) if error.is_refused(&Reason::CurrencyExists) => {}
            Err(error) => panic!("USD: {error}"),
        }
        client
    }

    /// The application's connection (rs_app); a retryable failure it reports is tried again at
    /// the next maintenance pass.
    pub async fn app(&self) -> Client {
        let client = connect(&self.app_dsn.parse().unwrap()).await.unwrap();
        client.batch_execute("SET cte_ctel.retry_backoff_ms = 0").await.unwrap();
        client
    }
}

/// A fresh suffix for the names one test makes: the process, the clock and a counter.
pub fn suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let clock = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() % 1_000_000_000;
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{clock:x}{count}", std::process::id())
}

/// Makes USD wallets `<label>-<suffix>`, each funded with the amount given; returns their ids
/// in the same order.
pub async fn wallets(app: &Client, suffix: &str, funded: &[(&str, &str)]) -> Vec<String> {
    let ledger = Ledger::new(app);
    let mut made = Vec::new();
    for (label, amount) in funded {
        let account = format!("rs-{label}-{suffix}");
        ledger.create_account(&account, &[USD]).await.unwrap();
        if money(amount) > Decimal::ZERO {
            ledger.deposit(&account, money(amount), USD, None).await.unwrap();
        }
        made.push(account);
    }
    made
}

/// A step type the application hosts, registered by the administrator for this test.
pub async fn hosted_type(admin: &Client, suffix: &str) -> String {
    let type_name = format!("rs.t{suffix}");
    let ledger = Ledger::new(admin);
    assert!(ledger.register_external_type(&type_name, Some("rust client test")).await.unwrap());
    type_name
}

/// One maintenance pass as the administrator (ends leases that ran out, runs due retries,
/// sequences the feed where no worker does).
pub async fn maintenance(admin: &Client) {
    admin.execute("SELECT cte_ctel.cte_run_maintenance()", &[]).await.unwrap();
}

/// Runs maintenance passes until `condition()` is true, or fails after ten seconds.
pub async fn wait_until(admin: &Client, what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        maintenance(admin).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The event's status.
pub async fn status(app: &Client, event_id: uuid::Uuid) -> String {
    Ledger::new(app).event_status(event_id).await.unwrap().expect("the event exists")
}

/// The balance of `account` in USD.
pub async fn balance(app: &Client, account: &str) -> Decimal {
    Ledger::new(app).balance(account, USD).await.unwrap()
}
