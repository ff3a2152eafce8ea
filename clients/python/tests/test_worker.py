"""Executors in the application: a Worker claims steps of a hosted type under leases, runs the
executor and reports with the lease token. Shown here: a step done end to end; two workers never
hold one step; a lease that runs out hands the step to another worker and refuses the stale
worker's report; a worker killed mid-step leaves the step to another, and the ledger posts once.
Leases are short (1 second, the least the server takes) and maintenance passes are run by hand,
so the suite does not depend on the server's own worker serving this database."""

import datetime
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import cte_ctel
from conftest import maintenance, wait_until

ONE_SECOND = datetime.timedelta(seconds=1)


class Recording(cte_ctel.Executor):
    """Records each call (thread-safe) and returns the charge it "made", keyed by the step."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = []
        self.lock = threading.Lock()
        self.delay = delay

    def execute(self, step):
        time.sleep(self.delay)
        with self.lock:
            self.calls.append((threading.current_thread().name, step))
        return {"charge_id": f"ch_{step.transaction_id}", "amount": step.payload["amount"]}


def charge_then_pay(ledger, hosted_type, accounts, amount, key=None):
    """An event: the PSP charge (a hosted step), then the payout to the seller."""
    return ledger.run_event("order", [
        {"name": "charge", "type": hosted_type, "payload": {"amount": amount, "currency": "USD"},
         "max_attempts": 5},
        {"name": "pay", "type": "wallet.transfer",
         "payload": {"source_account_id": accounts["escrow"],
                     "destination_account_id": accounts["seller"], "amount": amount,
                     "currency": "USD"}},
    ], idempotency_key=key)


def test_worker_executes_a_hosted_step_end_to_end(ledger, app_dsn, hosted_type, wallets):
    accounts = wallets(escrow=Decimal("100"), seller=0)
    run = charge_then_pay(ledger, hosted_type, accounts, Decimal("12.34"))
    assert run.status == "waiting"
    executor = Recording()
    worker = cte_ctel.Worker(app_dsn, {hosted_type: executor}, "py-worker-a")
    try:
        assert worker.run_once() == 1
    finally:
        worker.close()
    (_, step), = executor.calls
    assert (step.event_id, step.type, step.phase, step.attempt) == (
        run.event_id, hosted_type, "execute", 1)
    assert step.payload == {"amount": "12.34", "currency": "USD"}
    assert ledger.event_status(run.event_id) == "completed"
    assert ledger.balance(accounts["seller"], "USD") == Decimal("12.34")
    result = ledger.conn.execute("SELECT result FROM cte_ctel.cte_transactions WHERE id = %s",
                                 (step.transaction_id,)).fetchone()[0]
    assert result["charge_id"] == f"ch_{step.transaction_id}"


def test_two_workers_never_hold_the_same_step(ledger, app_dsn, hosted_type, wallets):
    accounts = wallets(escrow=Decimal("100"), seller=0)
    events = [charge_then_pay(ledger, hosted_type, accounts, Decimal("1")).event_id
              for _ in range(12)]
    executor = Recording(delay=0.02)
    workers = [cte_ctel.Worker(app_dsn, {hosted_type: executor}, f"py-worker-{n}", limit=3)
               for n in range(2)]

    def drain(worker):
        while worker.run_once():
            pass

    threads = [threading.Thread(target=drain, args=(w,), name=w.worker_name) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for worker in workers:
        worker.close()
    executed = Counter(step.transaction_id for _, step in executor.calls)
    assert len(executed) == 12 and set(executed.values()) == {1}, "each step ran once"
    assert {name for name, _ in executor.calls} == {"py-worker-0", "py-worker-1"}
    assert {ledger.event_status(e) for e in events} == {"completed"}
    assert ledger.balance(accounts["seller"], "USD") == Decimal("12.00")


def test_an_expired_lease_goes_to_another_worker_and_the_stale_report_is_refused(
        ledger, app_dsn, admin, hosted_type, wallets):
    accounts = wallets(escrow=Decimal("100"), seller=0)
    run = charge_then_pay(ledger, hosted_type, accounts, Decimal("5"))
    executor = Recording()
    stale = cte_ctel.Worker(app_dsn, {hosted_type: executor}, "py-stale", lease=ONE_SECOND,
                            heartbeat=False)
    fresh = cte_ctel.Worker(app_dsn, {hosted_type: executor}, "py-fresh")
    try:
        (held,) = stale.claim()
        assert fresh.claim() == [], "a held lease is not handed out twice"
        time.sleep(1.1)  # the stale worker stalls past its lease
        wait_until(lambda: fresh.run_once() == 1, admin, what="the step claimable again")
        assert stale.process(held) == "lease_lost"
    finally:
        stale.close()
        fresh.close()
    attempts = sorted(step.attempt for _, step in executor.calls)
    assert attempts == [1, 2]  # the stale worker ran attempt 1; its report did not count
    assert ledger.event_status(run.event_id) == "completed"
    assert ledger.balance(accounts["seller"], "USD") == Decimal("5.00")


def test_heartbeat_keeps_a_long_step_from_being_taken_over(
        ledger, app_dsn, admin, hosted_type, wallets):
    accounts = wallets(escrow=Decimal("100"), seller=0)
    run = charge_then_pay(ledger, hosted_type, accounts, Decimal("3"))
    other = cte_ctel.Worker(app_dsn, {hosted_type: Recording()}, "py-other")

    class Slow(Recording):
        def execute(self, step):
            for _ in range(5):  # 2.5 s of work under a 1 s lease
                time.sleep(0.5)
                maintenance(admin)
                assert other.claim() == [], "the step is still this worker's"
            return super().execute(step)

    worker = cte_ctel.Worker(app_dsn, {hosted_type: Slow()}, "py-slow", lease=ONE_SECOND)
    try:
        assert worker.run_once() == 1
    finally:
        worker.close()
        other.close()
    assert ledger.event_status(run.event_id) == "completed"


def test_a_hung_step_holds_only_itself_not_the_rest_of_its_batch(
        ledger, app_dsn, admin, hosted_type, wallets):
    accounts = wallets(escrow=Decimal("100"), seller=0)
    events = [charge_then_pay(ledger, hosted_type, accounts, Decimal("2")).event_id
              for _ in range(2)]
    started, release = threading.Event(), threading.Event()

    class HangsOnFirst(Recording):
        def execute(self, step):
            if not started.is_set():
                started.set()
                assert release.wait(20), "the test releases the hung step"
            return super().execute(step)

    hung = HangsOnFirst()
    batch = cte_ctel.Worker(app_dsn, {hosted_type: hung}, "py-hung", lease=ONE_SECOND, limit=2)
    other_executor = Recording()
    other = cte_ctel.Worker(app_dsn, {hosted_type: other_executor}, "py-free")
    thread = threading.Thread(target=batch.run_once, name="py-hung")
    thread.start()
    try:
        assert started.wait(10), "the batch worker claimed both steps and hangs on the first"
        # 0.3.0 before the fix: the heartbeat kept both leases, so the second step never came.
        wait_until(lambda: other.run_once() == 1, admin,
                   what="the step queued behind the hung one, for another worker")
    finally:
        release.set()
        thread.join()
        batch.close()
        other.close()
    by_hung = [step.transaction_id for _, step in hung.calls]
    by_other = [step.transaction_id for _, step in other_executor.calls]
    assert len(by_hung) == 1 and len(by_other) == 1 and set(by_hung) != set(by_other), \
        "each step ran once: the hung worker skipped the step it had lost"
    assert {ledger.event_status(e) for e in events} == {"completed"}
    assert ledger.balance(accounts["seller"], "USD") == Decimal("4.00")


def test_executor_failures_are_reported(ledger, app_dsn, admin, hosted_type, wallets):
    accounts = wallets(escrow=Decimal("100"), seller=0)
    retried = charge_then_pay(ledger, hosted_type, accounts, Decimal("1"))
    declined = charge_then_pay(ledger, hosted_type, accounts, Decimal("2"))

    class Flaky(cte_ctel.Executor):
        def __init__(self):
            self.seen = Counter()

        def execute(self, step):
            self.seen[step.event_id] += 1
            if step.event_id == declined.event_id:
                raise cte_ctel.Permanent("card declined")
            if self.seen[step.event_id] == 1:
                raise cte_ctel.Retryable("PSP timed out")
            return None

    worker = cte_ctel.Worker(app_dsn, {hosted_type: Flaky()}, "py-flaky")
    try:
        assert worker.run_once() == 2
        wait_until(lambda: worker.run_once() == 1, admin, what="the retry")
    finally:
        worker.close()
    assert ledger.event_status(retried.event_id) == "completed"
    assert ledger.event_status(declined.event_id) == "compensated"
    assert ledger.balance(accounts["seller"], "USD") == Decimal("1.00")


def test_a_worker_killed_mid_step_is_replaced_and_the_ledger_posts_once(
        ledger, app_dsn, admin, hosted_type, wallets, tmp_path):
    accounts = wallets(escrow=Decimal("100"), seller=0)
    run = charge_then_pay(ledger, hosted_type, accounts, Decimal("7.77"))
    started = tmp_path / "started"
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("worker_process.py")), app_dsn,
         hosted_type, str(started)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    try:
        deadline = time.monotonic() + 10
        while not started.exists():
            assert child.poll() is None and time.monotonic() < deadline, "the worker started"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)  # mid-step: the charge is made, the report is not
    finally:
        child.wait()
    first_attempt = started.read_text()
    executor = Recording()
    worker = cte_ctel.Worker(app_dsn, {hosted_type: executor}, "py-restarted", lease=ONE_SECOND)
    try:
        wait_until(lambda: worker.run_once() == 1, admin, what="the orphaned step")
    finally:
        worker.close()
    (_, step), = executor.calls
    assert str(step.transaction_id) == first_attempt, "the same step, the same idempotency key"
    assert step.attempt == 2
    assert ledger.event_status(run.event_id) == "completed"
    assert ledger.balance(accounts["seller"], "USD") == Decimal("7.77"), "posted once"
    assert ledger.balance(accounts["escrow"], "USD") == Decimal("92.23")
