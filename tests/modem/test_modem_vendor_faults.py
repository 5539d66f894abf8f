"""Real-modem habits on a real pty: blanks after commas, odd error codes, refused commands.

``modem info`` on a modem that puts a blank after each comma, answers one
command with ``+CME ERROR: ²`` and refuses ``AT+CRSM`` still returns the
IMEI, the ICCID (from ``AT+CCID``/``AT+ICCID``) and unpadded fields, without
hanging; a modem that refuses commands chained on one line is configured one
command per line, and that is remembered for its dialect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from apdu.virtual import lab_profile
from modem.channel import at
from modem.configure import configure, configure_port
from modem.modem import Modem, chaining_refused, forget_chaining_refusals
from modem.profiles import IJMIO
from modem.simulator.protocol_simmodem import modem_for_url
from tests.support.cli import simtool

SimFactory = Callable[..., Any]
PROFILES = Path(__file__).resolve().parents[2] / "apdu" / "virtual" / "profiles"


@pytest.fixture
def pin_off_card(tmp_path: Path) -> str:
    """A card profile file: the default card with PIN1 disabled (a router's SIM)."""
    profile = json.loads((PROFILES / "default.json").read_text())
    profile["pin1_enabled"] = False
    path = tmp_path / "pin-off.json"
    path.write_text(json.dumps(profile))
    return str(path)


@pytest.fixture
def fresh_chaining() -> Iterator[None]:
    """Refusals to chain are remembered per process: start and end with none."""
    forget_chaining_refusals()
    yield
    forget_chaining_refusals()


@pytest.mark.parametrize(
    ("dialect", "faults", "source"),
    [
        ("generic", "spaces,cme-odd:+CIMI,refuse:+CRSM", "AT+CCID"),
        ("quectel", "spaces,cme-odd:+CSQ,refuse:+QCCID|+CRSM", "AT+CCID"),
        ("fibocom", "spaces,cme-odd:+CIMI,refuse:+CCID|+CRSM", "AT+ICCID"),
    ],
)
def test_info_on_a_modem_with_real_habits(
    dialect: str, faults: str, source: str, sim_pty: SimFactory
) -> None:
    sim = sim_pty(dialect, faults=faults)
    configured = simtool("modem", "configure", "--port", sim.path, "--json")
    assert configured.code == 0, configured.output
    run = simtool("modem", "info", "--port", sim.path, "--json", "--timeout", "3")
    assert run.code == 0, run.output
    info = run.json
    assert len(info["identity"]["imei"]) == 15
    assert info["sim"]["iccid"] == lab_profile(0).iccid
    assert info["sim"]["iccid_source"] == source
    (context,) = [c for c in info["contexts"] if c["cid"] == 1]
    assert context["apn"] == "ijmio.jp" and context["pdp_type"] == "IP"
    assert context["user"] == "mio@ij"
    assert "²" in run.stdout or any("²" in note for note in info["notes"])


def test_modem_that_refuses_chaining_is_configured_command_by_command(
    shared_name: str, fresh_chaining: None
) -> None:
    address = f"simmodem://telit?name={shared_name}&faults=nochain"
    engine = modem_for_url(address)
    result = configure_port(address, IJMIO)
    assert result.verified
    assert chaining_refused("dialect:telit")
    # Once refused, no more chained lines: the second run sends none.
    before = len(engine.history)
    with Modem.open(address) as modem:
        again = configure(modem, IJMIO)
    assert again.verified
    assert not any(";" in line for line in list(engine.history)[before:])


def test_chained_lines_without_the_fault(shared_name: str, fresh_chaining: None) -> None:
    address = f"simmodem://huawei?name={shared_name}&faults=spaces"
    engine = modem_for_url(address)
    with Modem.open(address) as modem:
        result = configure(modem, IJMIO)
        assert modem.channel.stats.commands <= 6
    assert result.verified
    assert any(line.startswith("ATE0;+CMEE=1;+CGMI") for line in engine.history)
    assert not chaining_refused("dialect:huawei")


def test_operator_scan_decodes_ucs2_names(shared_name: str, pin_off_card: str) -> None:
    address = f"simmodem://quectel?name={shared_name}&profile={pin_off_card}"
    with Modem.open(address) as modem:
        plain = modem.scan_operators()
        modem.write(at('AT+CSCS="UCS2"', prefix=False))
        decoded = modem.scan_operators()
    assert plain == decoded
    assert decoded[0].long_name == "NTT DOCOMO" and decoded[0].numeric == "44010"
    assert decoded[0].state == "current"


def test_huawei_signal_from_hcsq_when_cesq_is_refused(shared_name: str, pin_off_card: str) -> None:
    address = f"simmodem://huawei?name={shared_name}&profile={pin_off_card}&faults=refuse:+CESQ"
    with Modem.open(address) as modem:
        quality = modem.quality()
    assert quality is not None and quality.mode == "LTE"
    assert quality.rsrp_dbm == -95 and quality.sinr_db == 10.0


def test_vendor_sim_status_lines_are_followed(shared_name: str) -> None:
    # Telit sprinkles "#QSS: 1" (SIM inserted) among its answers with the urc fault.
    address = f"simmodem://telit?name={shared_name}&faults=urc"
    with Modem.open(address) as modem:
        for _ in range(6):
            modem.query("AT+CSQ")
        modem.channel.wait_quiet(0.05, 2.0)
        status = modem.last_sim_status
    assert status is not None and status.source == "#QSS" and status.inserted is True
