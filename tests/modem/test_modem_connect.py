"""The issue's "done when", per dialect, through the real CLI and a simulator on a real pty.

On the simulator of each of the 8 dialects: ``configure`` takes at most 8 AT
round trips (counted in its trace), a second ``configure`` sends no
``CFUN=0``/``CGATT=0``, ``modem connect --json`` reports an IPv4 address, and
after ``configure --password wrong-pw`` the connect fails naming
authentication. The SIM is the default card profile with PIN1 disabled, as in
a router that attaches by itself (the stock lab card waits for its PIN).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from modem.channel import at
from modem.configure import configure_port
from modem.connect import connect_port
from modem.dialects import DIALECT_NAMES, Auth
from modem.errors import ConnectionRejectedError
from modem.modem import Modem
from modem.profiles import IJMIO
from modem.simulator.protocol_simmodem import modem_for_url
from tests.support.cli import simtool

SimFactory = Callable[..., Any]
PROFILES = Path(__file__).resolve().parents[2] / "apdu" / "virtual" / "profiles"


@pytest.fixture
def pin_off_card(tmp_path: Path) -> str:
    """A card profile file: the default card with PIN1 disabled."""
    profile = json.loads((PROFILES / "default.json").read_text())
    profile["pin1_enabled"] = False
    path = tmp_path / "pin-off.json"
    path.write_text(json.dumps(profile))
    return str(path)


def trace_commands(path: Path) -> list[str]:
    """The AT command lines of a ``--trace`` file, in order."""
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [event["command"] for event in events if event.get("event") == "at"]


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_done_when(dialect: str, sim_pty: SimFactory, pin_off_card: str, tmp_path: Path) -> None:
    sim = sim_pty(dialect, profile=pin_off_card)
    first = tmp_path / "first.jsonl"
    run = simtool("modem", "configure", "--port", sim.path, "--trace", str(first), "--json")
    assert run.code == 0, run.output
    assert run.json["verified"] is True
    commands = trace_commands(first)
    assert len(commands) <= 8, commands

    second = tmp_path / "second.jsonl"
    run = simtool("modem", "configure", "--port", sim.path, "--trace", str(second), "--json")
    assert run.code == 0, run.output
    again = trace_commands(second)
    assert not any("CFUN=0" in c or "CGATT=0" in c for c in again), again
    assert len(again) <= 4

    run = simtool("modem", "connect", "--port", sim.path, "--json")
    assert run.code == 0, run.output
    assert run.json["connected"] is True and run.json["ipv4"] == "10.45.1.7"
    assert run.json["dns"] == ["10.45.0.53", "10.45.0.54"]

    fresh = sim_pty(dialect, profile=pin_off_card)
    run = simtool(
        "modem", "configure", "--port", fresh.path, "--profile", "ijmio", "--password", "wrong-pw"
    )
    assert run.code == 0, run.output  # stored and read back as asked; the network decides
    assert "wrong-pw" not in run.output
    run = simtool("modem", "connect", "--port", fresh.path)
    assert run.code == 9, run.output
    assert "authentication" in run.stderr
    assert "wrong-pw" not in run.output


@pytest.mark.parametrize(
    ("dialect", "kind", "cause"),
    [("generic", "apn", 27), ("quectel", "apn", 27), ("huawei", "authentication", 29)],
)
def test_rejection_causes_in_each_style(
    dialect: str, kind: str, cause: int, shared_name: str, pin_off_card: str
) -> None:
    # generic: +CME ERROR 127/129; quectel: 148/149 then AT+CEER words; huawei:
    # plain ERROR then AT+CEER "ESM cause: N".
    address = f"simmodem://{dialect}?name={shared_name}&profile={pin_off_card}"
    if kind == "apn":
        profile = replace(IJMIO, apn="no.such.apn")
    else:
        profile = replace(IJMIO, user="someone@else")
    assert configure_port(address, profile).verified
    with pytest.raises(ConnectionRejectedError) as caught:
        connect_port(address)
    assert caught.value.kind == kind and caught.value.cause == cause


def test_network_accepting_only_pap_refuses_chap(shared_name: str, pin_off_card: str) -> None:
    address = f"simmodem://telit?name={shared_name}&profile={pin_off_card}&faults=net-auth:pap"
    assert configure_port(address, replace(IJMIO, auth=Auth.CHAP)).verified
    with pytest.raises(ConnectionRejectedError, match="authentication"):
        connect_port(address)
    result = configure_port(address, replace(IJMIO, auth=Auth.PAP), connect_test=True)
    assert result.connection is not None and result.connection.ipv4 == "10.45.1.7"
    assert result.connection_proven is True


def test_connect_test_after_configure_reports_refusal_without_raising(
    shared_name: str, pin_off_card: str
) -> None:
    address = f"simmodem://sierra?name={shared_name}&profile={pin_off_card}"
    result = configure_port(address, replace(IJMIO, password="wrong-pw"), connect_test=True)
    assert result.verified and result.connection is None
    assert result.connection_error is not None and result.connection_error.kind == (
        "authentication"
    )
    assert result.connection_proven is False


def test_connect_without_network_names_no_service(shared_name: str) -> None:
    # The stock lab card waits for its PIN: no registration, no network.
    address = f"simmodem://ublox?name={shared_name}"
    configure_port(address, IJMIO)
    with pytest.raises(ConnectionRejectedError) as caught:
        connect_port(address)
    assert caught.value.kind == "sim" and "SIM PIN" in str(caught.value)


def test_connect_stay_leaves_a_new_context_active(shared_name: str, pin_off_card: str) -> None:
    address = f"simmodem://generic?name={shared_name}&profile={pin_off_card}"
    engine = modem_for_url(address)
    configure_port(address, IJMIO)
    with Modem.open(address) as modem:
        modem.write(at("AT+CGACT=0,1", prefix=False))
    assert not engine._active(1)
    result = connect_port(address, stay=False)
    assert result.connected and result.deactivated and not engine._active(1)
    result = connect_port(address, stay=True)
    assert result.connected and not result.deactivated and engine._active(1)


def test_undefined_context_is_the_modems_refusal_not_the_networks(
    shared_name: str, pin_off_card: str
) -> None:
    address = f"simmodem://generic?name={shared_name}&profile={pin_off_card}"
    configure_port(address, IJMIO)
    with pytest.raises(ConnectionRejectedError) as caught:
        connect_port(address, cid=7)
    assert caught.value.kind == "modem" and "context 7" in str(caught.value)
