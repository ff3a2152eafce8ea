"""`Ledger`: the ledger's calls as Python methods, one SQL function each.

Every method runs one statement on the connection it was given, in that connection's current
transaction (with `autocommit=True`, each call is its own transaction; without it, the caller
commits). Amounts are checked before anything is sent (`money.amount`), results are Decimal, and
a refusal raises its class from `cte_ctel.errors` with the server's message, DETAIL and HINT.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import psycopg

from cte_ctel import _sql
from cte_ctel import money
from cte_ctel._base import Refused
from cte_ctel._errors import CATALOG
from cte_ctel.money import Amount, jsonb

FIVE_MINUTES = datetime.timedelta(minutes=5)


class EventRun(NamedTuple):
    """What `run_event` returns: the event, its status after the start, and whether the call
    was a replay of an earlier one with the same key (which changed nothing)."""

    event_id: uuid.UUID
    status: str
    replayed: bool


class TransferItem(NamedTuple):
    """One item of `transfers`: a transfer, its key (`reference`) and its metadata."""

    source: str
    destination: str
    amount: Amount
    currency: str
    reference: Optional[str] = None
    metadata: Optional[Mapping[str, Any]] = None


class TransferOutcome(NamedTuple):
    """What became of one item of `transfers`: `status` is `posted`, `replayed` (its reference
    named the same transfer already: `event_id` is that one) or `refused` (`reason` is the
    catalog's reason, `refusal` its class; nothing of it was kept)."""

    item: int
    event_id: Optional[uuid.UUID]
    status: str
    reason: Optional[str]

    @property
    def refusal(self) -> Optional[type]:
        """The refusal's class (`cte_ctel.errors.InsufficientFunds`, ...), `Refused` for a
        reason this client does not know; None for an item that was not refused."""
        if self.reason is None:
            return None
        known = CATALOG.get(self.reason)
        return known[1] if known is not None else Refused


class Ledger:
    """The ledger's calls on one connection. Keys (`reference`, `idempotency_key`) make a call
    safe to send again: the same request returns the first result and changes nothing."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def create_account(self, account_id: str, currencies: Sequence[str],
                       allow_negative: bool = False,
                       metadata: Optional[Mapping[str, Any]] = None) -> str:
        return _sql.value(self.conn, "SELECT cte_ctel.cte_create_account(%s, %s, %s, %s)",
                          (account_id, list(currencies), allow_negative, jsonb(metadata)))

    def deposit(self, account_id: str, amount: Amount, currency: str,
                reference: Optional[str] = None) -> uuid.UUID:
        """Money in from outside (`@world`); returns the deposit's event."""
        checked = money.amount(amount)
        return _sql.value(self.conn, "SELECT cte_ctel.cte_deposit(%s, %s, %s, %s)",
                          (account_id, checked, currency, reference))

    def transfer(self, source: str, destination: str, amount: Amount, currency: str,
                 reference: Optional[str] = None,
                 metadata: Optional[Mapping[str, Any]] = None) -> uuid.UUID:
        """One transfer, posted now or refused; returns its event."""
        checked = money.amount(amount)
        return _sql.value(self.conn, "SELECT cte_ctel.cte_transfer(%s, %s, %s, %s, %s, %s)",
                          (source, destination, checked, currency, reference, jsonb(metadata)))

    def transfers(self, items: Sequence[TransferItem]) -> list[TransferOutcome]:
        """Many transfers in one call (`cte_transfers`, at most 10,000 items), in the
        connection's transaction, each posted, refused or replayed on its own: a refused item
        undoes nothing of the others. One outcome per item, in order. An error that is not a
        refusal ends the whole call, nothing of it kept; with references, sending it all again
        is safe. Every amount is checked before anything is sent."""
        payload = []
        for index, item in enumerate(items, 1):
            entry: dict[str, Any] = {
                "source_account_id": item.source, "destination_account_id": item.destination,
                "amount": money.amount(item.amount, f"item {index}'s amount"),
                "currency": item.currency}
            if item.reference is not None:
                entry["reference"] = item.reference
            if item.metadata is not None:
                entry["metadata"] = item.metadata
            payload.append(entry)
        found = _sql.rows(self.conn, "SELECT item, event_id, status, reason"
                                     " FROM cte_ctel.cte_transfers(%s) ORDER BY item",
                          (jsonb(payload),))
        outcomes = [TransferOutcome(*row) for row in found]
        assert [o.item for o in outcomes] == list(range(1, len(payload) + 1)), "one per item"
        return outcomes

    def balance(self, account_id: str, currency: str) -> Any:
        return _sql.value(self.conn, "SELECT cte_ctel.cte_balance(%s, %s)",
                          (account_id, currency))

    def available_balance(self, account_id: str, currency: str) -> Any:
        """The balance less what active liens hold."""
        return _sql.value(self.conn, "SELECT cte_ctel.cte_available_balance(%s, %s)",
                          (account_id, currency))

    def run_event(self, name: str, steps: Sequence[Mapping[str, Any]],
                  idempotency_key: Optional[str] = None,
                  timeout: datetime.timedelta = FIVE_MINUTES,
                  metadata: Optional[Mapping[str, Any]] = None,
                  not_before: Optional[datetime.datetime] = None) -> EventRun:
        """Creates, fills and starts an event in one call. Each step is a mapping with `name`,
        `type` and `payload` (amounts as Decimal: they go as decimal strings), optionally
        `description` and `max_attempts`."""
        row = _sql.one(self.conn,
                       "SELECT event_id, status, replayed"
                       " FROM cte_ctel.cte_run_event(%s, %s, %s, %s, %s, %s)",
                       (name, jsonb(list(steps)), idempotency_key, timeout, jsonb(metadata),
                        not_before))
        assert row is not None, "cte_run_event returns one row"
        return EventRun(*row)

    def event_status(self, event_id: uuid.UUID) -> Optional[str]:
        return _sql.value(self.conn, "SELECT status FROM cte_ctel.cte_events WHERE id = %s",
                          (event_id,))

    def cancel_event(self, event_id: uuid.UUID, reason: Optional[str] = None) -> str:
        return _sql.value(self.conn, "SELECT cte_ctel.cte_cancel_event(%s, %s)",
                          (event_id, reason))

    def reverse_event(self, event_id: uuid.UUID, reason: str,
                      amount: Optional[Amount] = None,
                      reference: Optional[str] = None,
                      legs: Optional[Sequence[Mapping[str, Any]]] = None) -> uuid.UUID:
        """A refund of a completed event (all that is left, or `amount`)."""
        checked = money.optional_amount(amount)
        return _sql.value(self.conn, "SELECT cte_ctel.cte_reverse_event(%s, %s, %s, %s, %s)",
                          (event_id, reason, checked, reference,
                           None if legs is None else jsonb(list(legs))))

    def hold(self, account_id: str, amount: Amount, currency: str,
             event_id: Optional[uuid.UUID] = None,
             expires_at: Optional[datetime.datetime] = None,
             metadata: Optional[Mapping[str, Any]] = None,
             idempotency_key: Optional[str] = None) -> uuid.UUID:
        """A lien: reserves funds on a wallet; returns the lien."""
        checked = money.amount(amount)
        return _sql.value(self.conn,
                          "SELECT cte_ctel.ctel_create_lien(%s, %s, %s, %s, %s, %s, %s)",
                          (event_id, account_id, checked, currency, expires_at, jsonb(metadata),
                           idempotency_key))

    def capture(self, lien_id: uuid.UUID, destination: str,
                amount: Optional[Amount] = None, reference: Optional[str] = None,
                final: bool = True) -> uuid.UUID:
        """Moves held funds (all by default) to `destination`; returns the posting."""
        checked = money.optional_amount(amount)
        return _sql.value(self.conn, "SELECT cte_ctel.ctel_capture_lien(%s, %s, %s, %s, %s)",
                          (lien_id, destination, checked, reference, final))

    def release(self, lien_id: uuid.UUID, reason: Optional[str] = None) -> None:
        _sql.value(self.conn, "SELECT cte_ctel.ctel_release_lien(%s, %s)", (lien_id, reason))

    def register_external_type(self, type_name: str,
                               description: Optional[str] = None) -> bool:
        """(cte_admin) Registers a step type the application hosts; true when it is new."""
        return _sql.value(self.conn, "SELECT cte_ctel.cte_register_external_type(%s, %s)",
                          (type_name, description))
