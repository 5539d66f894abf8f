"""PIN entry through the modem follows the station's PIN policy (apdu.pin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apdu.errors import PinPolicyError, UsageError
from modem.errors import ModemPinError, SimStateRefusalError
from modem.modem import Modem, enter_pin_on_port
from modem.simulator.protocol_simmodem import modem_for_url
from tests.support.cli import simtool

SimFactory = Callable[..., Any]


def attempts(history: Any) -> int:
    return sum(1 for line in history if line.upper().startswith("AT+CPIN="))


def test_right_pin_unlocks_and_the_counter_stays_full(shared_name: str) -> None:
    address = f"simmodem://quectel?name={shared_name}"
    result = enter_pin_on_port(address, "0000")
    assert (result.state_before, result.state_after, result.sent) == ("SIM PIN", "READY", True)
    assert (result.retries_before, result.retries_after) == (3, 3)
    with Modem.open(address) as modem:
        assert modem.imsi().startswith("44010")
        again = modem.enter_pin("0000")
    assert not again.sent and again.state_before == "READY"


def test_wrong_pin_is_reported_and_never_retried(shared_name: str) -> None:
    address = f"simmodem://simcom?name={shared_name}"
    engine = modem_for_url(address)
    with pytest.raises(ModemPinError) as caught:
        enter_pin_on_port(address, "1234")
    assert (caught.value.retries_before, caught.value.retries_after) == (3, 2)
    assert caught.value.exit_code == 5  # a PIN the SIM rejected, as simtool pin verify
    assert attempts(engine.history) == 1
    assert "1234" not in str(caught.value)
    assert all("1234" not in line for line in engine.history)


def test_last_attempt_is_refused_before_anything_is_sent(shared_name: str) -> None:
    address = f"simmodem://huawei?name={shared_name}"
    engine = modem_for_url(address)
    for wrong in ("1111", "2222"):
        with pytest.raises(ModemPinError):
            enter_pin_on_port(address, wrong)
    assert attempts(engine.history) == 2
    with pytest.raises(PinPolicyError) as caught:
        enter_pin_on_port(address, "0000")
    assert caught.value.rule == "last-attempt" and caught.value.retries_before == 1
    assert attempts(engine.history) == 2  # nothing sent
    forced = enter_pin_on_port(address, "0000", force=True)
    assert forced.state_after == "READY" and forced.retries_after == 3


def test_counter_from_empty_verify_when_the_dialect_has_no_command(shared_name: str) -> None:
    # Sierra has no retry command in the table: AT+CSIM with an empty VERIFY.
    address = f"simmodem://sierra?name={shared_name}"
    with Modem.open(address) as modem:
        retries = modem.pin_retries()
    assert (retries.pin1, retries.puk1, retries.source) == (3, 10, "AT+CSIM")
    engine = modem_for_url(address)
    assert 'AT+CSIM=8,"00200001"' in engine.history


def test_blocked_pin_wants_the_puk_and_nothing_is_sent(shared_name: str) -> None:
    address = f"simmodem://fibocom?name={shared_name}&profile=blocked-pin"
    engine = modem_for_url(address)
    with pytest.raises(SimStateRefusalError) as caught:
        enter_pin_on_port(address, "0000")
    assert caught.value.state == "SIM PUK"
    assert caught.value.exit_code == 4  # refused by the station, nothing spent
    assert attempts(engine.history) == 0


def test_malformed_pin_is_refused_locally(shared_name: str) -> None:
    address = f"simmodem://telit?name={shared_name}"
    engine = modem_for_url(address)
    with pytest.raises(UsageError):
        enter_pin_on_port(address, "12ab")
    assert attempts(engine.history) == 0


def test_pin_command_through_a_real_pty(sim_pty: SimFactory) -> None:
    sim = sim_pty("ublox")
    run = simtool("modem", "pin", "--port", sim.path, "--pin-stdin", "--json", input="0000\n")
    assert run.code == 0, run.output
    assert run.json["state_after"] == "READY" and "0000" not in run.output
    info = simtool("modem", "info", "--port", sim.path, "--json")
    assert info.json["sim"]["imsi"].startswith("44010")
    registered = [r for r in info.json["network"]["registrations"] if r["stat"] in (1, 5)]
    assert registered, info.json["network"]
