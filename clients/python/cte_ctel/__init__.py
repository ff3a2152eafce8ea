"""Python client of cte_ctel, a wallet ledger with a saga engine inside PostgreSQL.

- `Ledger(conn)`: deposits, transfers (one, or many with `transfers`), balances, events,
  refunds, liens; Decimal only.
- `Worker`, `Executor`, `Step`: steps of types the application hosts, claimed under leases.
- `Consumer`: a named consumer of the change feed.
- Errors: `CteError` > `Refused` > one class per reason (`InsufficientFunds`, ...),
  `PermissionDenied`; `TryAgain` for 40001, 40P01, 55P03; `convert` for a psycopg error.
"""

from cte_ctel._errors import *  # noqa: F401,F403  (one class per reason of the catalog)
from cte_ctel._errors import CATALOG
from cte_ctel.consumer import Change, Consumer
from cte_ctel.errors import (TRY_AGAIN_SQLSTATES, CteError, PermissionDenied, Refused, TryAgain,
                             convert, translated)
from cte_ctel.ledger import EventRun, Ledger, TransferItem, TransferOutcome
from cte_ctel.money import dumps, loads
from cte_ctel.worker import Executor, Permanent, Retryable, Step, Worker

__version__ = "0.3.0"

__all__ = [
    "CATALOG", "Change", "Consumer", "CteError", "EventRun", "Executor", "Ledger", "Permanent",
    "PermissionDenied", "Refused", "Retryable", "Step", "TRY_AGAIN_SQLSTATES", "TransferItem",
    "TransferOutcome", "TryAgain", "Worker", "convert", "dumps", "loads", "translated",
] + [cls.__name__ for _, cls in CATALOG.values()]
