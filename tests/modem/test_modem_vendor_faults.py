"""Real-modem habits on a real pty: blanks after commas, odd error codes, refused commands.

``modem info`` on a modem that puts a blank after each comma, answers one
command with ``+CME ERROR: ²`` and refuses ``AT+CRSM`` still returns the
IMEI, the ICCID (from ``AT+CCID``/``AT+ICCID``) and unpadded fields, without
hanging; a modem that refuses commands chained on one line is configured one
command per line, and that is remembered for its dialect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from apdu.virtual import lab_profile
from modem.configure import configure, configure_port
from modem.modem import Modem, chaining_refused, forget_chaining_refusals
from modem.profiles import IJMIO
from modem.simulator.protocol_simmodem import modem_for_url
from tests.support.cli import simtool

SimFactory = Callable[..., Any]


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
