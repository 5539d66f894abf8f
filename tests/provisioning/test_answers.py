"""Consistent answers: ``ok`` on every JSON success, a line's state from its card, lines
by phone number, cards by IMSI, local times, CSV exports, lent routers shipped again.

Commands run as processes against SQLite and PostgreSQL; the reader's part of a
provision is done through the API with a card given as data.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provisioning.audit import Actor
from provisioning.database import Database
from provisioning.devices import DeviceFacts
from provisioning.errors import CheckFailedError, LifecycleError
from provisioning.lifecycle import FormFactor
from provisioning.secrets import Keyring
from provisioning.workflows import LineRef, check_modem_sim, provision, sim_checked
from tests.provisioning.helpers import Stock, chip
from tests.support.cli import CliResult, simtool

IMEI = "356938035643809"


class Station:
    """``simtool`` with this test's database, key and identity in the environment."""

    def __init__(self, tmp_path: Path, db: str) -> None:
        self.db = db
        self.key_file = tmp_path / "keys" / "station.key"
        self.env = {
            "SIMTOOL_DB": db,
            "SIMTOOL_KEY_FILE": str(self.key_file),
            "SIMTOOL_OPERATOR": "mori",
            "SIMTOOL_STATION": "answers-1",
            "SIMTOOL_CONFIG": str(tmp_path / "no-config.toml"),
        }

    def __call__(self, *args: str, **env: str) -> CliResult:
        return simtool(*args, env={**self.env, **env})

    def ok(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.code == 0, result.output
        assert result.json["ok"] is True
        return result.json

    def provision(self, code: str, row: Any, imei: str | None = None) -> None:
        database = Database(self.db)
        try:
            provision(
                database,
                Actor("mori", "answers-1"),
                service_code=code,
                form_factor=FormFactor.NANO,
                card=chip(row),
                keyring=Keyring(self.key_file),
                device=DeviceFacts(imei=imei) if imei else None,
            )
        finally:
            database.dispose()


@pytest.fixture
def station(tmp_path: Path, db_url: str, stock: Callable[..., Stock]) -> tuple[Station, Stock]:
    bench = Station(tmp_path, db_url)
    bench.ok("db", "init")
    file = stock(3)
    bench.ok("stock", "import", str(file.path))
    for code, msisdn in (("hdd6100001", "070-6100-0001"), ("hdd6100002", "070-6100-0002")):
        added = bench.ok(
            "line",
            "add",
            "--service-code",
            code,
            "--msisdn",
            msisdn,
            "--customer",
            "MA61",
            "--type",
            "D",
            "--function",
            "data",
        )
        assert added["service_code"] == code
    return bench, file


def test_suspended_line_shows_on_its_card(station: tuple[Station, Stock]) -> None:
    bench, file = station
    bench.provision("hdd6100001", file.row(0))
    bench.ok("suspend", "--msisdn", "07061000001")
    shown = bench.ok("show", "card", file.row(0).iccid)
    assert (shown["service_code"], shown["line_state"]) == ("hdd6100001", "suspended")
    human = bench("show", "card", file.row(0).iccid)
    assert "hdd6100001 (suspended)" in human.stdout
    by_imsi = bench.ok("show", "card", file.row(0).imsi)
    assert by_imsi["iccid"] == file.row(0).iccid
    for number in ("070-6100-0001", "07061000001", "hdd6100001"):
        assert bench.ok("show", "line", number)["service_code"] == "hdd6100001"
    unknown = bench("show", "line", "080-0000-0000", "--json")
    assert unknown.code == 11 and unknown.json["ok"] is False
    malformed = bench("show", "card", "12345", "--json")
    assert malformed.code == 65 and "Traceback" not in malformed.output
    both = bench("show", "card", file.row(0).iccid, "--reader", "lab:0")
    assert both.code == 64


def test_times_in_the_operators_zone(station: tuple[Station, Stock]) -> None:
    bench, file = station
    tokyo = bench("show", "card", file.row(1).iccid)
    assert tokyo.code == 0 and " JST" in tokyo.stdout
    utc = bench("show", "card", file.row(1).iccid, SIMTOOL_TZ="UTC")
    assert " UTC" in utc.stdout and " JST" not in utc.stdout
    shift = bench("report", "shift")
    assert shift.code == 0 and " JST" in shift.stdout


def test_shift_report_in_the_operators_language(station: tuple[Station, Stock]) -> None:
    bench, file = station
    bench.provision("hdd6100002", file.row(2), None)
    japanese = bench("report", "shift", "--lang", "ja")
    assert japanese.code == 0, japanese.output
    for words in ("作業一覧", "集計", "作業者", "監査記録の末尾", "provision"):
        assert words in japanese.stdout, words
    english = bench("report", "shift", "--lang", "en")
    assert "Actions" in english.stdout and "Audit heads" in english.stdout
    assert "作業" not in english.stdout
    # The machine formats keep their English keys whatever the language.
    as_json = bench("report", "shift", "--lang", "ja", "--json")
    assert as_json.json["ok"] is True and "chain_head_hash" in as_json.json


def test_exports_as_csv_and_unknown_customer(station: tuple[Station, Stock]) -> None:
    bench, file = station
    bench.provision("hdd6100001", file.row(0), IMEI)
    listing = list(
        csv.reader(io.StringIO(bench("export", "imei-list", "--customer", "MA61", "--csv").stdout))
    )
    assert listing == [["list", "value"], ["service_code", "hdd6100001"], ["imei", IMEI]]
    unknown = bench("export", "imei-list", "--customer", "MA99", "--json")
    assert unknown.code == 11 and unknown.json["error"]["type"] == "NotFoundError"
    report = bench("report", "shift", "--csv")
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    assert "rule" in rows[0] and {r["action"] for r in rows} >= {"provision", "line-add"}


def test_lent_router_ships_again_after_its_return(station: tuple[Station, Stock]) -> None:
    bench, file = station
    bench.provision("hdd6100001", file.row(0), IMEI)
    with pytest.raises(CheckFailedError, match="already registered with line hdd6100001"):
        bench.provision("hdd6100002", file.row(1), IMEI)
    early = bench("return", "--device-imei", IMEI, "--json")
    assert early.code == 10 and early.json["error"]["rule"] == "device-return-after-cancel"
    bench.ok("line", "cancel", "--service-code", "hdd6100001")
    released = bench.ok("return", "--device-imei", IMEI)
    assert released["service_code"] == "hdd6100001"
    bench.provision("hdd6100002", file.row(1), IMEI)
    assert bench.ok("show", "line", "hdd6100002")["devices"][0]["imei"] == IMEI
    shift = bench.ok("report", "shift")
    assert [r["details"]["rule"] for r in shift["refusals"]] == [
        "device-once",
        "device-return-after-cancel",
    ]


def test_router_sim_must_be_the_lines_card(station: tuple[Station, Stock]) -> None:
    bench, file = station
    bench.provision("hdd6100001", file.row(0))
    database = Database(bench.db)
    actor = Actor("mori", "answers-1")
    ref = LineRef(service_code="hdd6100001")
    try:
        assert check_modem_sim(database, ref, file.row(0).iccid + "F") == file.row(0).iccid
        for wrong in (file.row(1).iccid, None):
            with pytest.raises(LifecycleError) as refused, sim_checked(database, actor, ref):
                check_modem_sim(database, ref, wrong)
            assert refused.value.rule == "device-sim-match"
        # A line without a card yet: its router may be registered ahead of it.
        assert check_modem_sim(database, LineRef(msisdn="070-6100-0002"), None) is None
    finally:
        database.dispose()
    shift = bench.ok("report", "shift")
    assert [(r["action"], r["details"]["rule"]) for r in shift["refusals"]] == [
        ("register-device", "device-sim-match"),
        ("register-device", "device-sim-match"),
    ]


def test_modem_configure_refuses_a_router_holding_another_card(
    station: tuple[Station, Stock],
) -> None:
    """Through the real command and the modem simulator: its SIM is not the line's card."""
    bench, file = station
    bench.provision("hdd6100001", file.row(0))
    refused = bench(
        "modem",
        "configure",
        "--port",
        "simmodem://quectel",
        "--profile",
        "ijmio",
        "--service-code",
        "hdd6100001",
        "--json",
    )
    assert refused.code == 10, refused.output
    assert refused.json["error"]["rule"] == "device-sim-match"
    assert bench.ok("show", "line", "hdd6100001")["devices"] == []
    [refusal] = bench.ok("report", "shift")["refusals"]
    assert (refusal["action"], refusal["details"]["rule"]) == (
        "register-device",
        "device-sim-match",
    )


def test_time_zone_from_the_config_file(station: tuple[Station, Stock], tmp_path: Path) -> None:
    bench, file = station
    config = tmp_path / "tz.toml"
    config.write_text('timezone = "UTC"\n')
    shown = bench("show", "card", file.row(1).iccid, SIMTOOL_CONFIG=str(config))
    assert shown.code == 0 and " UTC" in shown.stdout
    config.write_text('timezone = "Mars/Olympus"\n')
    wrong = bench("show", "card", file.row(1).iccid, SIMTOOL_CONFIG=str(config))
    assert wrong.code == 64 and "unknown time zone" in wrong.stderr
