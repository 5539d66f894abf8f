"""The workflows on the command line against lab cards (real pcscd + vpcd).

This is the issue's "done when", step by step, with a fresh SQLite database:
stock import, a malformed file refused, provision, a wrong form factor refused,
a lost card returned and flagged, the audit chain verified and then broken.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apdu.virtual import CardProfile, load_profile
from provisioning.labstock import write_stock_file
from tests.support.cli import CliResult, simtool

pytestmark = pytest.mark.lab

OTHER_FORM_FACTOR = {"standard": "micro", "micro": "nano", "nano": "multi", "multi": "standard"}


class Station:
    """``simtool`` with this test's database, key and identity."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "station.db"
        self.env = {
            "SIMTOOL_DB": str(self.db),
            "SIMTOOL_KEY_FILE": str(tmp_path / "k.key"),
            "SIMTOOL_OPERATOR": "yamada",
            "SIMTOOL_STATION": "lab-bench",
            "SIMTOOL_CONFIG": str(tmp_path / "no-config.toml"),
        }
        self.outputs: list[str] = []

    def __call__(self, *args: str) -> CliResult:
        result = simtool(*args, env=self.env)
        self.outputs.append(result.output)
        return result

    def ok(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.code == 0, result.output
        return result.json


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    bench = Station(tmp_path)
    yield bench
    everything = "\n".join(bench.outputs)
    for profile_file in tmp_path.glob("*.secrets"):
        for secret in profile_file.read_text().split():
            assert secret not in everything, "a secret reached the output"


def remember_secrets(tmp_path: Path, *profiles: CardProfile) -> None:
    """Note the cards' secrets, so the fixture can prove none was ever printed."""
    values = []
    for p in profiles:
        values += [p.puk1, p.puk2, p.adm1, p.ki.hex().upper(), p.opc.hex().upper()]
    (tmp_path / f"{profiles[0].iccid}.secrets").write_text(" ".join(values))


def test_done_when(station: Station, fresh_card: Any, tmp_path: Path) -> None:
    reader, card = fresh_card()
    spare_reader, spare = fresh_card()
    if spare.form_factor == "multi":
        # A multi-cut card serves any size its type offers: the refusal below
        # needs a card of one size.
        spare_reader, spare = fresh_card(dataclasses.replace(spare, form_factor="nano"))
    remember_secrets(tmp_path, card, spare)
    stock = tmp_path / "stock.csv"
    write_stock_file(stock, [card, spare])

    assert station.ok("db", "init")["is_current"]
    imported = station.ok("stock", "import", str(stock))
    assert imported["cards"] == 2 and not imported["already_imported"]
    assert station.ok("stock", "import", str(stock))["already_imported"]

    malformed = tmp_path / "malformed.csv"
    lines = stock.read_text().splitlines()
    malformed.write_text(
        "\n".join(
            [
                lines[0],
                lines[1].replace(card.iccid, card.iccid[:-1] + "0"),
                lines[2].replace(spare.imsi, "4401"),
            ]
        )
        + "\n"
    )
    refused = station("stock", "import", str(malformed))
    assert refused.code == 65
    assert "line 2: ICCID" in refused.stderr and "line 3: IMSI" in refused.stderr
    assert "nothing was imported" in refused.stderr

    station.ok(
        "line",
        "add",
        "--service-code",
        "hdd3000001",
        "--customer",
        "MA300",
        "--type",
        "D",
        "--function",
        "data",
        "--msisdn",
        card.msisdn,
    )
    station.ok(
        "line",
        "add",
        "--service-code",
        "hdd3000002",
        "--customer",
        "MA300",
        "--type",
        "D",
        "--function",
        "data",
    )

    passed = station.ok(
        "provision",
        "--reader",
        reader,
        "--service-code",
        "hdd3000001",
        "--form-factor",
        card.form_factor,
        "--scan",
        card.iccid,
    )
    assert passed["passed"] and passed["pin"]["outcome"] == "already-default"
    shown = station.ok("show", "card", card.iccid)
    assert (shown["state"], shown["service_code"]) == ("active", "hdd3000001")

    audit_before = station.ok("audit", "verify")["events"]
    wrong = station(
        "provision",
        "--reader",
        spare_reader,
        "--service-code",
        "hdd3000002",
        "--form-factor",
        OTHER_FORM_FACTOR[spare.form_factor],
        "--json",
    )
    assert wrong.code == 10
    assert wrong.json["ok"] is False and wrong.json["error"]["rule"] == "form-factor-match"
    assert f"the order asks for {OTHER_FORM_FACTOR[spare.form_factor]}" in wrong.stderr
    assert station.ok("show", "card", spare.iccid)["state"] == "in-stock"
    assert station.ok("show", "line", "hdd3000002")["state"] == "pending"
    assert station.ok("audit", "verify")["events"] == audit_before + 1  # the refusal
    shift = station.ok("report", "shift")
    [refusal] = shift["refusals"]
    assert (refusal["action"], refusal["result"]) == ("provision", "refused")
    assert refusal["details"]["rule"] == "form-factor-match"
    assert refusal["service_code"] == "hdd3000002" and refusal["iccid"] == spare.iccid
    assert shift["totals"]["provision:refused"] == 1
    human_shift = station("report", "shift")
    assert (
        "form-factor-match" in human_shift.stdout and "1 attempt(s) refused" in human_shift.stdout
    )

    lost = station.ok("lost", "--service-code", "hdd3000001")
    assert (lost["line_state"], lost["card_state"]) == ("suspended", "lost")
    returned = station.ok("return", "--reader", reader)
    assert returned["never_reuse"] and returned["state"] == "lost-found"
    human = station("show", "card", card.iccid)
    assert "NEVER REUSE" in human.stdout

    reissued = station.ok(
        "reissue",
        "--reader",
        spare_reader,
        "--service-code",
        "hdd3000001",
        "--reason",
        "lost",
        "--form-factor",
        spare.form_factor,
    )
    assert reissued["line_state"] == "active" and reissued["fee"] == "reissue"
    assert station.ok("show", "line", "hdd3000001")["current_iccid"] == spare.iccid

    verified = station.ok("audit", "verify")
    assert verified["ok"]
    with sqlite3.connect(station.db) as raw:
        raw.execute("UPDATE audit_events SET operator = 'mallory' WHERE seq = 3")
    broken = station("audit", "verify", "--json")
    assert broken.code == 15
    assert (broken.json["problem_seq"], broken.json["problem_kind"]) == (3, "edited")
    assert "event 3" in broken.stderr


def test_blocked_pin_card_is_refused(station: Station, fresh_card: Any, tmp_path: Path) -> None:
    reader, card = fresh_card("blocked-pin")
    stock = tmp_path / "stock.csv"
    write_stock_file(stock, [card])
    station.ok("db", "init")
    station.ok("stock", "import", str(stock))
    station.ok(
        "line",
        "add",
        "--service-code",
        "hdd3100001",
        "--customer",
        "MA301",
        "--type",
        "D",
        "--function",
        "data",
    )
    refused = station(
        "provision",
        "--reader",
        reader,
        "--service-code",
        "hdd3100001",
        "--form-factor",
        card.form_factor,
        "--json",
    )
    assert refused.code == 10 and refused.json["error"]["rule"] == "pin1-default"
    assert station.ok("show", "card", card.iccid)["state"] == "in-stock"


def test_pin_protected_imsi_is_matched_after_pin1(
    station: Station, fresh_card: Any, tmp_path: Path
) -> None:
    profile = load_profile("pin-protected-imsi")
    reader, card = fresh_card(profile)
    stock = tmp_path / "stock.csv"
    write_stock_file(stock, [card])
    station.ok("db", "init")
    station.ok("stock", "import", str(stock))
    station.ok(
        "line",
        "add",
        "--service-code",
        "hdd3200001",
        "--customer",
        "MA302",
        "--type",
        "D",
        "--function",
        "data",
    )
    passed = station.ok(
        "provision",
        "--reader",
        reader,
        "--service-code",
        "hdd3200001",
        "--form-factor",
        card.form_factor,
    )
    assert [c["name"] for c in passed["checks"]][-2:] == ["pin1-default", "imsi"]
