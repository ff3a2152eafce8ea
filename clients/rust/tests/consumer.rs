//! Named consumers: the changes after the cursor come again until acknowledged, and the
//! acknowledgement commits with the handler's own writes (a handler that fails, or a connection
//! lost before the commit, leaves the change to be seen again; one acknowledged is never seen
//! again). Maintenance passes sequence the feed where no server worker does.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{maintenance, money, suffix, wait_until, wallets, USD};
use cte_ctel_client::{connect_listening, Change, Consumer, Error, Ledger, Reason};
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

async fn changes_of(consumer: &Consumer, client: &Client, event: Uuid) -> Vec<Change> {
    let changes = consumer.next(client, 1000).await.unwrap();
    changes.into_iter().filter(|change| change.event_id == Some(event)).collect()
}

/// Positions a handler wrote to the temporary table `handled` of its connection.
async fn handled(client: &Client) -> Vec<i64> {
    let rows = client.query("SELECT position FROM handled ORDER BY 1", &[]).await.unwrap();
    rows.iter().map(|row| row.get(0)).collect()
}

/// The handler: records the change in `handled`, in the batch's transaction.
async fn record(transaction: &Transaction<'_>, change: &Change) -> Result<(), Error> {
    let sql = "INSERT INTO handled VALUES ($1) ON CONFLICT DO NOTHING";
    transaction.execute(sql, &[&change.position]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_comes_again_until_acknowledged_in_the_handlers_transaction() {
    let Some(env) = common::env("a_change_comes_again_until_acknowledged") else { return };
    let (admin, app, name) = (env.admin().await, env.app().await, suffix());
    let accounts = wallets(&app, &name, &[("alice", "0")]).await;
    let mut feed = env.app().await;
    let consumer_name = format!("rs-consumer-{name}");
    let mut consumer = Consumer::open(&feed, &consumer_name, None).await.unwrap();
    let key = format!("dep-{name}");
    let ledger = Ledger::new(&app);
    let event = ledger.deposit(&accounts[0], money("4.20"), USD, Some(&key)).await.unwrap();
    let mut seen = Vec::new();
    wait_until(&admin, "the deposit's changes", async || {
        seen = changes_of(&consumer, &feed, event).await;
        seen.iter().any(|change| change.new_status.as_deref() == Some("completed"))
    })
    .await;
    let amounts: Vec<_> =
        seen.iter().filter(|c| c.kind == "transaction").map(|c| c.amount).collect();
    assert!(
        !amounts.is_empty() && amounts.iter().all(|a| *a == Some(money("4.20"))),
        "{amounts:?}"
    );
    let last = seen.last().unwrap().position;

    // A handler that fails on the event's last change: its writes and the ack roll back.
    feed.batch_execute("CREATE TEMP TABLE handled (position bigint PRIMARY KEY)").await.unwrap();
    let failed = consumer
        .run_batch(&mut feed, 1000, async |transaction: &Transaction<'_>, change: &Change| {
            record(transaction, change).await?;
            match change.position == last {
                true => Err(Error::Unexpected("the handler crashed".into())),
                false => Ok(()),
            }
        })
        .await;
    assert!(matches!(failed, Err(Error::Unexpected(_))), "{failed:?}");
    assert_eq!(handled(&feed).await, Vec::<i64>::new(), "the handler's writes rolled back");
    assert_eq!(changes_of(&consumer, &feed, event).await, seen, "nothing acknowledged");

    // Acknowledged, then the connection is lost before the commit: seen again.
    feed.batch_execute("BEGIN").await.unwrap();
    consumer.ack(&feed, last).await.unwrap();
    drop(feed);
    let mut feed = env.app().await;
    let mut consumer = Consumer::open(&feed, &consumer_name, None).await.unwrap(); // a replay
    assert!(consumer.cursor() < last, "the cursor did not move");
    assert_eq!(changes_of(&consumer, &feed, event).await, seen);

    feed.batch_execute("CREATE TEMP TABLE handled (position bigint PRIMARY KEY)").await.unwrap();
    while consumer.run_batch(&mut feed, 2, record).await.unwrap() > 0 {}
    let positions: Vec<i64> = seen.iter().map(|change| change.position).collect();
    let written = handled(&feed).await;
    assert!(positions.iter().all(|p| written.contains(p)), "{positions:?} in {written:?}");
    assert!(changes_of(&consumer, &feed, event).await.is_empty(), "acknowledged: never again");
    let again = env.app().await;
    let reopened = Consumer::open(&again, &consumer_name, None).await.unwrap();
    assert!(reopened.cursor() >= last);
    assert!(changes_of(&reopened, &again, event).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_is_woken_by_notify_and_acks_what_it_handled() {
    let Some(env) = common::env("run_is_woken_by_notify_and_acks_what_it_handled") else { return };
    let (admin, app, name) = (env.admin().await, env.app().await, suffix());
    let accounts = wallets(&app, &name, &[("bob", "0")]).await;
    let (mut feed, mut wakeups) = connect_listening(&env.app_dsn.parse().unwrap()).await.unwrap();
    let mut consumer = Consumer::open(&feed, &format!("rs-runner-{name}"), None).await.unwrap();
    let handled: Arc<Mutex<Vec<Change>>> = Arc::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let seen = handled.clone();
    let running = consumer.run(
        &mut feed,
        &mut wakeups,
        100,
        async |_: &Transaction<'_>, change: &Change| -> Result<(), Error> {
            seen.lock().unwrap().push(change.clone());
            Ok(())
        },
        stopped,
        Duration::from_millis(200),
    );
    let driving = async {
        let event =
            Ledger::new(&app).deposit(&accounts[0], money("1.50"), USD, None).await.unwrap();
        wait_until(&admin, "the consumer to see the deposit", async || {
            let handled = handled.lock().unwrap();
            handled.iter().any(|c| {
                c.event_id == Some(event)
                    && c.kind == "event"
                    && c.new_status.as_deref() == Some("completed")
            })
        })
        .await;
        stop.send(true).unwrap();
        event
    };
    let (ran, event) = tokio::join!(running, driving);
    ran.unwrap();
    let handled = handled.lock().unwrap().clone();
    let positions: Vec<i64> = handled.iter().map(|change| change.position).collect();
    let mut sorted = positions.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(positions, sorted, "in order, each once");
    assert!(changes_of(&consumer, &feed, event).await.is_empty(), "all acknowledged");
}

#[tokio::test]
async fn creating_a_consumer_again_with_another_start_is_a_conflict() {
    let Some(env) = common::env("creating_a_consumer_again_with_another_start") else { return };
    let (admin, app, name) = (env.admin().await, env.app().await, suffix());
    wallets(&app, &name, &[("carol", "1")]).await; // so the feed has a position 1
    let head = async || {
        let row = app.query_one("SELECT cte_ctel.cte_feed_head()", &[]).await.unwrap();
        row.get::<_, i64>(0) >= 1
    };
    wait_until(&admin, "a sequenced change", head).await;
    maintenance(&admin).await;
    let consumer_name = format!("rs-start-{name}");
    Consumer::open(&app, &consumer_name, Some(0)).await.unwrap();
    assert_eq!(Consumer::open(&app, &consumer_name, None).await.unwrap().cursor(), 0, "a replay");
    let conflict = Consumer::open(&app, &consumer_name, Some(1)).await;
    assert!(conflict.is_err_and(|error| error.is_refused(&Reason::IdempotencyConflict)));
    let blank = Consumer::open(&app, "   ", None).await;
    assert!(blank.is_err_and(|error| error.is_refused(&Reason::IdentifierInvalid)));
}
