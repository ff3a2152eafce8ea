#!/usr/bin/env python3
"""A marketplace on cte_ctel, from Python with psycopg 3, as an application role that is not a
superuser (`shop_app`, a member of `cte_operator` only).

The flows a payments team writes first:
  - a top-up confirmed by the PSP, retried safely after a lost reply (its PSP reference);
  - checkout: a hold on the buyer, a partial capture to the seller, the rest released; a
    cancelled order's hold released;
  - a payout saga: the seller's funds held while the bank pays, reported by a webhook handler
    (one payout paid, one rejected, one webhook delivered twice);
  - an FX conversion with a fee;
  - an end-of-day settlement batch, all or nothing;
  - a consumer of the change feed, woken by LISTEN.
Every refusal is caught by its SQLSTATE (class L0, docs/errors.md) and leaves the ledger as it
was, which the example checks. Money is Decimal throughout: JSON is parsed with
parse_float=Decimal, amounts go to the server as numeric text, never through a float.

Usage: marketplace.py CONNINFO    (e.g. "host=/tmp/x port=54330 dbname=cte_worker user=shop_app")
Prints "ok - ..." per check and exits non-zero if any failed.
"""

import json
import select
import sys
import uuid
from decimal import Decimal

import psycopg
from psycopg.types.json import Jsonb

# The refusal codes this example handles (docs/errors.md lists them all).
INSUFFICIENT_FUNDS = "L0020"
ACCOUNT_UNKNOWN = "L0016"
CURRENCY_NOT_HELD = "L0018"
AMOUNT_SCALE_EXCEEDED = "L0005"
IDEMPOTENCY_CONFLICT = "L0028"
CAPTURE_EXCEEDS_LIEN = "L0035"
REFUND_EXCEEDS_EVENT = "L0041"
ACCOUNT_FROZEN = "L0037"
TRANSITION_NOT_ALLOWED = "L0023"
INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL's own: a role without the grant

failures = 0
run = uuid.uuid4().hex[:8]  # keeps references unique if the example runs twice


def ok(condition, what):
    global failures
    print(("ok - " if condition else "not ok - ") + what, flush=True)
    if not condition:
        failures += 1


def refused(error):
    """Whether an error is one of the ledger's refusals: the call changed nothing."""
    return (error.diag.sqlstate or "").startswith("L0")


class Ledger:
    """The few calls the application makes, each a plain SQL function of schema cte_ctel."""

    def __init__(self, conn):
        self.conn = conn

    def one(self, sql, *args):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            row = cur.fetchone()
            return row[0] if row else None

    def rows(self, sql, *args):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    def balance(self, account, currency):
        return self.one("SELECT cte_ctel.cte_balance(%s, %s)", account, currency)

    def available(self, account, currency):
        return self.one("SELECT cte_ctel.cte_available_balance(%s, %s)", account, currency)

    def snapshot(self):
        """Every wallet balance and the journal's length: what a refusal must leave alone."""
        return (
            self.rows("SELECT account_id, currency, balance, reserved FROM cte_ctel.cte_balances"
                      " ORDER BY 1, 2"),
            self.one("SELECT count(*) FROM cte_ctel.cte_entries"),
            self.one("SELECT count(*) FROM cte_ctel.cte_liens WHERE status = 'active'"),
        )

    def expect_refusal(self, code, what, sql, *args):
        """Runs a call that must be refused with `code` and change nothing."""
        before = self.snapshot()
        try:
            self.one(sql, *args)
        except psycopg.Error as error:
            sqlstate = error.diag.sqlstate
            ok(sqlstate == code, f"{what}: refused with {sqlstate} ({error.diag.message_primary})")
            if code.startswith("L0"):
                # An L0 code is in no class psycopg knows: a plain DatabaseError, never a
                # misleading subclass such as UndefinedTable.
                ok(type(error) is psycopg.DatabaseError and refused(error),
                   f"{what}: arrives as psycopg.DatabaseError, class L0, "
                   f"DETAIL '{error.diag.message_detail}'")
            ok(self.snapshot() == before, f"{what}: the ledger is unchanged")
            return
        ok(False, f"{what}: was not refused")


def top_up(ledger, account, amount, psp_reference):
    """Money in, confirmed by the PSP. Safe to call again with the same reference: a retry after
    a lost reply returns the event the first call booked (a replay); the same reference with
    another amount is refused as a conflict."""
    return ledger.one("SELECT cte_ctel.cte_deposit(%s, %s, 'USD', %s)", account, amount,
                      psp_reference)


def payout(ledger, seller, amount, payout_id):
    """A payout saga: the amount held on the seller's wallet while the bank pays it; posted when
    the bank's webhook says paid, released when it says rejected."""
    event = ledger.one("SELECT cte_ctel.cte_create_event('payout', idempotency_key => %s)",
                       f"payout-{payout_id}")
    ledger.one("SELECT cte_ctel.cte_add_transaction(%s, 'hold', 'wallet.withdrawal', %s)", event,
               Jsonb({"account_id": seller, "amount": str(amount), "currency": "USD"}))
    ledger.one("SELECT cte_ctel.cte_add_transaction(%s, 'bank', 'external', %s)", event,
               Jsonb({"rail": "ach", "payout_id": payout_id}))
    return event, ledger.one("SELECT cte_ctel.cte_start_event(%s)", event)


def handle_bank_webhook(ledger, body):
    """What the webhook endpoint runs for a bank callback (a JSON body). Idempotent: the bank may
    deliver the same callback twice; a report on a step that no longer waits is recorded as a
    late report and changes nothing."""
    message = json.loads(body, parse_float=Decimal)  # never a float, even in JSON
    step = ledger.one(
        "SELECT t.id FROM cte_ctel.cte_transactions t JOIN cte_ctel.cte_events e ON e.id = t.event_id"
        " WHERE e.idempotency_key = %s AND t.type = 'external'", f"payout-{message['payout_id']}")
    if message["status"] == "paid":
        return ledger.one("SELECT cte_ctel.cte_complete_transaction(%s, %s)", step,
                          Jsonb({"bank_reference": message["bank_reference"]}))
    # A rejection is final: retryable => false (the default) compensates the event.
    return ledger.one("SELECT cte_ctel.cte_fail_transaction(%s, %s)", step, message["reason"])


def event_status(ledger, event):
    return ledger.one("SELECT status FROM cte_ctel.cte_events WHERE id = %s", event)


def main(conninfo):
    conn = psycopg.connect(conninfo, autocommit=True)  # each call is its own transaction
    ledger = Ledger(conn)
    role = ledger.one("SELECT current_user")
    superuser = ledger.one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    ok(not superuser, f"the application connects as {role}, not a superuser")

    # A consumer of the change feed, on its own connection: LISTEN, then read from its cursor.
    consumer = psycopg.connect(conninfo, autocommit=True)
    woken = []
    consumer.add_notify_handler(woken.append)  # called as the connection reads notifications
    consumer.execute("LISTEN cte_events")
    cursor = consumer.execute(
        "SELECT coalesce(max(position), 0) FROM cte_ctel.cte_changes(0, 10000)").fetchone()[0]

    for account in (f"buyer-{run}", f"seller-{run}", f"platform-{run}", f"escrow-{run}"):
        ledger.one("SELECT cte_ctel.cte_create_account(%s, ARRAY['USD', 'EUR'])", account)
    buyer, seller, platform, escrow = (f"buyer-{run}", f"seller-{run}", f"platform-{run}",
                                       f"escrow-{run}")

    # Top-up, retried after a lost reply.
    first = top_up(ledger, buyer, Decimal("250.00"), f"psp-{run}-1")
    retry = top_up(ledger, buyer, Decimal("250.00"), f"psp-{run}-1")
    ok(first == retry and ledger.balance(buyer, "USD") == Decimal("250.00"),
       "a top-up retried with its PSP reference is booked once (the retry returns its event): 250.00")
    ledger.expect_refusal(IDEMPOTENCY_CONFLICT, "the same PSP reference with another amount",
                          "SELECT cte_ctel.cte_deposit(%s, 251.00, 'USD', %s)", buyer, f"psp-{run}-1")
    ledger.expect_refusal(AMOUNT_SCALE_EXCEEDED, "a top-up of 10.001 USD (cents only)",
                          "SELECT cte_ctel.cte_deposit(%s, 10.001, 'USD')", buyer)
    ledger.expect_refusal(ACCOUNT_UNKNOWN, "a top-up to an account that does not exist",
                          "SELECT cte_ctel.cte_deposit('nobody', 10, 'USD')")

    # Checkout: hold 80, ship part of the order, capture 65; the remaining 15 goes back.
    hold = ledger.one("SELECT cte_ctel.ctel_create_lien(NULL, %s, 80, 'USD', now() + interval '1 hour',"
                      " %s)", buyer, Jsonb({"order": f"order-{run}-1"}))
    ok(ledger.available(buyer, "USD") == Decimal("170.00") and ledger.balance(buyer, "USD") == Decimal("250.00"),
       "a checkout hold of 80 leaves 170.00 available of 250.00")
    ledger.expect_refusal(INSUFFICIENT_FUNDS, "spending held funds (a 200 transfer with 170 available)",
                          "SELECT cte_ctel.cte_transfer(%s, %s, 200, 'USD')", buyer, platform)
    ledger.expect_refusal(CAPTURE_EXCEEDS_LIEN, "capturing 90 from a hold of 80",
                          "SELECT cte_ctel.ctel_capture_lien(%s, %s, 90)", hold, seller)
    ledger.one("SELECT cte_ctel.ctel_capture_lien(%s, %s, 65)", hold, seller)
    ok(ledger.balance(buyer, "USD") == Decimal("185.00") and ledger.available(buyer, "USD") == Decimal("185.00")
       and ledger.balance(seller, "USD") == Decimal("65.00"),
       "a partial capture of 65 pays the seller and gives the buyer the other 15 back")
    ledger.expect_refusal(TRANSITION_NOT_ALLOWED, "capturing the same hold again",
                          "SELECT cte_ctel.ctel_capture_lien(%s, %s, 1)", hold, seller)
    cancelled = ledger.one("SELECT cte_ctel.ctel_create_lien(NULL, %s, 40, 'USD')", buyer)
    ledger.one("SELECT cte_ctel.ctel_release_lien(%s, 'order cancelled')", cancelled)
    ok(ledger.available(buyer, "USD") == Decimal("185.00"), "a cancelled order's hold is released")

    # The platform's commission, then the payouts.
    ledger.one("SELECT cte_ctel.cte_transfer(%s, %s, 6.50, 'USD', %s)", seller, platform, f"fee-{run}-1")
    paid_event, status = payout(ledger, seller, Decimal("50.00"), f"{run}-a")
    ok(status == "waiting" and ledger.available(seller, "USD") == Decimal("8.50")
       and ledger.balance(seller, "USD") == Decimal("58.50"),
       f"a payout of 50 waits for the bank ({status}), the amount held: 8.50 available of 58.50")
    rejected_event, _ = payout(ledger, seller, Decimal("8.50"), f"{run}-b")
    ledger.expect_refusal(INSUFFICIENT_FUNDS, "a hold on the seller with nothing left available",
                          "SELECT cte_ctel.ctel_create_lien(NULL, %s, 1, 'USD')", seller)
    paid = json.dumps({"payout_id": f"{run}-a", "status": "paid", "bank_reference": "ACH-000123"})
    ok(handle_bank_webhook(ledger, paid) == "completed" and event_status(ledger, paid_event) == "completed"
       and ledger.balance(seller, "USD") == Decimal("8.50"),
       "the bank's 'paid' webhook completes the payout: the 50 is posted out")
    ok(handle_bank_webhook(ledger, paid) == "completed" and ledger.balance(seller, "USD") == Decimal("8.50"),
       "the same webhook delivered twice changes nothing (a late report)")
    rejected = json.dumps({"payout_id": f"{run}-b", "status": "rejected", "reason": "account closed"})
    ok(handle_bank_webhook(ledger, rejected) == "compensated" and event_status(ledger, rejected_event) == "compensated"
       and ledger.available(seller, "USD") == Decimal("8.50"),
       "the bank's 'rejected' webhook compensates the payout: the hold is released")

    # An FX conversion with a fee: 100.00 USD at 0.9137 to EUR (91.37), 1.25 USD to the platform.
    fx = ledger.one("SELECT cte_ctel.cte_create_event('fx')")
    ledger.one("SELECT cte_ctel.cte_add_transaction(%s, 'convert', 'wallet.exchange', %s)", fx, Jsonb({
        "source_account_id": buyer, "source_currency": "USD", "source_amount": "100.00",
        "destination_account_id": buyer, "destination_currency": "EUR", "exchange_rate": "0.9137",
        "fee_account_id": platform, "fee_amount": "1.25", "reference": f"fx-{run}"}))
    ok(ledger.one("SELECT cte_ctel.cte_start_event(%s)", fx) == "completed"
       and ledger.balance(buyer, "USD") == Decimal("83.75") and ledger.balance(buyer, "EUR") == Decimal("91.37")
       and ledger.balance(platform, "USD") == Decimal("7.75"),
       "an FX conversion with a fee: 100.00 USD became 91.37 EUR, 1.25 USD fee to the platform")
    ledger.expect_refusal(CURRENCY_NOT_HELD, "a transfer in a currency the account does not hold",
                          "SELECT cte_ctel.cte_transfer(%s, %s, 1, 'GBP')", buyer, seller)

    # End-of-day settlement: escrow pays three sellers in one batch, all or nothing.
    top_up(ledger, escrow, Decimal("30.00"), f"psp-{run}-escrow")

    def settlement(amounts):
        batch = ledger.one("SELECT cte_ctel.cte_create_event('settlement')")
        items = [{"id": f"s{i}", "type": "wallet.transfer",
                  "payload": {"source_account_id": escrow, "destination_account_id": to,
                              "amount": str(amount), "currency": "USD"}}
                 for i, (to, amount) in enumerate(amounts)]
        ledger.one("SELECT cte_ctel.cte_add_transaction(%s, 'eod', 'batch.operation', %s)", batch,
                   Jsonb({"batch_id": f"eod-{run}", "transactions": items}))
        return ledger.one("SELECT cte_ctel.cte_start_event(%s)", batch)

    before = ledger.snapshot()
    status = settlement([(seller, Decimal("10")), (platform, Decimal("10")), (buyer, Decimal("20"))])
    ok(status == "compensated" and ledger.snapshot() == before,
       f"a settlement batch that would overdraw escrow is refused whole ({status}), nothing posted")
    status = settlement([(seller, Decimal("10")), (platform, Decimal("10")), (buyer, Decimal("10"))])
    ok(status == "completed" and ledger.balance(escrow, "USD") == Decimal("0.00")
       and ledger.balance(seller, "USD") == Decimal("18.50"),
       f"the corrected settlement batch posts all three transfers ({status})")

    # A two-shipment order on a fresh pair: hold 50 once (a retried request with the same
    # idempotency key gets the same hold), capture 20 as the first box ships, then the final 25;
    # the last 5 goes back. Then part of the sale is refunded, twice at most what was paid.
    buyer2, shop2 = f"buyer2-{run}", f"shop2-{run}"
    for account in (buyer2, shop2):
        ledger.one("SELECT cte_ctel.cte_create_account(%s, ARRAY['USD'])", account)
    top_up(ledger, buyer2, Decimal("100.00"), f"psp-{run}-2")
    order = f"order-{run}-2"
    hold = ledger.one("SELECT cte_ctel.ctel_create_lien(NULL, %s, 50, 'USD', idempotency_key => %s)", buyer2, order)
    again = ledger.one("SELECT cte_ctel.ctel_create_lien(NULL, %s, 50, 'USD', idempotency_key => %s)", buyer2, order)
    ok(again == hold and ledger.available(buyer2, "USD") == Decimal("50.00"),
       "a hold requested twice with one idempotency key is one hold of 50")
    ledger.one("SELECT cte_ctel.ctel_capture_lien(%s, %s, 20, %s, final => false)", hold, shop2, f"box-{run}-1")
    ok(ledger.available(buyer2, "USD") == Decimal("50.00") and ledger.balance(shop2, "USD") == Decimal("20.00"),
       "the first box captures 20 and the hold keeps the other 30")
    ledger.one("SELECT cte_ctel.ctel_capture_lien(%s, %s, 25, %s)", hold, shop2, f"box-{run}-2")
    ok(ledger.available(buyer2, "USD") == Decimal("55.00") and ledger.balance(shop2, "USD") == Decimal("45.00"),
       "the final capture of 25 releases the last 5")
    sale = ledger.one("SELECT cte_ctel.cte_transfer(%s, %s, 30, 'USD', %s)", buyer2, shop2, f"sale-{run}")
    refund = ledger.one("SELECT cte_ctel.cte_reverse_event(%s, 'item returned', 12, %s)", sale, f"rma-{run}")
    ok(ledger.one("SELECT refund_of FROM cte_ctel.cte_events WHERE id = %s", refund) == sale
       and ledger.balance(buyer2, "USD") == Decimal("37.00"),
       "a partial refund of 12 is an event linked to the sale, the money back")
    ledger.expect_refusal(REFUND_EXCEEDS_EVENT, "refunding 20 more of a sale of 30",
                          "SELECT cte_ctel.cte_reverse_event(%s, 'too much', 20)", sale)
    statement = ledger.rows("SELECT kind, amount, balance_after FROM cte_ctel.cte_account_statement(%s, 'USD')", buyer2)
    ok([row[0] for row in statement] == ["deposit", "transfer", "transfer", "transfer", "refund"]
       and statement[-1][2] == Decimal("37.00"),
       f"the buyer's statement: {len(statement)} entries in order, ending at 37.00")

    # What the application role may not do.
    # It may cancel the events it created (0.3.0), not one that has ended.
    ledger.expect_refusal(TRANSITION_NOT_ALLOWED, "cancelling its own event after it ended",
                          "SELECT cte_ctel.cte_cancel_event(%s)", rejected_event)
    ledger.expect_refusal(INSUFFICIENT_PRIVILEGE, "writing a balance directly",
                          "UPDATE cte_ctel.cte_balances SET balance = balance + 1000 WHERE account_id = %s", buyer)
    ok(ledger.rows("SELECT * FROM cte_ctel.cte_verify_ledger()") == [], "the ledger verifies")

    # The consumer: woken by the worker, it reads every change after its cursor, in order.
    wanted = {str(paid_event): "completed", str(rejected_event): "compensated", str(fx): "completed"}
    seen, positions = {}, []
    for _ in range(100):
        if all(seen.get(e) == s for e, s in wanted.items()):
            break
        select.select([consumer.pgconn.socket], [], [], 0.2)  # a notification, or 200 ms
        for position, kind, event, new_status in consumer.execute(
                "SELECT position, kind, event_id::text, new_status FROM cte_ctel.cte_changes(%s, 1000)",
                (cursor,)).fetchall():
            positions.append(position)
            if kind == "event":
                seen[event] = new_status
            cursor = position
    ok(all(seen.get(e) == s for e, s in wanted.items()),
       f"the feed consumer saw the payouts and the conversion finish ({len(positions)} changes read)")
    ok(positions == sorted(set(positions)), "the feed's positions only increase: nothing twice, nothing reordered")
    ok(len(woken) > 0 and all(n.channel == "cte_events" and n.payload.isdigit() for n in woken),
       f"the consumer was woken by LISTEN cte_events ({len(woken)} notifications, each a position)")
    consumer.close()
    conn.close()
    return failures


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(1 if main(sys.argv[1]) else 0)
