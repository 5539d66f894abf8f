"""One card behind the simulated modem: +CPIN, +CSIM and the card layer see the same SIM.

``AT+CPIN`` verifies PIN1 on the simulator's virtual UICC, the very card model
``AT+CSIM`` passes APDUs to, so what the modem says (``+CPIN: READY``) and
what the card layer reads through ``AT+CSIM`` agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apdu.card import read_card
from apdu.virtual import VirtualUicc, lab_profile
from modem.csim import CsimTransport
from modem.modem import Modem, enter_pin_on_port
from modem.simulator.engine import SimulatedModem
from modem.simulator.protocol_simmodem import share
from tests.modem.simcards import ReportsVerification
from tests.support.cli import simtool

SimFactory = Callable[..., Any]

# EF.UST under ADF.USIM: readable only once PIN1 is verified (TS 31.102 clause 4.2.8).
SELECT_USIM = bytes.fromhex("00A4040C07A0000000871002")
SELECT_UST = bytes.fromhex("00A4000C026F38")
READ_ONE_BYTE = bytes.fromhex("00B0000001")


def read_ust_status(modem: Modem) -> int:
    """The status word of reading EF.UST through AT+CSIM."""
    modem.csim(SELECT_USIM)
    modem.csim(SELECT_UST)
    return int.from_bytes(modem.csim(READ_ONE_BYTE)[-2:], "big")


def test_cpin_verifies_pin1_on_the_card_that_csim_talks_to(shared_name: str) -> None:
    card = VirtualUicc(lab_profile(0))
    url = share(shared_name, SimulatedModem("generic", card=card))
    with Modem.open(url) as modem:
        assert read_ust_status(modem) == 0x6982  # security status not satisfied
        result = modem.enter_pin("0000")
        assert result.state_after == "READY"
        assert read_ust_status(modem) == 0x9000  # the same card, now verified
    assert card.pin_state(0x01) == (3, True, 10)


@pytest.mark.parametrize("dialect", ["generic", "sierra", "quectel", "telit"])
def test_card_that_hides_the_counter_once_verified(dialect: str, shared_name: str) -> None:
    # Many UICCs answer an empty VERIFY with 9000 once PIN1 is verified: the counter is
    # then not revealed, which must not read as "0 attempts left, SIM PUK".
    url = share(shared_name, SimulatedModem(dialect, card=ReportsVerification()))
    result = enter_pin_on_port(url, "0000")
    assert (result.state_before, result.state_after) == ("SIM PIN", "READY")
    with Modem.open(url) as modem:
        assert modem.pin_state() == "READY"
        assert modem.imsi() == lab_profile(0).imsi


def test_modem_and_card_layer_agree_on_pin1(shared_name: str) -> None:
    url = share(shared_name, SimulatedModem("generic", card=ReportsVerification()))
    with CsimTransport(url) as transport:
        before = read_card(transport)
    assert before.pins["pin1"].verified is False
    enter_pin_on_port(url, "0000")
    with Modem.open(url) as modem:
        assert modem.pin_state() == "READY"
    with CsimTransport(url) as transport:
        after = read_card(transport)
    assert after.pins["pin1"].verified is True


def test_pin_through_the_modem_then_read_through_the_modem(sim_pty: SimFactory) -> None:
    sim = sim_pty("generic")
    assert simtool("modem", "pin", "--port", sim.path, "--pin", "0000").code == 0
    info = simtool("modem", "info", "--port", sim.path, "--json")
    assert info.json["sim"]["pin_state"] == "READY"
    read = simtool("read", "--modem", sim.path, "--json")
    assert read.code == 0, read.output
    assert read.json["pins"]["pin1"]["verified"] is True
