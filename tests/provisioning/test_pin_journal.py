"""A failed provision never costs a PIN attempt (lab cards through real pcscd + vpcd).

A card whose vendor PIN1 is not 0000 gets PIN1 changed to 0000 during
provisioning. Whatever fails after that change (a silent router, a crash right
after the card answered, another station binding the line first, the
database), the retry must prove the card's PIN without spending an attempt:
PIN1 stays at 3 retries.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from apdu.card import read_card
from apdu.transport.pcsc import PcscTransport
from apdu.virtual import CardProfile
from modem.errors import ModemError
from modem.profiles import resolve_profile
from provisioning import workflows
from provisioning.audit import Actor
from provisioning.cardfacts import PinOutcome
from provisioning.database import Database
from provisioning.devices import BundledModem
from provisioning.errors import CheckFailedError, ConcurrentChangeError, DatabaseError
from provisioning.labstock import write_stock_file
from provisioning.lifecycle import FormFactor
from provisioning.lines import LineSpec, add_line
from provisioning.models import AuditEvent, PinJournal, PinJournalState
from provisioning.reader import ReaderCard
from provisioning.secrets import Keyring
from provisioning.stock import import_stock
from provisioning.workflows import provision

pytestmark = pytest.mark.lab

VENDOR_PIN = "4826"
ACTOR = Actor(operator="sato", station="bench-9")
OTHER = Actor(operator="ito", station="bench-10")


@pytest.fixture
def silent_router() -> Iterator[str]:
    """A serial port whose router never answers: a pty nobody reads."""
    controller, device = os.openpty()
    try:
        yield os.ttyname(device)
    finally:
        os.close(device)
        os.close(controller)


class Bench:
    """A SQLite line database with one vendor card in stock and pending lines."""

    def __init__(self, tmp_path: Path, profile: CardProfile) -> None:
        self.path = tmp_path / "lines.db"
        self.database = Database(str(self.path))
        self.database.init()
        self.keyring = Keyring(key_file=tmp_path / "secrets.key")
        self.profile = profile
        stock = tmp_path / "stock.csv"
        write_stock_file(stock, [profile])
        import_stock(self.database, self.keyring, ACTOR, stock)
        for code, msisdn in (("hdd7100001", "07071000001"), ("hdd7100002", "07071000002")):
            add_line(
                self.database,
                ACTOR,
                LineSpec.parse(
                    service_code=code,
                    msisdn=msisdn,
                    customer="MA71",
                    network_type="D",
                    function_class="data",
                ),
            )

    def provision(self, reader: str, code: str, **kwargs: Any) -> workflows.BindResult:
        with PcscTransport(reader) as transport:
            return provision(
                self.database,
                kwargs.pop("actor", ACTOR),
                service_code=code,
                form_factor=FormFactor(self.profile.form_factor),
                card=ReaderCard(transport),
                keyring=self.keyring,
                **kwargs,
            )

    def journal(self) -> PinJournalState | None:
        with self.database.read() as session:
            return session.execute(select(PinJournal.state)).scalar_one_or_none()

    def pin_events(self) -> list[str]:
        with self.database.read() as session:
            return list(
                session.execute(
                    select(AuditEvent.result)
                    .where(AuditEvent.action == "pin1-ensure-default")
                    .order_by(AuditEvent.seq)
                ).scalars()
            )


def pin1_retries(reader: str) -> int | None:
    """PIN1's counter after a warm reset (a verified PIN hides its counter)."""
    with PcscTransport(reader) as transport:
        transport.reset()
        return read_card(transport).pins["pin1"].retries


@pytest.fixture
def vendor_card(fresh_card: Any) -> tuple[str, CardProfile]:
    """A fresh lab card whose vendor PIN1 is not the default."""
    _reader, base = fresh_card()
    return fresh_card(dataclasses.replace(base, pin1=VENDOR_PIN))  # type: ignore[no-any-return]


def test_silent_router_then_retry_keeps_three_retries(
    vendor_card: tuple[str, CardProfile], tmp_path: Path, silent_router: str
) -> None:
    reader, profile = vendor_card
    bench = Bench(tmp_path, profile)
    router = BundledModem(silent_router, resolve_profile("ijmio"), dialect="quectel", timeout=0.3)
    with pytest.raises(ModemError):
        bench.provision(reader, "hdd7100001", bundled_modem=router)
    assert bench.journal() is PinJournalState.AT_DEFAULT
    assert pin1_retries(reader) == 3
    result = bench.provision(reader, "hdd7100001")
    assert result.pin.outcome == "already-default"
    assert pin1_retries(reader) == 3
    assert bench.pin_events() == ["changed-to-default"]


def test_crash_after_the_card_changed(
    vendor_card: tuple[str, CardProfile], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The station dies between the card's 9000 and the journal's 'at-default'."""
    reader, profile = vendor_card
    bench = Bench(tmp_path, profile)
    real_set = workflows._set_journal

    def crash_on_resolve(
        database: Database, actor: Actor, card_id: int, state: Any, *rest: Any
    ) -> None:
        if state is PinJournalState.AT_DEFAULT:
            raise KeyboardInterrupt  # as abrupt as it gets inside the process
        real_set(database, actor, card_id, state, *rest)

    monkeypatch.setattr(workflows, "_set_journal", crash_on_resolve)
    with pytest.raises(KeyboardInterrupt):
        bench.provision(reader, "hdd7100001")
    monkeypatch.undo()
    assert bench.journal() is PinJournalState.CHANGING
    result = bench.provision(reader, "hdd7100001")
    assert result.pin.outcome == "already-default"
    assert pin1_retries(reader) == 3
    assert bench.journal() is PinJournalState.AT_DEFAULT


def test_crash_before_the_card_changed_costs_nothing_beyond_one_probe(
    vendor_card: tuple[str, CardProfile], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Intent committed, card never touched: the retry's 0000 probe is refused and
    the station stops for a person instead of guessing again."""
    reader, profile = vendor_card
    bench = Bench(tmp_path, profile)

    class Unplugged(ReaderCard):
        def ensure_default_pin(self, known_pin: str | None) -> PinOutcome:
            raise KeyboardInterrupt

    with PcscTransport(reader) as transport, pytest.raises(KeyboardInterrupt):
        provision(
            bench.database,
            ACTOR,
            service_code="hdd7100001",
            form_factor=FormFactor(profile.form_factor),
            card=Unplugged(transport),
            keyring=bench.keyring,
        )
    assert bench.journal() is PinJournalState.CHANGING
    with pytest.raises(CheckFailedError, match="vendor's PIN1") as refused:
        bench.provision(reader, "hdd7100001")
    assert refused.value.rule == "pin1-default"
    assert pin1_retries(reader) == 2  # the one probe of 0000, on a full counter
    # A second retry sends nothing at all: the counter is no longer full.
    with pytest.raises(CheckFailedError):
        bench.provision(reader, "hdd7100001")
    assert pin1_retries(reader) == 2


def test_another_station_won_then_retry(
    vendor_card: tuple[str, CardProfile], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, profile = vendor_card
    bench = Bench(tmp_path, profile)
    real_move = workflows._move_line

    def line_taken(*args: Any, **kwargs: Any) -> None:
        raise ConcurrentChangeError("line changed meanwhile", kind="line", key="hdd7100001")

    monkeypatch.setattr(workflows, "_move_line", line_taken)
    with pytest.raises(ConcurrentChangeError):
        bench.provision(reader, "hdd7100001")
    monkeypatch.setattr(workflows, "_move_line", real_move)
    result = bench.provision(reader, "hdd7100002", actor=OTHER)
    assert (result.service_code, result.pin.outcome) == ("hdd7100002", "already-default")
    assert pin1_retries(reader) == 3


def test_database_error_at_the_binding_then_retry(
    vendor_card: tuple[str, CardProfile], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, profile = vendor_card
    bench = Bench(tmp_path, profile)

    def database_gone(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("the database went away", url=str(bench.path))

    monkeypatch.setattr(workflows, "_register_device_row", database_gone)
    with pytest.raises(DatabaseError):
        bench.provision(reader, "hdd7100001")
    monkeypatch.undo()
    assert bench.provision(reader, "hdd7100001").pin.outcome == "already-default"
    assert pin1_retries(reader) == 3
