#!/usr/bin/env python3
"""A marketplace on cte_ctel, written with the Python client library (`clients/python`,
psycopg 3), as an application role that is not a superuser (`shop_app`, a member of
`cte_operator` only).

The flows a payments team writes first:
  - a top-up confirmed by the PSP, retried safely after a lost reply (its PSP reference);
  - checkout: a hold on the buyer, a partial capture to the seller, the rest released; a
    cancelled order's hold released;
  - payouts as sagas whose bank step the application itself executes: two payout worker
    processes (`cte_ctel.Worker`) claim the `bank.payout` steps under leases; the first is
    killed with SIGKILL after the bank paid and before it reported, the second takes the step
    over when the lease runs out, the bank (idempotent by the step's id) pays once, and the
    ledger posts the payout once; a payout the bank rejects is compensated (its hold released);
  - an FX conversion with a fee; an end-of-day settlement batch, all or nothing; a two-shipment
    order and a partial refund;
  - a named consumer of the change feed (`cte_ctel.Consumer`): what it has not acknowledged it
    reads again, what it acknowledged never.
Every refusal arrives as its own exception class (`except cte_ctel.InsufficientFunds:`) and
leaves the ledger as it was, which the example checks. Money is Decimal throughout: the library
refuses a float before any SQL is sent.

Usage: marketplace.py CONNINFO    (e.g. "host=/tmp/x port=54330 dbname=cte_worker user=shop_app")
Needs `bank.payout` registered as a hosted step type (examples/setup.sql does it).
Prints "ok - ..." per check and exits non-zero if any failed.
"""

import datetime
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal

try:
    import cte_ctel
except ImportError:  # run from the repository without installing the package
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "clients" / "python"))
    import cte_ctel
import psycopg

PAYOUT_TYPE = "bank.payout"  # a step type the application hosts (setup.sql registers it)
LEASE = datetime.timedelta(seconds=2)

failures = 0
run = uuid.uuid4().hex[:8]  # keeps references unique if the example runs twice


def ok(condition, what):
    global failures
    print(("ok - " if condition else "not ok - ") + what, flush=True)
    if not condition:
        failures += 1


def rows(conn, sql, *args):
    return conn.execute(sql, args).fetchall()


def one(conn, sql, *args):
    row = conn.execute(sql, args).fetchone()
    return row[0] if row else None


def snapshot(conn):
    """Every wallet balance, the journal's length and the active holds: what a refusal must
    leave alone."""
    return (rows(conn, "SELECT account_id, currency, balance, reserved FROM cte_ctel.cte_balances"
                       " ORDER BY 1, 2"),
            one(conn, "SELECT count(*) FROM cte_ctel.cte_entries"),
            one(conn, "SELECT count(*) FROM cte_ctel.cte_liens WHERE status = 'active'"))


def expect_refusal(conn, refusal, what, call):
    """Runs `call`, which must raise `refusal` and change nothing."""
    before = snapshot(conn)
    try:
        with cte_ctel.translated():
            call()
    except cte_ctel.Refused as error:
        ok(isinstance(error, refusal),
           f"{what}: refused as {type(error).__name__} ({error.sqlstate}, {error.message})")
        ok(snapshot(conn) == before, f"{what}: the ledger is unchanged")
        return
    ok(False, f"{what}: was not refused")


# ---- The bank, and the application's payout executor --------------------------------------

class Bank:
    """A stand-in for the bank's payout API, in a folder: every call is logged, and a payout is
    made once per idempotency key (a second call with the key returns the first payout), as a
    real payout API does with its Idempotency-Key header."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)

    def pay(self, key, amount, iban):
        with open(self.folder / "calls.log", "a") as log:
            log.write(f"{key}\n")
        if iban == "closed":
            raise cte_ctel.Permanent("the bank rejected the payout: account closed")
        paid = self.folder / f"paid-{key}"
        try:
            fd = os.open(paid, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return paid.read_text().split()[0]  # a replay: the first payout's reference
        reference = f"BANK-{uuid.uuid4().hex[:10]}"
        with os.fdopen(fd, "w") as out:
            out.write(f"{reference} {amount}\n")
        return reference

    def calls(self, key):
        log = self.folder / "calls.log"
        return log.read_text().split().count(key) if log.exists() else 0

    def payouts(self):
        return sorted(p.name for p in self.folder.glob("paid-*"))


class Payout(cte_ctel.Executor):
    """Executes `bank.payout` steps. At-least-once: the step's transaction_id is the bank's
    idempotency key, so a step executed twice pays once."""

    def __init__(self, bank, hang_after_paying=False):
        self.bank = bank
        self.hang_after_paying = hang_after_paying

    def execute(self, step):
        payload = step.payload
        reference = self.bank.pay(str(step.transaction_id), payload["amount"], payload["iban"])
        while self.hang_after_paying:  # the process stalls here until it is killed
            time.sleep(1)
        return {"bank_reference": reference}


def payout_worker(conninfo, name, folder, mode):
    """The payout worker process: claims and executes bank.payout steps until SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    executor = Payout(Bank(folder), hang_after_paying=(mode == "hang-after-paying"))
    worker = cte_ctel.Worker(conninfo, {PAYOUT_TYPE: executor}, name, lease=LEASE)
    worker.run_forever(stop, idle=0.2)
    worker.close()


def start_payout_worker(conninfo, name, folder, mode="serve"):
    return subprocess.Popen([sys.executable, __file__, "--payout-worker", conninfo, name,
                             folder, mode])


def wait_until(seconds, test):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if test():
            return True
        time.sleep(0.1)
    return test()


def payout(ledger, seller, amount, payout_id, iban):
    """A payout saga: the amount held on the seller's wallet while the bank pays it (a step the
    application's payout workers execute); posted when the bank paid, released if it refused."""
    steps = [
        {"name": "hold", "type": "wallet.withdrawal",
         "payload": {"account_id": seller, "amount": amount, "currency": "USD"}},
        {"name": "bank", "type": PAYOUT_TYPE,
         "payload": {"payout_id": payout_id, "amount": amount, "currency": "USD", "iban": iban}},
    ]
    return ledger.run_event("payout", steps, idempotency_key=f"payout-{payout_id}")


def payouts(conninfo, conn, ledger, seller):
    folder = tempfile.mkdtemp(prefix="cte-bank-")
    before = ledger.balance(seller, "USD")
    first = payout(ledger, seller, Decimal("50.00"), f"{run}-a", "DE89370400440532013000")
    ok(first.status == "waiting" and ledger.available_balance(seller, "USD") == before - 50,
       f"a payout of 50 waits for the bank ({first.status}), the amount held on the seller")
    again = payout(ledger, seller, Decimal("50.00"), f"{run}-a", "DE89370400440532013000")
    ok(again.replayed and again.event_id == first.event_id,
       "the payout request sent twice is one payout (a replay by its idempotency key)")

    workers = []
    try:
        return payouts_by_workers(conninfo, conn, ledger, seller, folder, first, before, workers)
    finally:
        for worker in workers:  # whatever happened, no worker process outlives the example
            worker.kill()
            worker.wait()
        if failures == 0:
            shutil.rmtree(folder)  # kept after a failure, to look at


def payouts_by_workers(conninfo, conn, ledger, seller, folder, first, before, workers):
    bank = Bank(folder)
    step = one(conn, "SELECT id FROM cte_ctel.cte_transactions WHERE event_id = %s AND name = 'bank'",
               first.event_id)
    doomed = start_payout_worker(conninfo, "payout-1", folder, "hang-after-paying")
    workers.append(doomed)
    ok(wait_until(20, lambda: bank.calls(str(step)) == 1),
       "payout worker 1 claimed the bank step and the bank paid")
    holder = one(conn, "SELECT lease_worker FROM cte_ctel.cte_steps_awaiting WHERE transaction_id = %s",
                 step)
    ok(holder == "payout-1", f"the step waits under worker 1's lease ({holder}), not yet reported")
    doomed.send_signal(signal.SIGKILL)  # mid-step: after the bank paid, before the report
    doomed.wait()
    ok(ledger.event_status(first.event_id) == "waiting" and ledger.balance(seller, "USD") == before,
       "worker 1 is killed with SIGKILL mid-step: the payout still waits, nothing posted")

    survivor = start_payout_worker(conninfo, "payout-2", folder)
    workers.append(survivor)
    ok(wait_until(30, lambda: ledger.event_status(first.event_id) == "completed"),
       "payout worker 2 takes the step over once the lease runs out, and the payout completes")
    result, attempt = conn.execute("SELECT result, attempts FROM cte_ctel.cte_transactions WHERE id = %s",
                                   (step,)).fetchone()
    paid = bank.payouts()
    ok(bank.calls(str(step)) == 2 and paid == [f"paid-{step}"]
       and result["bank_reference"] == (pathlib.Path(folder) / paid[0]).read_text().split()[0],
       f"the bank was called twice ({attempt} attempts) and paid once: the step's id is its key")
    ok(ledger.balance(seller, "USD") == before - 50
       and one(conn, "SELECT count(*) FROM cte_ctel.cte_entries WHERE account_id = %s AND transaction_id"
                     " IN (SELECT id FROM cte_ctel.cte_transactions WHERE event_id = %s)",
               seller, first.event_id) == 1,
       "the ledger posts the payout exactly once: the seller's balance fell by 50.00, one entry")

    rejected = payout(ledger, seller, Decimal("5.00"), f"{run}-b", "closed")
    ok(wait_until(30, lambda: ledger.event_status(rejected.event_id) == "compensated")
       and ledger.available_balance(seller, "USD") == before - 50,
       "a payout the bank rejects (Permanent) is compensated: its hold is released")
    return first.event_id, rejected.event_id


# ---- The application ----------------------------------------------------------------------

def main(conninfo):
    conn = psycopg.connect(conninfo, autocommit=True)  # each call is its own transaction
    ledger = cte_ctel.Ledger(conn)
    role = one(conn, "SELECT current_user")
    ok(not one(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"),
       f"the application connects as {role}, not a superuser")

    # A named consumer of the change feed, on its own connection: it starts at the newest
    # position, and the extension keeps its cursor.
    feed = psycopg.connect(conninfo, autocommit=True)
    consumer = cte_ctel.Consumer(feed, f"marketplace-{run}")

    buyer, seller, platform, escrow = (f"buyer-{run}", f"seller-{run}", f"platform-{run}",
                                       f"escrow-{run}")
    for account in (buyer, seller, platform, escrow):
        ledger.create_account(account, ["USD", "EUR"])

    # Top-up, retried after a lost reply.
    first = ledger.deposit(buyer, Decimal("250.00"), "USD", f"psp-{run}-1")
    retry = ledger.deposit(buyer, Decimal("250.00"), "USD", f"psp-{run}-1")
    ok(first == retry and ledger.balance(buyer, "USD") == Decimal("250.00"),
       "a top-up retried with its PSP reference is booked once (the retry returns its event): 250.00")
    expect_refusal(conn, cte_ctel.IdempotencyConflict, "the same PSP reference with another amount",
                   lambda: ledger.deposit(buyer, Decimal("251.00"), "USD", f"psp-{run}-1"))
    expect_refusal(conn, cte_ctel.AmountScaleExceeded, "a top-up of 10.001 USD (cents only)",
                   lambda: ledger.deposit(buyer, Decimal("10.001"), "USD"))
    expect_refusal(conn, cte_ctel.AccountUnknown, "a top-up to an account that does not exist",
                   lambda: ledger.deposit("nobody", Decimal("10"), "USD"))
    try:
        ledger.deposit(buyer, 10.5, "USD")
        ok(False, "a float amount was sent")
    except TypeError as error:
        ok(ledger.balance(buyer, "USD") == Decimal("250.00"),
           f"a float amount is a TypeError before any SQL ({error})")

    # Checkout: hold 80, ship part of the order, capture 65; the remaining 15 goes back.
    hold = ledger.hold(buyer, Decimal("80"), "USD",
                       expires_at=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1),
                       metadata={"order": f"order-{run}-1"})
    ok(ledger.available_balance(buyer, "USD") == Decimal("170.00")
       and ledger.balance(buyer, "USD") == Decimal("250.00"),
       "a checkout hold of 80 leaves 170.00 available of 250.00")
    expect_refusal(conn, cte_ctel.InsufficientFunds, "spending held funds (a 200 transfer with 170 available)",
                   lambda: ledger.transfer(buyer, platform, Decimal("200"), "USD"))
    expect_refusal(conn, cte_ctel.CaptureExceedsLien, "capturing 90 from a hold of 80",
                   lambda: ledger.capture(hold, seller, Decimal("90")))
    ledger.capture(hold, seller, Decimal("65"))
    ok(ledger.balance(buyer, "USD") == Decimal("185.00")
       and ledger.available_balance(buyer, "USD") == Decimal("185.00")
       and ledger.balance(seller, "USD") == Decimal("65.00"),
       "a partial capture of 65 pays the seller and gives the buyer the other 15 back")
    expect_refusal(conn, cte_ctel.TransitionNotAllowed, "capturing the same hold again",
                   lambda: ledger.capture(hold, seller, Decimal("1")))
    cancelled = ledger.hold(buyer, Decimal("40"), "USD")
    ledger.release(cancelled, "order cancelled")
    ok(ledger.available_balance(buyer, "USD") == Decimal("185.00"), "a cancelled order's hold is released")

    # The platform's commission, then the payouts, executed by the application's workers.
    ledger.transfer(seller, platform, Decimal("6.50"), "USD", f"fee-{run}-1")
    paid_event, rejected_event = payouts(conninfo, conn, ledger, seller)

    # An FX conversion with a fee: 100.00 USD at 0.9137 to EUR (91.37), 1.25 USD to the platform.
    fx = ledger.run_event("fx", [{"name": "convert", "type": "wallet.exchange", "payload": {
        "source_account_id": buyer, "source_currency": "USD", "source_amount": Decimal("100.00"),
        "destination_account_id": buyer, "destination_currency": "EUR",
        "exchange_rate": Decimal("0.9137"), "fee_account_id": platform,
        "fee_amount": Decimal("1.25"), "reference": f"fx-{run}"}}])
    ok(fx.status == "completed" and ledger.balance(buyer, "USD") == Decimal("83.75")
       and ledger.balance(buyer, "EUR") == Decimal("91.37")
       and ledger.balance(platform, "USD") == Decimal("7.75"),
       "an FX conversion with a fee: 100.00 USD became 91.37 EUR, 1.25 USD fee to the platform")
    expect_refusal(conn, cte_ctel.CurrencyNotHeld, "a transfer in a currency the account does not hold",
                   lambda: ledger.transfer(buyer, seller, Decimal("1"), "GBP"))

    # End-of-day settlement: escrow pays three sellers in one batch, all or nothing.
    ledger.deposit(escrow, Decimal("30.00"), "USD", f"psp-{run}-escrow")

    def settlement(amounts):
        items = [{"id": f"s{i}", "type": "wallet.transfer",
                  "payload": {"source_account_id": escrow, "destination_account_id": to,
                              "amount": amount, "currency": "USD"}}
                 for i, (to, amount) in enumerate(amounts)]
        return ledger.run_event("settlement", [{"name": "eod", "type": "batch.operation",
                                                "payload": {"batch_id": f"eod-{run}",
                                                            "transactions": items}}]).status

    seller_before = ledger.balance(seller, "USD")
    before = snapshot(conn)
    status = settlement([(seller, Decimal("10")), (platform, Decimal("10")), (buyer, Decimal("20"))])
    ok(status == "compensated" and snapshot(conn)[0] == before[0],
       f"a settlement batch that would overdraw escrow is refused whole ({status}), no balance moved")
    status = settlement([(seller, Decimal("10")), (platform, Decimal("10")), (buyer, Decimal("10"))])
    ok(status == "completed" and ledger.balance(escrow, "USD") == Decimal("0.00")
       and ledger.balance(seller, "USD") == seller_before + 10,
       f"the corrected settlement batch posts all three transfers ({status})")

    # A two-shipment order on a fresh pair: hold 50 once (a retried request with the same
    # idempotency key gets the same hold), capture 20 as the first box ships, then the final 25;
    # the last 5 goes back. Then part of the sale is refunded, never more than was paid.
    buyer2, shop2 = f"buyer2-{run}", f"shop2-{run}"
    for account in (buyer2, shop2):
        ledger.create_account(account, ["USD"])
    ledger.deposit(buyer2, Decimal("100.00"), "USD", f"psp-{run}-2")
    order = f"order-{run}-2"
    hold = ledger.hold(buyer2, Decimal("50"), "USD", idempotency_key=order)
    again = ledger.hold(buyer2, Decimal("50"), "USD", idempotency_key=order)
    ok(again == hold and ledger.available_balance(buyer2, "USD") == Decimal("50.00"),
       "a hold requested twice with one idempotency key is one hold of 50")
    ledger.capture(hold, shop2, Decimal("20"), f"box-{run}-1", final=False)
    ok(ledger.available_balance(buyer2, "USD") == Decimal("50.00")
       and ledger.balance(shop2, "USD") == Decimal("20.00"),
       "the first box captures 20 and the hold keeps the other 30")
    ledger.capture(hold, shop2, Decimal("25"), f"box-{run}-2")
    ok(ledger.available_balance(buyer2, "USD") == Decimal("55.00")
       and ledger.balance(shop2, "USD") == Decimal("45.00"),
       "the final capture of 25 releases the last 5")
    sale = ledger.transfer(buyer2, shop2, Decimal("30"), "USD", f"sale-{run}")
    refund = ledger.reverse_event(sale, "item returned", Decimal("12"), f"rma-{run}")
    ok(one(conn, "SELECT refund_of FROM cte_ctel.cte_events WHERE id = %s", refund) == sale
       and ledger.balance(buyer2, "USD") == Decimal("37.00"),
       "a partial refund of 12 is an event linked to the sale, the money back")
    expect_refusal(conn, cte_ctel.RefundExceedsEvent, "refunding 20 more of a sale of 30",
                   lambda: ledger.reverse_event(sale, "too much", Decimal("20")))
    statement = rows(conn, "SELECT kind, amount, balance_after"
                           " FROM cte_ctel.cte_account_statement(%s, 'USD')", buyer2)
    ok([row[0] for row in statement] == ["deposit", "transfer", "transfer", "transfer", "refund"]
       and statement[-1][2] == Decimal("37.00"),
       f"the buyer's statement: {len(statement)} entries in order, ending at 37.00")

    # What the application role may not do.
    expect_refusal(conn, cte_ctel.TransitionNotAllowed, "cancelling its own event after it ended",
                   lambda: ledger.cancel_event(rejected_event))
    expect_refusal(conn, cte_ctel.PermissionDenied, "writing a balance directly",
                   lambda: conn.execute("UPDATE cte_ctel.cte_balances SET balance = balance + 1000"
                                        " WHERE account_id = %s", (buyer,)))
    ok(rows(conn, "SELECT * FROM cte_ctel.cte_verify_ledger()") == [], "the ledger verifies")

    # The consumer: what it reads and does not acknowledge it reads again; what it acknowledged,
    # never again. Its handler's writes and the acknowledgement commit together (run_batch).
    wanted = {paid_event: "completed", rejected_event: "compensated", fx.event_id: "completed"}
    peeked = consumer.next(1000)
    ok(len(peeked) > 0 and [c.position for c in consumer.next(1000)][:len(peeked)]
       == [c.position for c in peeked],
       f"the consumer reads {len(peeked)} changes, and without an ack the same ones again")
    seen, positions = {}, []

    def handle(change):
        positions.append(change.position)
        if change.kind == "event":
            seen[change.event_id] = change.new_status

    wait_until(10, lambda: consumer.run_batch(handle, 1000) == 0
               and all(seen.get(e) == s for e, s in wanted.items()))
    ok(all(seen.get(e) == s for e, s in wanted.items()),
       f"the feed consumer saw the payouts and the conversion finish ({len(positions)} changes)")
    ok(positions == sorted(set(positions)) and positions[:1] == [peeked[0].position],
       "the feed's positions only increase: nothing twice, nothing skipped at the start")
    ok(all(c.position > positions[-1] for c in consumer.next(1000)),
       "after the acknowledgements, nothing it handled comes back")
    feed.close()
    conn.close()
    return failures


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--payout-worker":
        payout_worker(*sys.argv[2:])
        sys.exit(0)
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(1 if main(sys.argv[1]) else 0)
