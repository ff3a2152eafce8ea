"""Running one statement the client's way: JSON read with Decimal, errors translated.

Kept apart so the ledger, the worker and the consumer share it; nothing here knows a function of
the ledger.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import psycopg
from psycopg.types.json import set_json_loads

from cte_ctel.errors import translated
from cte_ctel.money import loads


def cursor(conn: psycopg.Connection) -> psycopg.Cursor:
    """A cursor of `conn` that reads json and jsonb with Decimal, leaving the connection's own
    adapters as the caller set them."""
    cur = conn.cursor()
    set_json_loads(loads, cur)
    return cur


def rows(conn: psycopg.Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    with cursor(conn) as cur, translated():
        cur.execute(sql, params)
        return cur.fetchall()


def one(conn: psycopg.Connection, sql: str, params: Sequence[Any] = ()) -> Optional[tuple]:
    with cursor(conn) as cur, translated():
        cur.execute(sql, params)
        return cur.fetchone()


def value(conn: psycopg.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    row = one(conn, sql, params)
    return None if row is None else row[0]
