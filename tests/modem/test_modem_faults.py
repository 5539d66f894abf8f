"""Every simulator fault gives a correct result or a clear error, never a silent half-write.

The matrix runs in process (``simmodem://``) so the modem's stored state can
be compared with what ``configure`` reported; a few cases run again through a
real pty against a simulator process, as an operator would meet them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from modem.configure import configure_port
from modem.dialects import DIALECT_NAMES, DIALECTS, Auth
from modem.errors import AtTimeoutError, ConfigureError, ModemError, ModemGarbageError
from modem.info import read_info
from modem.modem import credential_command
from modem.profiles import IJMIO
from modem.simulator.engine import SimulatedModem
from modem.simulator.protocol_simmodem import modem_for_url
from tests.support.cli import simtool

SimFactory = Callable[..., Any]

FAULTS = [
    "echo",
    "urc",
    "cmee-text",
    "noanswer",
    "garbage",
    "garbage:2",
    "reboot",
    "cfun-apply",
    "echo,urc,cmee-text,garbage:3,cfun-apply,reboot",
]
FAST_DEADLINE = 0.5


def url(dialect: str, name: str, faults: str, latency: float = 0.0) -> str:
    return f"simmodem://{dialect}?name={name}&faults={faults}&latency={latency}"


def holds_ijmio(engine: SimulatedModem) -> bool:
    """The modem's stored settings are the operator's profile (what a customer gets)."""
    spec = engine.dialect.auth
    code = spec.code_for(Auth.PAP_OR_CHAP)
    return engine.nv.contexts.get(1) == ("IP", "ijmio.jp") and engine.nv.auth.get(1) == (
        code,
        "mio@ij",
        "ij",
    )


def rerun_writes(dialect: str) -> tuple[str, ...]:
    """What a second configure writes: nothing, or the credentials where the password
    cannot be read back (it could be anything)."""
    spec = DIALECTS[dialect]
    return () if spec.auth.password_readable else (credential_command(spec, 1, IJMIO).shown,)


@pytest.mark.parametrize("faults", FAULTS)
@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_fault_gives_a_verified_modem(dialect: str, faults: str, shared_name: str) -> None:
    address = url(dialect, shared_name, faults)
    engine = modem_for_url(address)
    result = configure_port(address, IJMIO, timeout=FAST_DEADLINE)
    assert result.verified, result
    assert holds_ijmio(engine)
    notes = " ".join(result.notes)
    if "noanswer" in faults:
        assert "did not answer during AT" + DIALECTS[dialect].auth.command in notes
    if "reboot" in faults:
        assert "restarted" in notes or "did not answer" in notes
        assert DIALECTS[dialect].auth.command in notes
    if "garbage" in faults:
        assert "garbage on the port" in notes
    again = configure_port(address, IJMIO, timeout=FAST_DEADLINE)
    assert again.written == rerun_writes(dialect) and again.verified


@pytest.mark.parametrize("dialect", ["quectel", "simcom"])
def test_restart_marker_is_recognised(dialect: str, shared_name: str) -> None:
    # Quectel and SIMCom announce a restart with RDY: no deadline is waited out.
    result = configure_port(url(dialect, shared_name, "reboot"), IJMIO, timeout=5.0)
    assert result.verified
    assert any("restarted (RDY)" in note for note in result.notes)


@pytest.mark.parametrize("dialect", ["sierra", "huawei"])
def test_slow_answers_within_the_deadline(dialect: str, shared_name: str) -> None:
    result = configure_port(url(dialect, shared_name, "slow:0.1"), IJMIO, timeout=1.0)
    assert result.verified


def test_wedged_modem_fails_naming_the_command_and_what_was_written(shared_name: str) -> None:
    address = url("telit", shared_name, "mute")
    engine = modem_for_url(address)
    with pytest.raises(ConfigureError) as caught:
        configure_port(address, IJMIO, timeout=FAST_DEADLINE)
    error = caught.value
    assert "AT#PDPAUTH=1,2" in str(error) and "****" in str(error)
    assert isinstance(error.cause, AtTimeoutError)
    # What the report says was written is exactly what the modem holds.
    assert error.written == ('AT+CGDCONT=1,"IP","ijmio.jp"',)
    assert engine.nv.contexts[1] == ("IP", "ijmio.jp") and 1 not in engine.nv.auth
    assert "ij" not in str(error).replace("ijmio", "").replace("mio@ij", "")


def test_permanent_garbage_is_a_clear_error(shared_name: str) -> None:
    with pytest.raises(ModemGarbageError) as caught:
        configure_port(url("quectel", shared_name, "garbage:1"), IJMIO, timeout=FAST_DEADLINE)
    assert caught.value.command.startswith("AT")
    assert caught.value.final == "OK"


def test_answers_slower_than_the_deadline(shared_name: str) -> None:
    with pytest.raises(ModemError) as caught:
        configure_port(url("generic", shared_name, "slow:0.4"), IJMIO, timeout=0.2)
    assert "AT" in str(caught.value) and "0.2 s" in str(caught.value)


def test_text_errors_are_decoded(shared_name: str) -> None:
    info = read_info(url("huawei", shared_name, "cmee-text,urc"), timeout=FAST_DEADLINE)
    assert info.sim.imsi is None
    assert any("+CME ERROR 11 (SIM PIN required)" in note for note in info.notes)
    kinds = [r.kind for r in info.network.registrations] if info.network else []
    assert kinds == ["CREG", "CGREG", "CEREG"]  # +C5GREG refused as text, skipped
    assert info.identity.manufacturer == "huawei"


@pytest.mark.parametrize(
    ("dialect", "faults", "extra"),
    [
        ("quectel", "echo,urc,cmee-text,garbage:4,cfun-apply,reboot", []),
        ("sierra", "reboot,urc", ["--timeout", "1"]),
        ("ublox", "noanswer,echo", ["--timeout", "1"]),
    ],
)
def test_faults_through_a_real_pty(
    dialect: str, faults: str, extra: list[str], sim_pty: SimFactory
) -> None:
    sim = sim_pty(dialect, faults=faults)
    run = simtool("modem", "configure", "--port", sim.path, "--profile", "ijmio", "--json", *extra)
    assert run.code == 0, run.output
    assert run.json["verified"] and run.json["notes"]
    again = simtool("modem", "configure", "--port", sim.path, "--json", *extra)
    assert again.code == 0 and tuple(again.json["written"]) == rerun_writes(dialect)


def test_wedged_modem_through_a_real_pty(sim_pty: SimFactory) -> None:
    sim = sim_pty("huawei", faults="mute")
    run = simtool("modem", "configure", "--port", sim.path, "--timeout", "0.5")
    assert run.code == 8  # a modem error; what was written is in the message
    assert "AT^AUTHDATA=1,2" in run.stderr
    assert 'written before the failure: AT+CGDCONT=1,"IP","ijmio.jp"' in run.stderr
