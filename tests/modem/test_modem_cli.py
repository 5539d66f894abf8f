"""The ``simtool modem`` command line: exit codes, usage errors, help, human output.

Exit codes follow the station's table: 8 modem error, 9 not verified, 4 PIN
refused by the station, 5 PIN rejected by the SIM, 64 usage, 69 port
unavailable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from serial.serialutil import SerialException

from apdu.virtual import VirtualUicc, lab_profile
from modem.errors import (
    AtCommandError,
    AtTimeoutError,
    ConfigFileError,
    ConfigureError,
    ModemError,
    ModemGarbageError,
    ModemPinError,
    ModemPortError,
    ModemRebootedError,
    NotVerifiedError,
    SimStateRefusalError,
    TraceFileError,
    UnknownDialectError,
    UnknownProfileError,
    UnsupportedCredentialsError,
)
from modem.simulator.engine import SimulatedModem
from modem.simulator.faults import FAULT_NAMES
from modem.simulator.protocol_simmodem import modem_for_url, share
from modem.trace import AtTracer
from simtool.cli import main
from tests.modem.simcards import ReportsVerification
from tests.support.cli import simtool

SimFactory = Callable[..., Any]
BAD_TRACE = "/nonexistent/x.jsonl"


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``simtool ARGS`` in this process (to reach an engine built here); (code, out, err)."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def test_exit_codes_follow_the_station_table() -> None:
    assert ModemError.exit_code == 8
    for failure in (
        AtCommandError,
        AtTimeoutError,
        ModemGarbageError,
        ModemRebootedError,
        ConfigureError,
    ):
        assert failure.exit_code == 8, failure
    assert NotVerifiedError.exit_code == 9
    assert SimStateRefusalError.exit_code == 4
    assert ModemPinError.exit_code == 5
    assert ModemPortError.exit_code == 69
    for usage in (
        UnknownDialectError,
        UnsupportedCredentialsError,
        UnknownProfileError,
        ConfigFileError,
        TraceFileError,
    ):
        assert usage.exit_code == 64, usage


@pytest.mark.parametrize("value", ["-1", "0", "abc", "nan", "inf"])
@pytest.mark.parametrize("command", ["info", "configure", "pin"])
def test_timeout_must_be_a_positive_number_of_seconds(command: str, value: str) -> None:
    run = (
        simtool(
            "modem", command, "--port", "simmodem://generic", "--pin", "0000", "--timeout", value
        )
        if command == "pin"
        else simtool("modem", command, "--port", "simmodem://generic", "--timeout", value)
    )
    assert run.code == 64, run.output
    assert "--timeout" in run.stderr and "Traceback" not in run.output


def test_other_option_errors_are_usage_errors_too() -> None:
    run = simtool("modem", "configure", "--port", "simmodem://generic", "--cid", "99")
    assert run.code == 64 and "--cid" in run.stderr


@pytest.mark.parametrize("value", ["abc", "-0.5", "nan"])
def test_simmodem_latency_parameter_is_named(value: str) -> None:
    with pytest.raises(SerialException) as caught:
        modem_for_url(f"simmodem://generic?latency={value}")
    assert f"latency={value!r}" in str(caught.value)
    assert "could not convert" not in str(caught.value)
    run = simtool("modem", "info", "--port", f"simmodem://generic?latency={value}")
    assert run.code == 69, run.output
    assert "latency=" in run.stderr and "could not convert" not in run.stderr


def test_port_that_cannot_be_opened() -> None:
    run = simtool("modem", "info", "--port", "/dev/nonexistent-modem")
    assert run.code == 69 and "/dev/nonexistent-modem" in run.stderr


@pytest.mark.parametrize("command", ["info", "configure", "pin"])
def test_trace_file_that_cannot_be_written_is_a_usage_error(command: str) -> None:
    extra = ["--pin", "0000"] if command == "pin" else []
    run = simtool("modem", command, "--port", "simmodem://generic", "--trace", BAD_TRACE, *extra)
    assert run.code == 64, run.output
    assert f"cannot write trace file {BAD_TRACE}:" in run.stderr
    assert "Traceback" not in run.output


def test_trace_file_error_carries_the_path(tmp_path: Path) -> None:
    with pytest.raises(TraceFileError) as caught:
        AtTracer.to_path(tmp_path / "missing-dir" / "x.jsonl")
    assert caught.value.path.endswith("x.jsonl") and caught.value.reason
    tracer = AtTracer.to_path(tmp_path / "ok.jsonl")
    tracer.close()
    assert (tmp_path / "ok.jsonl").stat().st_mode & 0o777 == 0o600


def test_wrong_pin_is_exit_5_and_a_refusal_is_exit_4(sim_pty: SimFactory) -> None:
    stock = sim_pty("generic")
    wrong = simtool("modem", "pin", "--port", stock.path, "--pin", "1234")
    assert wrong.code == 5, wrong.output  # the same as simtool pin verify
    assert "2 attempt(s) left" in wrong.stderr and "1234" not in wrong.output
    blocked = sim_pty("generic", profile="blocked-pin")
    refused = simtool("modem", "pin", "--port", blocked.path, "--pin", "0000")
    assert refused.code == 4, refused.output
    assert "SIM PUK" in refused.stderr and "nothing was sent" in refused.stderr


class DropsTheUser(SimulatedModem):
    """A modem whose firmware acknowledges the credentials but keeps no user name."""

    def _auth(self, form: Any, args: Any) -> list[str]:
        lines = super()._auth(form, args)
        if form == "set" and len(args) > 1:
            cid = int(args[0].text)
            code, _, password = self.nv.auth[cid]
            self.nv.auth[cid] = (code, "", password)
        return lines


def test_settings_not_confirmed_is_exit_9(
    capsys: pytest.CaptureFixture[str], shared_name: str
) -> None:
    url = share(shared_name, DropsTheUser("generic", card=VirtualUicc(lab_profile(0))))
    code, out, err = run_in_process(capsys, "modem", "configure", "--port", url)
    assert code == 9, out + err
    assert "NOT VERIFIED" in out
    assert "configuration not verified: user read back as ''" in err


def no_python_values(text: str) -> None:
    for word in ("None", "True", "False"):
        assert word not in text, text


def test_human_output_shows_unknown_and_yes_no(sim_pty: SimFactory) -> None:
    # Telit's #PCT gives only the counter of the code asked for now: PUK1 is unknown.
    sim = sim_pty("telit")
    info = simtool("modem", "info", "--port", sim.path)
    assert info.code == 0, info.output
    no_python_values(info.stdout)
    text = " ".join(info.stdout.split())
    assert "PIN1 / PUK1 left │ 3 / unknown" in text
    assert "│ 1 │ IPV4V6 │ │ no │" in text  # the PDP table's "active" column
    dialects = simtool("modem", "dialects")
    no_python_values(dialects.stdout)
    assert "│ yes " in dialects.stdout and "│ no " in dialects.stdout


def test_pin_output_says_unknown_when_the_counter_is_not_revealed(
    capsys: pytest.CaptureFixture[str], shared_name: str
) -> None:
    # Sierra reads counters with an empty VERIFY through AT+CSIM; once the PIN is
    # verified this card answers 9000, which tells no number.
    url = share(shared_name, SimulatedModem("sierra", card=ReportsVerification()))
    code, out, err = run_in_process(capsys, "modem", "pin", "--port", url, "--pin", "0000")
    assert code == 0, out + err
    assert "PIN1 attempts left: unknown" in out
    no_python_values(out)


def test_trace_help_names_at_commands_and_leaves_the_card_option_alone() -> None:
    for command in ("info", "configure", "pin"):
        text = " ".join(simtool("modem", command, "--help").stdout.split())
        assert "every AT command and answer" in text and "credentials and PINs masked" in text
        assert "APDU" not in text
    card = " ".join(simtool("read", "--help").stdout.split())
    assert "Write every APDU exchanged" in card


def test_simulator_help_lists_every_fault_and_explains_lab_profiles() -> None:
    text = " ".join(simtool("modem", "sim", "--help").stdout.split())
    for name in FAULT_NAMES:
        assert name in text, name
    assert "mute[:cmd]" in text
    assert (
        "stock card N as generated by the lab (lab_profile(N)), not the card currently "
        "in lab slot N"
    ) in text
