"""Configure reports the SIM's state: the settings live in the modem, but a modem with a
blocked or unusable SIM must not leave the bench looking ready."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apdu.card import pin_block
from modem.configure import configure_port
from modem.modem import Modem, enter_pin_on_port
from modem.profiles import IJMIO
from tests.support.cli import simtool

SimFactory = Callable[..., Any]


@pytest.mark.parametrize("dialect", ["generic", "sierra", "ublox", "huawei"])
def test_pin_blocked_sim_is_a_warning(dialect: str, shared_name: str) -> None:
    result = configure_port(f"simmodem://{dialect}?name={shared_name}&profile=blocked-pin", IJMIO)
    assert result.verified  # the settings are the modem's, and they were proven
    assert result.sim_state == "SIM PUK"
    assert len(result.warnings) == 1 and "PIN1 is blocked" in result.warnings[0]
    assert "cannot attach" in result.warnings[0]


def test_puk_blocked_sim_is_a_warning(shared_name: str) -> None:
    address = f"simmodem://generic?name={shared_name}"
    with Modem.open(address) as modem:
        for _ in range(3):  # wrong PIN1 three times: blocked
            modem.csim(bytes.fromhex("0020000108") + pin_block("9999"))
        for _ in range(10):  # wrong PUK1 ten times: the card is dead
            modem.csim(bytes.fromhex("002C000110") + pin_block("99999999") + pin_block("1234"))
    result = configure_port(address, IJMIO)
    assert result.verified and result.sim_state == "SIM FAILURE"
    assert len(result.warnings) == 1 and "unusable" in result.warnings[0]


def test_ready_sim_gets_no_warning_and_stock_sim_a_note(shared_name: str) -> None:
    address = f"simmodem://quectel?name={shared_name}"
    stock = configure_port(address, IJMIO)
    assert stock.sim_state == "SIM PIN" and stock.warnings == ()
    assert any("waits for PIN1" in note for note in stock.notes)
    enter_pin_on_port(address, "0000")
    ready = configure_port(address, IJMIO)
    assert ready.sim_state == "READY" and ready.warnings == ()
    assert not any("PIN1" in note for note in ready.notes)


def test_blocked_sim_warning_through_the_cli(sim_pty: SimFactory) -> None:
    sim = sim_pty("telit", profile="blocked-pin")
    run = simtool("modem", "configure", "--port", sim.path, "--profile", "ijmio")
    assert run.code == 0, run.output
    assert "SIM state: SIM PUK" in run.stdout
    assert "warning: PIN1 is blocked" in run.stdout
    as_json = simtool("modem", "configure", "--port", sim.path, "--json")
    assert as_json.json["sim_state"] == "SIM PUK" and as_json.json["warnings"]
