"""Money is Decimal: a float amount is refused with TypeError before any SQL is sent, ints are
exact and accepted, and amounts come back as Decimal (columns and JSON alike)."""

from decimal import Decimal

import pytest

import cte_ctel
from cte_ctel import money


class NoSql:
    """A connection that fails the test if anything is sent through it."""

    def cursor(self, *args, **kwargs):
        pytest.fail("SQL was sent for a float amount")

    def execute(self, *args, **kwargs):
        pytest.fail("SQL was sent for a float amount")


@pytest.mark.parametrize("call", [
    lambda ledger: ledger.deposit("a", 10.5, "USD"),
    lambda ledger: ledger.transfer("a", "b", 0.1, "USD"),
    lambda ledger: ledger.hold("a", 1.0, "USD"),
    lambda ledger: ledger.capture("00000000-0000-0000-0000-000000000000", "b", 2.5),
    lambda ledger: ledger.reverse_event("00000000-0000-0000-0000-000000000000", "r", 0.5),
    lambda ledger: ledger.run_event("e", [{"name": "s", "type": "wallet.deposit",
                                           "payload": {"amount": 1.5}}]),
    lambda ledger: ledger.transfer("a", "b", Decimal(1), "USD", metadata={"fee": 0.3}),
    lambda ledger: ledger.deposit("a", "10", "USD"),
    lambda ledger: ledger.deposit("a", True, "USD"),
])
def test_float_amounts_raise_type_error_before_any_sql(call):
    with pytest.raises(TypeError):
        call(cte_ctel.Ledger(NoSql()))


def test_json_carries_amounts_as_decimal_strings_and_reads_them_back_as_decimal():
    assert money.dumps({"amount": Decimal("100.50"), "n": 3}) == '{"amount": "100.50", "n": 3}'
    assert money.loads('{"amount": 100.50}') == {"amount": Decimal("100.50")}
    assert money.amount(7) == Decimal(7)


def test_amounts_read_back_are_decimal(ledger, wallets):
    accounts = wallets(alice=Decimal("100.10"), bob=7)
    ledger.transfer(accounts["alice"], accounts["bob"], Decimal("0.10"), "USD")
    balance = ledger.balance(accounts["bob"], "USD")
    assert isinstance(balance, Decimal) and balance == Decimal("7.10")
    assert ledger.available_balance(accounts["alice"], "USD") == Decimal("100.00")
