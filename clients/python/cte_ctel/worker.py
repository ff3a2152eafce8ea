"""Executors in the application: `Executor`, `Step` and the `Worker` that claims and reports.

A worker claims steps of the types it hosts (`cte_claim_steps`, committed at once so the claim
holds no row lock while the work runs), calls the executor of each in turn, and reports under
the step's lease token. A heartbeat thread, on a connection of its own, extends the lease of
the step running now, so a step that takes longer than its lease is not handed to another
worker. Steps of a batch waiting their turn are not extended: each is renewed when its turn
comes, and skipped if its lease ran out meanwhile, so an executor that hangs holds only its own
step, never the rest of its batch (keep `limit` x a step's usual time within `lease`). A report refused with `lease_expired` means another worker took the step over: the
worker logs it and goes on.

At-least-once: a step can be executed more than once (a worker killed after the outside work and
before its report; a lease that ran out). Executors must be idempotent, keyed by the step's
`transaction_id` (the same for every attempt), e.g. as the idempotency key of a PSP call.

What an executor's exception means:
  - `Retryable`: the attempt failed and may succeed later (`cte_fail_transaction(retryable =>
    true)`); for a compensation, nothing is reported and the step is claimed again once its
    lease runs out.
  - `Permanent`: the work cannot succeed (a declined card): the step fails for good and its
    event compensates (`retryable => false`), or the compensation is reported failed and the
    event is left `failed` for an operator.
  - any other exception: the outcome is unknown (a timeout after the PSP may have acted), so it
    is treated as `Retryable`: the next attempt, idempotent by `transaction_id`, finds out.
"""

from __future__ import annotations

import datetime
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Union

import psycopg

from cte_ctel import _sql
from cte_ctel._errors import LeaseExpired
from cte_ctel.errors import Refused
from cte_ctel.money import jsonb

log = logging.getLogger("cte_ctel.worker")

Connect = Union[str, Callable[[], psycopg.Connection]]


@dataclass(frozen=True)
class Step:
    """One claimed step, as `cte_claim_steps` hands it out.

    `phase` is `execute` or `compensate`; `result` is the execution's result (for a
    compensation); `attempt` counts the step's attempts (for `execute`, this one's number);
    `lease_token` is what the reports carry. `transaction_id` is the idempotency key."""

    transaction_id: uuid.UUID
    event_id: uuid.UUID
    type: str
    phase: str
    payload: Any
    result: Any
    attempt: int
    lease_token: uuid.UUID


class Executor:
    """The work of one step type, run by the application. Both methods must be idempotent by
    `step.transaction_id`; they return the result to keep (a JSON object, amounts as Decimal)
    or None."""

    def execute(self, step: Step) -> Optional[Mapping[str, Any]]:
        raise NotImplementedError

    def compensate(self, step: Step) -> Optional[Mapping[str, Any]]:
        """Undo what `execute` did; the default has nothing to undo."""
        return None


class Retryable(Exception):
    """Raised by an executor: this attempt failed, a later one may succeed."""


class Permanent(Exception):
    """Raised by an executor: the work cannot succeed; fail the step for good."""


def _connect(connect: Connect) -> psycopg.Connection:
    conn = psycopg.connect(connect, autocommit=True) if isinstance(connect, str) else connect()
    conn.autocommit = True  # each claim, report and extension commits on its own
    return conn


class _Heartbeat(threading.Thread):
    """Extends the leases the worker holds, every third of a lease, on its own connection."""

    def __init__(self, connect: Connect, lease: datetime.timedelta) -> None:
        super().__init__(name="cte_ctel-heartbeat", daemon=True)
        self.connect = connect
        self.lease = lease
        self.held: dict[uuid.UUID, uuid.UUID] = {}
        self.lock = threading.Lock()  # held during a round, so a removal waits for it
        self.stopping = threading.Event()

    def hold(self, step: Step) -> None:
        with self.lock:
            self.held[step.transaction_id] = step.lease_token

    def drop(self, step: Step) -> None:
        with self.lock:
            self.held.pop(step.transaction_id, None)

    def run(self) -> None:
        interval = self.lease.total_seconds() / 3
        conn: Optional[psycopg.Connection] = None
        try:
            while not self.stopping.wait(interval):
                if conn is None or conn.closed:
                    conn = _connect(self.connect)
                with self.lock:
                    self._extend_all(conn)
        except psycopg.Error as error:
            log.error("heartbeat stopped: %s", error)
        finally:
            if conn is not None:
                conn.close()

    def _extend_all(self, conn: psycopg.Connection) -> None:
        for transaction_id, token in list(self.held.items()):
            try:
                _sql.value(conn, "SELECT cte_ctel.cte_extend_lease(%s, %s, %s)",
                           (transaction_id, token, self.lease))
            except LeaseExpired as error:
                log.warning("lease on %s lost: %s", transaction_id, error)
                del self.held[transaction_id]


class Worker:
    """Claims steps of the hosted types in `executors` (type name -> Executor), runs them and
    reports. `connect` is a conninfo string or a function returning a new connection."""

    def __init__(self, connect: Connect, executors: Mapping[str, Executor], worker_name: str,
                 lease: datetime.timedelta = datetime.timedelta(seconds=30), limit: int = 10,
                 heartbeat: bool = True) -> None:
        assert len(executors) > 0, "a worker hosts at least one step type"
        assert lease >= datetime.timedelta(seconds=1), "the server refuses a shorter lease"
        self.connect = connect
        self.executors = dict(executors)
        self.worker_name = worker_name
        self.lease = lease
        self.limit = limit
        self.heartbeat = heartbeat
        self._conn: Optional[psycopg.Connection] = None

    @property
    def conn(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = _connect(self.connect)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def claim(self) -> list[Step]:
        """Claims up to `limit` steps, in a transaction of its own that commits at once."""
        rows = _sql.rows(self.conn,
                         "SELECT transaction_id, event_id, type, phase, payload, result,"
                         " attempt, lease_token FROM cte_ctel.cte_claim_steps(%s, %s, %s, %s)",
                         (sorted(self.executors), self.worker_name, self.lease, self.limit))
        return [Step(*row) for row in rows]

    def run_once(self) -> int:
        """Claims a batch, executes or compensates each step and reports it; returns how many
        steps were claimed (0: nothing waits)."""
        steps = self.claim()
        if not steps:
            return 0
        beat = _Heartbeat(self.connect, self.lease) if self.heartbeat else None
        if beat is not None:
            beat.start()
        try:
            for index, step in enumerate(steps):
                # The first step's lease is fresh from the claim; a later one waited its turn
                # unextended, so it is renewed first, or skipped if it ran out meanwhile.
                self.process(step, beat, renew=index > 0)
        finally:
            if beat is not None:
                beat.stopping.set()
                beat.join()
        return len(steps)

    def run_forever(self, stop: threading.Event, idle: float = 1.0) -> None:
        """Runs batches until `stop` is set, waiting `idle` seconds when nothing waits; a lost
        connection is logged and opened again on the next round."""
        while not stop.is_set():
            try:
                claimed = self.run_once()
            except psycopg.OperationalError as error:
                log.error("worker %s: %s; connecting again", self.worker_name, error)
                self.close()
                claimed = 0
            if claimed == 0:
                stop.wait(idle)

    def process(self, step: Step, beat: Optional[_Heartbeat] = None, renew: bool = False) -> str:
        """Runs one claimed step and reports it; returns what happened (`completed`, `retry`,
        `failed`, `compensated`, `compensation_failed`, `released`, `lease_lost`, `refused`).
        With `renew`, the lease is extended first and the step skipped (`lease_lost`, nothing
        executed) if it already ran out. While it runs, `beat` extends its lease."""
        executor = self.executors[step.type]
        work = executor.execute if step.phase == "execute" else executor.compensate
        assert step.phase in ("execute", "compensate"), step.phase
        if renew and not self._renew(step):
            return "lease_lost"
        if beat is not None:
            beat.hold(step)
        try:
            result = work(step)
            outcome, sql, params = self._report_success(step, result)
        except Permanent as error:
            outcome, sql, params = self._report_failure(step, error, retryable=False)
        except Exception as error:  # noqa: BLE001  (an unknown outcome is a try-again failure)
            log.warning("step %s (%s, attempt %s) failed: %r", step.transaction_id, step.phase,
                        step.attempt, error, exc_info=not isinstance(error, Retryable))
            outcome, sql, params = self._report_failure(step, error, retryable=True)
        if beat is not None:
            beat.drop(step)
        if sql is None:
            return outcome
        return self._report(step, outcome, sql, params)

    def _renew(self, step: Step) -> bool:
        """Extends the lease of a step about to start; False if it ran out (the step may be
        another worker's by now)."""
        try:
            _sql.value(self.conn, "SELECT cte_ctel.cte_extend_lease(%s, %s, %s)",
                       (step.transaction_id, step.lease_token, self.lease))
        except LeaseExpired as error:
            log.warning("step %s waited past its lease, skipped: %s", step.transaction_id, error)
            return False
        return True

    def _report_success(self, step: Step, result: Any) -> tuple[str, str, tuple]:
        if step.phase == "execute":
            return ("completed", "SELECT cte_ctel.cte_complete_transaction(%s, %s, %s)",
                    (step.transaction_id, jsonb(result), step.lease_token))
        return ("compensated", "SELECT cte_ctel.cte_complete_compensation(%s, %s, %s)",
                (step.transaction_id, jsonb(result), step.lease_token))

    def _report_failure(self, step: Step, error: Exception,
                        retryable: bool) -> tuple[str, Optional[str], tuple]:
        text = f"{type(error).__name__}: {error}"
        if step.phase == "execute":
            return ("retry" if retryable else "failed",
                    "SELECT cte_ctel.cte_fail_transaction(%s, %s, %s, %s)",
                    (step.transaction_id, text, retryable, step.lease_token))
        if retryable:
            # No report: the lease runs out and the compensation is claimed again.
            return ("released", None, ())
        return ("compensation_failed", "SELECT cte_ctel.cte_fail_compensation(%s, %s, %s)",
                (step.transaction_id, text, step.lease_token))

    def _report(self, step: Step, outcome: str, sql: str, params: tuple) -> str:
        try:
            _sql.value(self.conn, sql, params)
        except LeaseExpired as error:
            log.warning("step %s was taken over, its report dropped: %s",
                        step.transaction_id, error)
            return "lease_lost"
        except Refused as error:
            log.error("report of step %s refused: %s", step.transaction_id, error)
            return "refused"
        return outcome
