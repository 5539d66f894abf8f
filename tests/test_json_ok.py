"""Every ``--json`` success prints one JSON object with ``"ok": true``.

The commands run as processes (as a script would call them) against what is
cheap to reach: the in-process ``virtual:default`` card, a fresh SQLite line
database, the in-process modem simulator (``simmodem://``) and a simulator on a
pty. The command tree is walked too, so a new command with ``--json`` must be
covered here or listed with the reason it is not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from apdu.virtual import load_profile
from simtool.cli import cli
from simtool.pytest_plugin import ModemFactory
from tests.support.cli import simtool

# Commands with --json that this test does not run, and why.
NOT_RUN = {
    "lab up": "starts a private pcscd and vpcd (the lab tests cover its JSON)",
    "lab status": "needs a running lab (the lab tests cover its JSON)",
    "lab insert": "needs a running lab (the lab tests cover its JSON)",
    "lab remove": "needs a running lab (the lab tests cover its JSON)",
    "demo": "starts a whole lab and a modem simulator (tests/test_demo covers it)",
    "watch": "streams one JSON line per reader event, not one document",
    "modem configure": "covered by tests/modem with the router's answers checked",
    "modem connect": "needs the SIM's PIN entered first, across processes (tests/modem)",
    "modem pin": "spends a PIN attempt on the simulated SIM (tests/modem cover it)",
    "pin change": "tests/provisioning/test_pin_audit.py runs it on lab cards",
    "pin disable": "tests/provisioning/test_pin_audit.py runs it on lab cards",
    "pin enable": "tests/provisioning/test_pin_audit.py runs it on lab cards",
    "pin ensure-default": "tests/provisioning/test_pin_audit.py runs it on lab cards",
    "pin unblock": "tests/provisioning/test_pin_audit.py runs it on lab cards",
    "reissue": "needs a second card in a reader (tests/provisioning cover it)",
    "return": "needs a returned card in a reader (tests/provisioning cover it)",
    "change-form-factor": "tests/provisioning cover it",
    "line cancel": "tests/provisioning cover it",
}


def json_commands() -> set[str]:
    """Every command of the CLI that takes ``--json`` ("group sub" for subcommands)."""
    found: set[str] = set()
    context = click.Context(cli)

    def walk(command: click.Command, path: list[str]) -> None:
        if isinstance(command, click.Group):
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                assert sub is not None
                walk(sub, [*path, name])
        elif any("--json" in getattr(p, "opts", ()) for p in command.params):
            found.add(" ".join(path))

    walk(cli, [])
    return found


class Station:
    """``simtool`` with this test's database, key, virtual-card state and identity."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "line.db"
        self.env = {
            "SIMTOOL_DB": str(self.db),
            "SIMTOOL_KEY_FILE": str(tmp_path / "keys" / "station.key"),
            "SIMTOOL_OPERATOR": "mori",
            "SIMTOOL_STATION": "json-1",
            "SIMTOOL_CONFIG": str(tmp_path / "no-config.toml"),
            # The virtual card keeps its state here: a fresh card for this test.
            "XDG_STATE_HOME": str(tmp_path / "state"),
        }
        self.ran: set[str] = set()

    def ok(self, command: str, *args: str) -> Any:
        """Run ``simtool COMMAND ARGS --json``; the document, checked for ``"ok": true``."""
        result = simtool(*command.split(), *args, "--json", env=self.env)
        assert result.code == 0, (command, result.output)
        document = json.loads(result.stdout)
        assert isinstance(document, dict), (command, result.stdout)
        assert document.get("ok") is True, (command, result.stdout)
        self.ran.add(command)
        return document


def test_every_json_command_is_run_here_or_excused() -> None:
    commands = json_commands()
    assert set(NOT_RUN) <= commands, set(NOT_RUN) - commands
    assert commands - set(NOT_RUN) == set(RUN), commands - set(NOT_RUN) ^ set(RUN)


# What the tests below run; checked against the command tree above.
RUN = {
    "readers",
    "read",
    "atr",
    "files",
    "apdu",
    "diagnose",
    "pin status",
    "pin verify",
    "db init",
    "db status",
    "db upgrade",
    "keys status",
    "keys rotate",
    "stock import",
    "stock list",
    "line add",
    "line import",
    "line update",
    "provision",
    "show card",
    "show line",
    "suspend",
    "resume",
    "lost",
    "report shift",
    "export imei-list",
    "audit verify",
    "modem list",
    "modem dialects",
    "modem info",
}


def test_ok_true_on_card_and_database_commands(tmp_path: Path) -> None:
    station = Station(tmp_path)
    reader = ("--reader", "virtual:default")
    for command in ("readers", "read", "atr", "files", "pin status"):
        station.ok(command, *reader)
    assert station.ok("readers", *reader)["readers"][0]["url"] == "virtual:default"
    # SELECT MF: no PIN involved.
    station.ok("apdu", *reader, "00A40004023F00")
    station.ok("pin verify", *reader, "--pin", "0000")

    card = load_profile("default")
    stock = tmp_path / "stock.csv"
    # The vendor's file for the virtual card, as an operator would write it.
    written = simtool("lab", "stock-file", str(stock), "--cards", "1", "--profile", "default")
    assert written.code == 0, written.output
    lines = tmp_path / "lines.csv"
    lines.write_text(
        "SERVICE_CODE,MSISDN,CUSTOMER,TYPE,FUNCTION\nhdd6300002,070-6300-0002,MA63,D,data\n",
        encoding="utf-8",
    )
    station.ok("db init")
    for command in ("db status", "db upgrade", "keys status"):
        station.ok(command)
    station.ok("stock import", str(stock))
    assert station.ok("stock list")["batches"][0]["cards"] == 1
    station.ok(
        "line add",
        *("--service-code", "hdd6300001", "--msisdn", card.msisdn, "--customer", "MA63"),
        *("--type", "D", "--function", "data"),
    )
    station.ok("line import", str(lines))
    station.ok("line update", "--service-code", "hdd6300001", "--identity-verified")
    station.ok(
        "provision", *reader, "--service-code", "hdd6300001", "--form-factor", card.form_factor
    )
    station.ok("show card", card.iccid)
    station.ok("diagnose", *reader)
    station.ok("show line", "hdd6300001")
    station.ok("suspend", "--service-code", "hdd6300001")
    station.ok("resume", "--service-code", "hdd6300001")
    station.ok("lost", "--service-code", "hdd6300001")
    station.ok("report shift")
    station.ok("export imei-list", "--customer", "MA63")
    station.ok("keys rotate")
    station.ok("audit verify")
    assert station.ran == RUN - {"modem list", "modem dialects", "modem info"}


def test_ok_true_on_modem_commands(tmp_path: Path, sim_modem_factory: ModemFactory) -> None:
    station = Station(tmp_path)
    modem = sim_modem_factory("huawei")
    listed = station.ok("modem list", "--also", modem.port)
    ours = next(p for p in listed["ports"] if p["device"] == modem.port)
    assert ours["answers_at"] is True
    assert {d["name"] for d in station.ok("modem dialects")["dialects"]} >= {"generic", "huawei"}
    station.ok("modem info", "--port", "simmodem://generic")
