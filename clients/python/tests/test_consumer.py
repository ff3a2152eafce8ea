"""Named consumers: the changes after the cursor come again until acknowledged, and the
acknowledgement commits with the processing (a handler that fails, or a connection lost before
commit, leaves the change to be seen again; one acknowledged is never seen again). Maintenance
passes sequence the feed where no server worker does."""

import threading
from decimal import Decimal

import psycopg
import pytest

import cte_ctel
from conftest import wait_until


def changes_of(consumer, event_id):
    return [c for c in consumer.next(1000) if c.event_id == event_id]


def test_a_change_comes_again_until_acknowledged_in_the_handlers_transaction(
        app_dsn, ledger, admin, wallets, name):
    accounts = wallets(alice=0)
    feed = psycopg.connect(app_dsn, autocommit=True)
    consumer = cte_ctel.Consumer(feed, f"py-consumer-{name}")
    event = ledger.deposit(accounts["alice"], Decimal("4.20"), "USD", reference=f"dep-{name}")
    seen = wait_until(lambda: changes_of(consumer, event), admin, what="the deposit's changes")
    assert {c.new_status for c in seen} >= {"completed"}
    assert [c.amount for c in seen if c.kind == "transaction"][0] == Decimal("4.20")

    def fail(change):
        raise RuntimeError("the handler crashed")

    with pytest.raises(RuntimeError):
        consumer.run_batch(fail, limit=1000)
    assert changes_of(consumer, event) == seen, "a failed batch acknowledged nothing"

    # Processed and acknowledged, then the connection is lost before commit: seen again.
    feed.execute("BEGIN")
    consumer.ack(seen[-1].position)
    feed.close()
    feed = psycopg.connect(app_dsn, autocommit=True)
    consumer = cte_ctel.Consumer(feed, f"py-consumer-{name}")  # a replay: the same cursor
    assert changes_of(consumer, event) == seen

    handled = []
    while consumer.run_batch(handled.append, limit=2):
        pass
    assert [c for c in handled if c.event_id == event] == seen
    assert changes_of(consumer, event) == [], "acknowledged: never seen again"
    again = cte_ctel.Consumer(psycopg.connect(app_dsn, autocommit=True), f"py-consumer-{name}")
    assert again.cursor >= seen[-1].position and changes_of(again, event) == []
    feed.close()
    again.conn.close()


def test_run_is_woken_by_notify_and_acks_what_it_handled(app_dsn, ledger, admin, wallets, name):
    accounts = wallets(bob=0)
    feed = psycopg.connect(app_dsn)  # not autocommit: run() makes its own transactions
    consumer = cte_ctel.Consumer(feed, f"py-runner-{name}", start_after=None)
    feed.commit()
    stop = threading.Event()
    handled = []
    event = None

    def handler(change):
        handled.append(change)
        if event is not None and change.event_id == event and change.kind == "event" \
                and change.new_status == "completed":
            stop.set()

    thread = threading.Thread(target=consumer.run, args=(handler, stop), kwargs={"poll": 0.2})
    thread.start()
    try:
        event = ledger.deposit(accounts["bob"], Decimal("1.50"), "USD")
        wait_until(stop.is_set, admin, what="the consumer to see the deposit")
    finally:
        stop.set()
        thread.join()
    assert any(c.event_id == event for c in handled)
    assert [c.position for c in handled] == sorted({c.position for c in handled})
    assert changes_of(consumer, event) == []
    feed.close()


def test_creating_a_consumer_again_with_another_start_is_a_conflict(conn, admin, wallets, name):
    wallets(carol=Decimal("1"))  # so the feed has a position 1 to start after
    wait_until(lambda: conn.execute("SELECT cte_ctel.cte_feed_head()").fetchone()[0] >= 1,
               admin, what="a sequenced change")
    cte_ctel.Consumer(conn, f"py-start-{name}", start_after=0)
    assert cte_ctel.Consumer(conn, f"py-start-{name}").cursor == 0  # a replay
    with pytest.raises(cte_ctel.IdempotencyConflict):
        cte_ctel.Consumer(conn, f"py-start-{name}", start_after=1)
    with pytest.raises(cte_ctel.IdentifierInvalid):
        cte_ctel.Consumer(conn, "   ")
