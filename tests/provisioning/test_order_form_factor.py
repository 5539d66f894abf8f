"""Orders carry their form factor: ``line add --form-factor``, ``FORM_FACTOR`` in a line
file, and provisioning checking the card against the order (multi-cut cards break out).

On SQLite and PostgreSQL; cards as data (the lab path is covered by the bench tests).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from apdu.errors import UsageError
from provisioning.audit import Actor
from provisioning.database import Database
from provisioning.errors import CheckFailedError, InputFileError, LifecycleError
from provisioning.lifecycle import (
    FormFactor,
    FunctionClass,
    NetworkType,
    Rule,
    card_serves,
    orders_served,
)
from provisioning.lines import LineSpec, add_line, import_lines
from provisioning.records import show_line
from provisioning.secrets import Keyring
from provisioning.stock import import_stock
from provisioning.workflows import provision
from tests.provisioning.helpers import Stock, chip, snapshot

D, K, I = NetworkType.D, NetworkType.K, NetworkType.I  # noqa: E741 - the operator's names
DATA, SMS, VOICE = FunctionClass.DATA, FunctionClass.SMS, FunctionClass.VOICE
STANDARD, MICRO, NANO, MULTI = (
    FormFactor.STANDARD,
    FormFactor.MICRO,
    FormFactor.NANO,
    FormFactor.MULTI,
)


@pytest.mark.parametrize(
    ("card", "wanted", "network_type", "function", "serves"),
    [
        (NANO, NANO, D, DATA, True),
        (NANO, MICRO, D, DATA, False),
        (MULTI, NANO, D, DATA, True),
        (MULTI, STANDARD, D, VOICE, True),
        (MULTI, NANO, I, DATA, True),
        (MULTI, MICRO, I, DATA, False),  # type I offers multi and nano only
        (MULTI, NANO, K, SMS, False),  # type K offers multi only
        (MULTI, MULTI, K, VOICE, True),
        (MICRO, MULTI, D, DATA, False),  # a single size never serves a multi order
    ],
)
def test_card_serves_the_order(
    card: FormFactor,
    wanted: FormFactor,
    network_type: NetworkType,
    function: FunctionClass,
    serves: bool,
) -> None:
    assert card_serves(card, wanted, network_type, function) is serves


def test_orders_served_by_a_card() -> None:
    assert orders_served(I, MULTI) == {DATA: frozenset({MULTI, NANO})}
    assert orders_served(K, MULTI) == {SMS: frozenset({MULTI}), VOICE: frozenset({MULTI})}
    assert orders_served(D, NANO) == {f: frozenset({NANO}) for f in (DATA, SMS, VOICE)}
    assert orders_served(I, MICRO) == {}


def _spec(code: str, form_factor: str | None, network_type: str = "D") -> LineSpec:
    return LineSpec.parse(
        service_code=code,
        msisdn=None,
        customer="MA100",
        network_type=network_type,
        function_class="sms" if network_type == "K" else "data",
        form_factor=form_factor,
    )


def test_an_order_in_a_size_its_type_does_not_offer_is_refused() -> None:
    with pytest.raises(LifecycleError) as refusal:
        _spec("hdd8000001", "nano", network_type="K")
    assert refusal.value.rule == Rule.ALLOWED_COMBINATION
    assert _spec("hdd8000001", "NANO").form_factor is NANO
    assert _spec("hdd8000001", None).form_factor is None


def test_line_file_form_factor_column(database: Database, actor: Actor, tmp_path: Path) -> None:
    good = tmp_path / "lines.csv"
    good.write_text(
        "SERVICE_CODE,MSISDN,CUSTOMER,TYPE,FUNCTION,FORM_FACTOR\n"
        "hdd8000011,,MA100,D,data,nano\n"
        "hdd8000012,,MA100,D,data,\n"
    )
    assert import_lines(database, actor, good).added == 2
    assert show_line(database, "hdd8000011").form_factor == "nano"
    assert import_lines(database, actor, good).unchanged == 2
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "SERVICE_CODE,MSISDN,CUSTOMER,TYPE,FUNCTION,FORM_FACTOR\n"
        "hdd8000013,,MA100,D,data,tiny\n"
        "hdd8000014,,MA100,K,sms,nano\n"
    )
    with pytest.raises(InputFileError) as error:
        import_lines(database, actor, bad)
    problems = {(p.line, p.field) for p in error.value.problems}
    assert problems == {(2, "FORM_FACTOR"), (3, "TYPE")}


@pytest.fixture
def shelves(
    database: Database, keyring: Keyring, actor: Actor, stock: Callable[..., Stock]
) -> dict[FormFactor, Stock]:
    made = {
        NANO: stock(2, first_serial=400, form_factor=NANO),
        MICRO: stock(2, first_serial=500, form_factor=MICRO),
        MULTI: stock(2, first_serial=600, form_factor=MULTI),
    }
    for shelf in made.values():
        import_stock(database, keyring, actor, shelf.path)
    return made


def test_provision_checks_the_card_against_the_order(
    database: Database, keyring: Keyring, actor: Actor, shelves: dict[FormFactor, Stock]
) -> None:
    add_line(database, actor, _spec("hdd8000021", "nano"))
    add_line(database, actor, _spec("hdd8000022", "nano"))
    add_line(database, actor, _spec("hdd8000023", None))

    before = snapshot(database)
    calls: list[str] = []
    with pytest.raises(CheckFailedError) as refusal:
        provision(
            database,
            actor,
            service_code="hdd8000021",
            card=chip(shelves[MICRO].row(0), calls=calls),
            keyring=keyring,
        )
    assert refusal.value.rule == Rule.FORM_FACTOR_MATCH
    assert "ensure_default_pin" not in calls
    assert snapshot(database) == before

    with pytest.raises(LifecycleError) as contradiction:
        provision(
            database,
            actor,
            service_code="hdd8000021",
            form_factor=MICRO,
            card=chip(shelves[NANO].row(0)),
            keyring=keyring,
        )
    assert contradiction.value.rule == Rule.FORM_FACTOR_MATCH
    assert snapshot(database) == before

    with pytest.raises(UsageError, match="names no form factor"):
        provision(
            database,
            actor,
            service_code="hdd8000023",
            card=chip(shelves[NANO].row(0)),
            keyring=keyring,
        )

    exact = provision(
        database, actor, service_code="hdd8000021", card=chip(shelves[NANO].row(0)), keyring=keyring
    )
    assert exact.form_factor is NANO
    multi = provision(
        database,
        actor,
        service_code="hdd8000022",
        card=chip(shelves[MULTI].row(0)),
        keyring=keyring,
    )
    assert multi.form_factor is NANO
    assert any("multi-cut" in c.detail for c in multi.checks)
    given = provision(
        database,
        actor,
        service_code="hdd8000023",
        form_factor=MICRO,
        card=chip(shelves[MICRO].row(0)),
        keyring=keyring,
    )
    assert given.form_factor is MICRO
