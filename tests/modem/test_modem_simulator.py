"""The simulated modem engine: timing, state, faults; and its pty front end."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tty

import pytest

from apdu.errors import UsageError
from modem.simulator.engine import SimulatedModem
from modem.simulator.faults import Faults, parse_faults


def run(engine: SimulatedModem, line: str, now: float) -> None:
    engine.feed(line.encode() + b"\r", now)


def test_latency_and_one_answer_after_another() -> None:
    engine = SimulatedModem("generic", latency=0.02)
    run(engine, "ATE0", 10.0)
    assert engine.take_due(10.0) == b"ATE0\r"  # echo is immediate, the answer is not
    assert engine.next_due() == pytest.approx(10.02)
    run(engine, "AT+CSQ", 10.0)
    assert engine.take_due(10.019) == b""
    assert engine.take_due(10.02) == b"\r\nOK\r\n"
    assert engine.next_due() == pytest.approx(10.04)  # queued behind the first answer
    assert engine.take_due(10.04) == b"\r\n+CSQ: 99,99\r\n\r\nOK\r\n"


def test_error_formats_follow_cmee() -> None:
    engine = SimulatedModem("quectel")
    answers = []
    for line in ("ATE0", "AT+CIMI", "AT+CMEE=1", "AT+CIMI", "AT+CMEE=2", "AT+CIMI", "AT+NOPE"):
        run(engine, line, 1.0)
        answers.append(engine.take_due(1.0))
    assert answers[1].endswith(b"\r\nERROR\r\n")
    assert answers[3] == b"\r\n+CME ERROR: 11\r\n"
    assert answers[5] == b"\r\n+CME ERROR: SIM PIN required\r\n"
    assert answers[6] == b"\r\nERROR\r\n"  # unknown command: plain ERROR


def test_echo_fault_ignores_ate0() -> None:
    engine = SimulatedModem("generic", faults=parse_faults("echo"))
    run(engine, "ATE0", 1.0)
    run(engine, "AT", 1.0)
    assert engine.take_due(1.0) == b"ATE0\r\r\nOK\r\nAT\r\r\nOK\r\n"


def test_reboot_loses_the_command_and_resets_volatile_state() -> None:
    engine = SimulatedModem("quectel", faults=parse_faults("reboot"), boot_delay=0.5)
    run(engine, "ATE0", 1.0)
    run(engine, "AT+CMEE=1", 1.0)
    engine.take_due(1.0)
    run(engine, 'AT+CGDCONT=1,"IP","ijmio.jp"', 2.0)
    run(engine, 'AT+QICSGP=1,1,"ijmio.jp","u","p",3', 2.0)
    assert engine.take_due(2.0) == b"\r\nOK\r\n"  # the CGDCONT; nothing for QICSGP
    run(engine, "AT", 2.1)  # a restarting modem hears nothing
    assert engine.take_due(2.4) == b""
    boot = engine.take_due(2.5)
    assert boot.startswith(b"\r\nRDY\r\n") and b"+CPIN: SIM PIN" in boot
    assert engine.nv.contexts[1] == ("IP", "ijmio.jp") and 1 not in engine.nv.auth
    run(engine, "AT", 3.0)
    assert engine.take_due(3.0) == b"AT\r\r\nOK\r\n"  # echo is back on


def test_settings_only_apply_after_a_cfun_cycle() -> None:
    engine = SimulatedModem("generic", faults=parse_faults("cfun-apply"))
    run(engine, "ATE0", 1.0)
    run(engine, 'AT+CGDCONT=1,"IP","new.apn"', 1.0)
    run(engine, "AT+CGDCONT?", 1.0)
    assert b'"IPV4V6",""' in engine.take_due(1.0)
    for line in ("AT+CFUN=0", "AT+CFUN=1", "AT+CGDCONT?"):
        run(engine, line, 2.0)
    assert b'+CGDCONT: 1,"IP","new.apn"' in engine.take_due(2.0)


def test_unsolicited_lines_before_inside_and_after() -> None:
    engine = SimulatedModem("huawei", faults=parse_faults("urc"), latency=0.01)
    run(engine, "ATE0", 0.0)
    engine.take_due(1.0)
    shapes = []
    for index in range(3):
        now = 2.0 + index
        run(engine, "AT+CSQ", now)
        lines = [line for line in engine.take_due(now + 1.0).split(b"\r\n") if line]
        shapes.append(
            ["urc" if line.startswith((b"^", b"+CEREG")) else line.decode() for line in lines]
        )
    assert shapes == [
        ["+CSQ: 99,99", "OK", "urc"],  # after the final result
        ["urc", "+CSQ: 99,99", "OK"],  # before the answer
        ["+CSQ: 99,99", "urc", "OK"],
    ]  # inside the answer


def test_garbage_every_nth_answer() -> None:
    engine = SimulatedModem("generic", faults=parse_faults("garbage:2"))
    blobs = []
    for _ in range(4):
        run(engine, "AT", 1.0)
        blobs.append(engine.take_due(1.0))
    assert [b"\x00\xfe\xff" in blob for blob in blobs] == [False, True, False, True]


def test_fault_list_parsing() -> None:
    faults = parse_faults("echo,slow:0.25,noanswer:+cgauth=,garbage,mute")
    assert faults == Faults(
        echo=True, slow=0.25, noanswer="+CGAUTH=", garbage_every=3, mute="<auth>"
    )
    assert parse_faults(None) == Faults() and not Faults().any
    for bad in ("nosuch", "slow:x", "garbage:-1"):
        with pytest.raises(UsageError):
            parse_faults(bad)


def test_simtool_modem_sim_serves_a_pty_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "simtool", "modem", "sim", "--dialect", "sierra"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 15.0)
        assert ready, "no pty path printed"
        path = process.stdout.readline().strip()
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd)
            os.write(fd, b"AT!ICCID?\r")
            answer = b""
            while b"OK\r\n" not in answer:
                readable, _, _ = select.select([fd], [], [], 5.0)
                assert readable, f"no answer, got {answer!r}"
                answer += os.read(fd, 1024)
        finally:
            os.close(fd)
        assert b"ICCID: 8981090000000000004F" in answer  # Sierra pads to 20 with F
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
