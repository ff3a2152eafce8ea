"""The client's exceptions, and the one function that turns a psycopg error into them.

A refusal of the ledger (SQLSTATE class L0, `DETAIL: reason: <reason>`) changed nothing; each
reason has its own class, generated into `_errors.py` from the server's catalog. `42501` with
reason `permission_denied` is a refusal outside the catalog. `40001`, `40P01` and `55P03` are not
refusals but "try again" (`TryAgain`). Anything else is left as the psycopg error it is.
"""

from __future__ import annotations

import re
from typing import Optional

import psycopg

from cte_ctel._base import CteError, PermissionDenied, Refused, TryAgain  # noqa: F401
from cte_ctel._errors import CATALOG

#: Errors that mean "send the same call again": a serialization failure, a deadlock, a lock that
#: could not be taken now. Every keyed call of the ledger is safe to send again.
TRY_AGAIN_SQLSTATES = frozenset({"40001", "40P01", "55P03"})

_REASON = re.compile(r"^reason: ([a-z_]+)$")


_BY_SQLSTATE = {sqlstate: cls for sqlstate, cls in CATALOG.values()}


def reason_of(detail: Optional[str]) -> Optional[str]:
    """The reason a DETAIL names (`reason: insufficient_funds`), or None."""
    match = _REASON.match(detail or "")
    return match.group(1) if match else None


def convert(error: psycopg.Error) -> Exception:
    """The client exception for a psycopg error: the reason's class for a refusal whose SQLSTATE
    and DETAIL agree with the catalog, `Refused` for a refusal this client does not know (a newer
    server), `PermissionDenied` for 42501, `TryAgain` for a race lost, else the error itself."""
    diag = error.diag
    sqlstate = diag.sqlstate or ""
    message = diag.message_primary or str(error)
    reason = reason_of(diag.message_detail)
    fields = dict(sqlstate=sqlstate, reason=reason, detail=diag.message_detail,
                  hint=diag.message_hint)
    if sqlstate.startswith("L0"):
        known = _BY_SQLSTATE.get(sqlstate)
        if known is not None and known.reason == reason:
            return known(message, **fields)
        return Refused(message, **fields)
    if sqlstate == "42501":
        fields["reason"] = reason or "permission_denied"
        return PermissionDenied(message, **fields)
    if sqlstate in TRY_AGAIN_SQLSTATES:
        return TryAgain(message, **fields)
    return error


class translated:
    """`with translated(): cur.execute(...)` raises the client's exception for a psycopg error,
    the psycopg error as its `__cause__`."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> bool:
        if isinstance(error, psycopg.Error):
            converted = convert(error)
            if converted is not error:
                raise converted from error
        return False
