"""Refusals arrive as their own classes, keep the server's message, DETAIL and HINT, and change
nothing; the generated class table agrees with the live catalog."""

import pathlib
from decimal import Decimal

import psycopg
import pytest

import cte_ctel
from cte_ctel import generate_errors


def test_generated_module_matches_the_live_catalog(admin_dsn):
    path = pathlib.Path(generate_errors.__file__).with_name("_errors.py")
    live = generate_errors.render(generate_errors.read_catalog(admin_dsn))
    assert path.read_text(encoding="utf-8") == live, (
        "cte_ctel/_errors.py is out of date: run python3 -m cte_ctel.generate_errors DSN")


def test_every_reason_has_a_refused_class_named_after_it():
    for reason, (sqlstate, cls) in cte_ctel.CATALOG.items():
        assert issubclass(cls, cte_ctel.Refused) and issubclass(cls, cte_ctel.CteError)
        assert cls.__name__ == "".join(word.capitalize() for word in reason.split("_"))
        assert getattr(cte_ctel, cls.__name__) is cls
        assert (cls.sqlstate, cls.reason) == (sqlstate, reason)


def test_overdraft_is_insufficient_funds_and_changes_nothing(ledger, wallets, name):
    accounts = wallets(alice=Decimal("10.00"), bob=0)
    with pytest.raises(cte_ctel.InsufficientFunds) as caught:
        ledger.transfer(accounts["alice"], accounts["bob"], Decimal("10.01"), "USD",
                        reference=f"over-{name}")
    error = caught.value
    assert error.sqlstate == "L0020" and error.reason == "insufficient_funds"
    assert error.detail == "reason: insufficient_funds" and error.message
    assert isinstance(error.__cause__, psycopg.Error)
    assert ledger.balance(accounts["alice"], "USD") == Decimal("10.00")
    assert ledger.balance(accounts["bob"], "USD") == Decimal("0.00")
    # The refused call left its key free: sent again with enough money, it posts.
    ledger.deposit(accounts["alice"], Decimal("1"), "USD")
    ledger.transfer(accounts["alice"], accounts["bob"], Decimal("10.01"), "USD",
                    reference=f"over-{name}")
    assert ledger.balance(accounts["bob"], "USD") == Decimal("10.01")


def test_key_reused_for_another_request_is_idempotency_conflict(ledger, wallets, name):
    accounts = wallets(alice=Decimal("50"), bob=0)
    first = ledger.transfer(accounts["alice"], accounts["bob"], Decimal("5"), "USD",
                            reference=f"p2p-{name}")
    assert ledger.transfer(accounts["alice"], accounts["bob"], Decimal("5.00"), "USD",
                           reference=f"p2p-{name}") == first  # a replay
    with pytest.raises(cte_ctel.IdempotencyConflict) as caught:
        ledger.transfer(accounts["alice"], accounts["bob"], Decimal("6"), "USD",
                        reference=f"p2p-{name}")
    assert str(first) in (caught.value.hint or "")
    assert ledger.balance(accounts["bob"], "USD") == Decimal("5.00")


def test_run_event_key_conflict_and_replay(ledger, wallets, name):
    accounts = wallets(alice=Decimal("20"), bob=0)
    steps = [{"name": "pay", "type": "wallet.transfer",
              "payload": {"source_account_id": accounts["alice"],
                          "destination_account_id": accounts["bob"],
                          "amount": Decimal("2.50"), "currency": "USD"}}]
    run = ledger.run_event("pay", steps, idempotency_key=f"run-{name}")
    assert (run.status, run.replayed) == ("completed", False)
    again = ledger.run_event("pay", steps, idempotency_key=f"run-{name}")
    assert (again.event_id, again.replayed) == (run.event_id, True)
    steps[0]["payload"]["amount"] = Decimal("3")
    with pytest.raises(cte_ctel.IdempotencyConflict):
        ledger.run_event("pay", steps, idempotency_key=f"run-{name}")
    assert ledger.balance(accounts["bob"], "USD") == Decimal("2.50")


@pytest.mark.parametrize("call, refusal", [
    (lambda ledger, a: ledger.transfer(a["alice"], "nobody-x", Decimal(1), "USD"),
     cte_ctel.AccountUnknown),
    (lambda ledger, a: ledger.deposit(a["alice"], Decimal("1.001"), "USD"),
     cte_ctel.AmountScaleExceeded),
    (lambda ledger, a: ledger.deposit(a["alice"], Decimal(0), "USD"),
     cte_ctel.AmountNotPositive),
    (lambda ledger, a: ledger.deposit(a["alice"], Decimal("NaN"), "USD"),
     cte_ctel.AmountNotFinite),
    (lambda ledger, a: ledger.transfer(a["alice"], a["alice"], Decimal(1), "USD"),
     cte_ctel.SameAccount),
    (lambda ledger, a: ledger.capture(
        ledger.hold(a["alice"], Decimal(2), "USD"), a["bob"], Decimal(3)),
     cte_ctel.CaptureExceedsLien),
])
def test_refusals_map_to_their_classes_and_change_nothing(ledger, wallets, call, refusal):
    accounts = wallets(alice=Decimal("10"), bob=0)
    with pytest.raises(refusal):
        call(ledger, accounts)
    assert ledger.balance(accounts["bob"], "USD") == Decimal("0.00")
    assert ledger.balance(accounts["alice"], "USD") == Decimal("10.00")


def test_cancel_by_another_role_is_permission_denied(ledger, admin, wallets, name):
    accounts = wallets(alice=Decimal("10"))
    role = f"py_other_{name}"
    admin.execute(f"CREATE ROLE {role} NOLOGIN IN ROLE cte_operator")
    try:
        event = cte_ctel.Ledger(admin).run_event(
            "hold-open", [{"name": "wait", "type": "external", "payload": {}}]).event_id
        with pytest.raises(cte_ctel.PermissionDenied) as caught:
            with admin.transaction():
                admin.execute(f"SET LOCAL ROLE {role}")
                cte_ctel.Ledger(admin).cancel_event(event)
        assert caught.value.reason == "permission_denied"
        assert isinstance(caught.value, cte_ctel.Refused)
        assert ledger.event_status(event) == "waiting"
        assert cte_ctel.Ledger(admin).cancel_event(event) == "compensating"  # asked to undo
        assert accounts
    finally:
        admin.execute(f"DROP ROLE {role}")


def test_convert_recognises_try_again():
    class Diag:
        sqlstate, message_primary, message_detail, message_hint = "40001", "race", None, None

    class Fake(psycopg.errors.SerializationFailure):
        diag = Diag()

    converted = cte_ctel.convert(Fake("race"))
    assert isinstance(converted, cte_ctel.TryAgain) and converted.sqlstate == "40001"


def test_convert_keeps_an_unknown_or_mismatched_refusal_as_refused():
    def fake(sqlstate, detail):
        class Diag:
            message_primary, message_hint = "refused", "a hint"
        Diag.sqlstate, Diag.message_detail = sqlstate, detail
        error = psycopg.DatabaseError("refused")
        error.__class__ = type("Fake", (psycopg.DatabaseError,), {"diag": Diag()})
        return error

    newer = cte_ctel.convert(fake("L0999", "reason: from_a_newer_server"))
    assert type(newer) is cte_ctel.Refused and newer.reason == "from_a_newer_server"
    mismatched = cte_ctel.convert(fake("L0020", "reason: account_unknown"))
    assert type(mismatched) is cte_ctel.Refused and mismatched.hint == "a hint"
    assert type(cte_ctel.convert(fake("L0020", "reason: insufficient_funds"))) is \
        cte_ctel.InsufficientFunds
    unrelated = fake("23505", None)
    assert cte_ctel.convert(unrelated) is unrelated
