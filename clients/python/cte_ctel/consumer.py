"""`Consumer`: a named consumer of the change feed, its cursor kept by the extension.

`next` reads the changes after the cursor (the same ones again until acknowledged); `ack` moves
the cursor in the caller's transaction. `run` does both in one transaction per batch, so the
handler's own writes on the consumer's connection and the acknowledgement commit together: a
crash between processing and acknowledgement rolls both back, and the changes are seen again
(at-least-once, as for executors: make the handler idempotent, e.g. by `position`).
"""

from __future__ import annotations

import datetime
import select
import threading
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Optional

import psycopg

from cte_ctel import _sql

CHANNEL = "cte_events"

_COLUMNS = ("position, at, kind, event_id, event_name, transaction_id, transaction_type, lien_id,"
            " account_id, old_status, new_status, amount, currency, reference, actor, reason,"
            " metadata")


@dataclass(frozen=True)
class Change:
    """One row of the change feed (`cte_changes`); see docs/sql-reference.md, "The change
    feed", for what each column holds."""

    position: int
    at: datetime.datetime
    kind: str
    event_id: Optional[uuid.UUID]
    event_name: Optional[str]
    transaction_id: Optional[uuid.UUID]
    transaction_type: Optional[str]
    lien_id: Optional[uuid.UUID]
    account_id: Optional[str]
    old_status: Optional[str]
    new_status: Optional[str]
    amount: Optional[Decimal]
    currency: Optional[str]
    reference: Optional[str]
    actor: Optional[str]
    reason: Optional[str]
    metadata: Any


class Consumer:
    """The consumer `name` on `conn`, created if missing (`cte_create_consumer` is a replay when
    it exists: its cursor stays where it is). Without `start_after` a new consumer starts at the
    newest position now; with it, after that position."""

    def __init__(self, conn: psycopg.Connection, name: str,
                 start_after: Optional[int] = None) -> None:
        self.conn = conn
        self.name = name
        self.cursor: int = _sql.value(conn, "SELECT cte_ctel.cte_create_consumer(%s, %s)",
                                      (name, start_after))
        self._woken = threading.Event()
        self._listening = False

    def next(self, limit: int = 100) -> list[Change]:
        """Up to `limit` changes after the cursor; the cursor does not move."""
        rows = _sql.rows(self.conn,
                         f"SELECT {_COLUMNS} FROM cte_ctel.cte_consumer_next(%s, %s)",
                         (self.name, limit))
        return [Change(*row) for row in rows]

    def ack(self, position: int) -> int:
        """Moves the cursor forward to `position` in the caller's transaction (an older
        position changes nothing); returns the cursor."""
        self.cursor = _sql.value(self.conn, "SELECT cte_ctel.cte_consumer_ack(%s, %s)",
                                 (self.name, position))
        return self.cursor

    def run_batch(self, handler: Callable[[Change], None], limit: int = 100) -> int:
        """One batch in one transaction: each change to `handler`, in order, then the ack of
        the last. An exception from the handler rolls the batch back, ack included, and
        propagates. Returns how many changes were handled."""
        with self.conn.transaction():
            changes = self.next(limit)
            for change in changes:
                handler(change)
            if changes:
                self.ack(changes[-1].position)
        return len(changes)

    def run(self, handler: Callable[[Change], None], stop: threading.Event,
            limit: int = 100, poll: float = 1.0) -> None:
        """Batches until `stop` is set. Between empty batches it waits for `NOTIFY cte_events`
        (LISTEN on this connection) or `poll` seconds, whichever comes first: a notification
        is only a wake-up, so it also polls. The handler's exceptions propagate."""
        self._listen()
        while not stop.is_set():
            if self.run_batch(handler, limit) == 0:
                self._wait(poll)

    def _listen(self) -> None:
        if self._listening:
            return
        self.conn.add_notify_handler(lambda notify: self._woken.set())
        with self.conn.transaction():
            self.conn.execute(f"LISTEN {CHANNEL}")
        self._listening = True

    def _wait(self, seconds: float) -> None:
        """Waits until the server sends something (a notification) or `seconds` pass; the
        next statement reads what was sent."""
        if not self._woken.is_set():
            select.select([self.conn.pgconn.socket], [], [], seconds)
        self._woken.clear()
