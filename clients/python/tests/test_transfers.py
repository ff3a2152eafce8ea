"""`Ledger.transfers` (`cte_transfers`): items posted, refused or replayed each on its own."""

from __future__ import annotations

from decimal import Decimal

import pytest

import cte_ctel
from cte_ctel import TransferItem

from test_money import NoSql

USD = "USD"


def test_a_refused_item_in_the_middle_undoes_nothing_of_the_others(ledger, wallets, name):
    w = wallets(alice=Decimal("10.00"), bob=0, carol=0)
    items = [
        TransferItem(w["alice"], w["bob"], Decimal("4.00"), USD, f"t1-{name}"),
        TransferItem(w["alice"], w["carol"], Decimal("100.00"), USD, f"t2-{name}"),
        TransferItem(w["alice"], w["carol"], Decimal("5.50"), USD, f"t3-{name}",
                     {"order": "o-3"}),
    ]
    outcomes = ledger.transfers(items)
    assert [o.status for o in outcomes] == ["posted", "refused", "posted"]
    assert outcomes[1].reason == "insufficient_funds"
    assert outcomes[1].refusal is cte_ctel.InsufficientFunds and outcomes[1].event_id is None
    assert outcomes[0].refusal is None and outcomes[0].event_id is not None
    assert ledger.balance(w["alice"], USD) == Decimal("0.50")
    assert ledger.balance(w["bob"], USD) == Decimal("4.00")
    assert ledger.balance(w["carol"], USD) == Decimal("5.50")

    # Sent again, the posted items are replays of their first events and move nothing; the
    # refused one kept no key and is tried again (and refused again: the money is not there).
    again = ledger.transfers(items)
    assert [o.status for o in again] == ["replayed", "refused", "replayed"]
    assert [again[0].event_id, again[2].event_id] == [outcomes[0].event_id, outcomes[2].event_id]
    assert ledger.balance(w["alice"], USD) == Decimal("0.50")
    assert ledger.balance(w["carol"], USD) == Decimal("5.50")


def test_amounts_stay_exact_and_a_float_is_refused_before_any_sql(ledger, wallets, name):
    w = wallets(alice=Decimal("1.00"), bob=0)
    tenths = [TransferItem(w["alice"], w["bob"], Decimal("0.10"), USD) for _ in range(3)]
    assert [o.status for o in ledger.transfers(tenths)] == ["posted"] * 3
    assert ledger.balance(w["bob"], USD) == Decimal("0.30")
    with pytest.raises(TypeError):
        cte_ctel.Ledger(NoSql()).transfers([TransferItem("a", "b", 0.1, USD)])


def test_an_item_the_server_refuses_for_its_shape_names_its_reason(ledger, wallets):
    w = wallets(alice=Decimal("1.00"))
    outcomes = ledger.transfers([TransferItem(w["alice"], w["alice"], Decimal("0.10"), USD),
                                 TransferItem(w["alice"], "nobody-at-all", 1, USD)])
    assert [o.reason for o in outcomes] == ["same_account", "account_unknown"]
    assert ledger.balance(w["alice"], USD) == Decimal("1.00")
