"""AT+CSIM as a card transport: the card layer reads a SIM through a modem."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apdu.card import read_card
from apdu.errors import DeadlineError
from apdu.virtual import lab_profile, load_profile
from modem.csim import CsimTransport, open_csim_transport
from modem.dialects import DIALECT_NAMES

SimFactory = Callable[..., Any]


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_read_card_through_each_dialect(dialect: str) -> None:
    expected = lab_profile(0)
    with open_csim_transport(f"simmodem://{dialect}") as transport:
        assert transport.atr == b""  # no standard AT command gives the ATR
        identity = read_card(transport)
    assert identity.iccid == expected.iccid and identity.imsi == expected.imsi
    assert identity.pins["pin1"].retries == 3 and identity.pins["puk1"].retries == 10
    assert transport.stats.apdus == identity.apdu_count > 0


def test_read_card_through_a_real_pty(sim_pty: SimFactory) -> None:
    sim = sim_pty("simcom", latency=0.01, faults="urc,echo")
    transport = open_csim_transport(sim.path, "simcom")
    try:
        identity = read_card(transport)
    finally:
        transport.close()
    assert identity.iccid == lab_profile(0).iccid


def test_profile_with_protected_imsi() -> None:
    profile = load_profile("pin-protected-imsi")
    with open_csim_transport("simmodem://quectel?profile=pin-protected-imsi") as transport:
        identity = read_card(transport)
    assert identity.iccid == profile.iccid and identity.imsi is None
    assert identity.imsi_protected


def test_transport_has_its_own_deadline() -> None:
    assert CsimTransport.needs_watchdog is False
    transport = CsimTransport("simmodem://generic?faults=mute:+CSIM", timeout=0.3)
    try:
        with pytest.raises(DeadlineError) as caught:
            transport.transmit(bytes.fromhex("00A40004023F00"))
        assert caught.value.timeout == 0.3
    finally:
        transport.close()
