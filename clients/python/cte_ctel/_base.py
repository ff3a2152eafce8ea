"""The exception classes the generated `_errors.py` builds on (kept apart from `errors.py`,
which imports the generated module)."""

from __future__ import annotations

from typing import Optional


class CteError(Exception):
    """An error the ledger raised, with what the server said about it.

    `message`, `detail` and `hint` are the server's; `sqlstate` its code; `reason` the catalog's
    reason read from the DETAIL (None when the error has none). The psycopg error is `__cause__`.
    """

    sqlstate: Optional[str] = None
    reason: Optional[str] = None

    def __init__(self, message: str, *, sqlstate: Optional[str] = None,
                 reason: Optional[str] = None, detail: Optional[str] = None,
                 hint: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        if sqlstate is not None:
            self.sqlstate = sqlstate
        if reason is not None:
            self.reason = reason
        self.detail = detail
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.sqlstate}: {self.message}"
        if self.hint:
            text += f" (HINT: {self.hint})"
        return text


class Refused(CteError):
    """The ledger refused the call and changed nothing (class L0, or 42501)."""


class PermissionDenied(Refused):
    """42501: the role may not do this (cancel another role's event, read outside tenancy, or
    call a function it has no grant for). Outside the L0 catalog."""

    sqlstate = "42501"
    reason = "permission_denied"


class TryAgain(CteError):
    """40001, 40P01 or 55P03: the call lost a race; sending it again is safe and may succeed."""
