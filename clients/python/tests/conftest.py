"""Fixtures for the client's tests, against a live server with cte_ctel installed.

Two connection strings come from the environment (clients/python/run-tests.sh sets both):
CTE_CTEL_TEST_DSN, an application role that is not a superuser and holds only cte_operator (the
API is always called as that role), and CTE_CTEL_TEST_ADMIN_DSN, a superuser, for what an
administrator does (registering hosted types, running maintenance passes). Every name a test
makes (accounts, types, consumers, keys) carries a fresh suffix, so the suite can run again on
the same database.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cte_ctel  # noqa: E402

USD = "USD"


def _dsn(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} is not set (clients/python/run-tests.sh sets it)", returncode=2)
    return value


@pytest.fixture(scope="session")
def app_dsn() -> str:
    return _dsn("CTE_CTEL_TEST_DSN")


@pytest.fixture(scope="session")
def admin_dsn() -> str:
    return _dsn("CTE_CTEL_TEST_ADMIN_DSN")


@pytest.fixture(scope="session")
def admin(admin_dsn):
    """A superuser connection; maintenance passes retry due steps at once (backoff 0)."""
    conn = psycopg.connect(admin_dsn, autocommit=True)
    conn.execute("SET cte_ctel.retry_backoff_ms = 0")
    conn.execute("SELECT cte_ctel.cte_create_currency('USD', 2)")
    yield conn
    conn.close()


@pytest.fixture()
def conn(app_dsn, admin):
    conn = psycopg.connect(app_dsn, autocommit=True)
    # A retryable failure reported by the application is tried again at the next pass.
    conn.execute("SET cte_ctel.retry_backoff_ms = 0")
    yield conn
    conn.close()


@pytest.fixture()
def ledger(conn) -> cte_ctel.Ledger:
    return cte_ctel.Ledger(conn)


@pytest.fixture()
def name():
    """A fresh suffix for the names one test makes."""
    return uuid.uuid4().hex[:10]


@pytest.fixture()
def wallets(ledger, name):
    """Makes USD wallets `<label>-<suffix>`, each funded with the amount given."""

    def make(**funded: Decimal) -> dict[str, str]:
        made = {}
        for label, amount in funded.items():
            account = f"{label}-{name}"
            ledger.create_account(account, [USD])
            if amount:
                ledger.deposit(account, amount, USD)
            made[label] = account
        return made

    return make


@pytest.fixture()
def hosted_type(admin, name):
    """A step type the application hosts, registered by the administrator for this test."""
    type_name = f"py.t{name}"
    assert cte_ctel.Ledger(admin).register_external_type(type_name, "python client test")
    return type_name


def maintenance(admin) -> dict:
    """One maintenance pass as the administrator (ends leases that ran out, runs due retries,
    sequences the feed where no worker does)."""
    return admin.execute("SELECT cte_ctel.cte_run_maintenance()").fetchone()[0]


def wait_until(condition, admin, seconds: float = 10.0, what: str = "condition"):
    """Runs maintenance passes until `condition()` is true, or fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        maintenance(admin)
        time.sleep(0.05)


_terminal = {}


def pytest_configure(config):
    _terminal["config"] = config


def pytest_runtest_logreport(report):
    """One `ok - <test>` / `not ok - <test>` line per test, besides pytest's own summary: the
    form bin/test counts for every script suite."""
    if report.when != "call" and not report.failed:
        return
    reporter = _terminal["config"].pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    word = "not ok" if report.failed else "ok"
    suffix = f" ({report.when} failed)" if report.when != "call" else ""
    reporter.write_line(f"{word} - {report.nodeid}{suffix}")


def pytest_report_teststatus(report, config):
    """No progress letter ("."/"F"/"E"): each test has its own line above, which must start
    the line for bin/test to count it."""
    if report.when == "call" and report.passed:
        return "passed", "", "PASSED"
    if report.when == "call" and report.failed:
        return "failed", "", "FAILED"
    if report.failed:
        return "error", "", "ERROR"
    return None
