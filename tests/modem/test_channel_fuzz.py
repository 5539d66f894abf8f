"""The AT channel survives anything on a real pty: random bytes, long lines, odd Unicode.

The test plays the modem on the master side of ``os.openpty()``; the station
opens the slave with pyserial, exactly as a USB modem's port. Every command
gets an answer made of random material (split into several writes) and a
final result code, some of them odd (``+CME ERROR: ²``, vendor codes). The
channel must end every command (an answer or a :class:`ModemError`, never a
deadline), and its reader thread must still be running at the end. A reader
thread that stops anyway makes the next command fail at once with a port
error.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Iterator

import pytest
import serial

from modem.channel import AtChannel, at
from modem.errors import AtCommandError, AtTimeoutError, ModemError, ModemPortError

ODD_FINALS = (
    b"OK",
    b"ERROR",
    b"+CME ERROR: \xc2\xb2",  # a superscript two
    b"+CME ERROR: \xd9\xa3",  # an Arabic-Indic three
    b"+CMS ERROR: 1_0",
    b"MODEM ERROR: 5",
    b"COMMAND NOT SUPPORT",
    b"TOO MANY PARAMETERS",
    b"NO CARRIER",
    b"+CME ERROR: \xe2\x80\xae\xf0\x9f\x98\x80",  # right-to-left override and an emoji
)
ODD_TEXT = (
    "+CSQ: ²,99",
    "+CSQ: 20, 99",
    '+CGDCONT: 1, "IP", "internet"',
    '+CEREG: 2,1,"1A2B","01A2B3C4",42',
    "ünïcödé ✓ \u202e \U0001f600",
    "+CME ERROR",
    "OK OK",
)


class PtyModem:
    """The modem end of a pty: reads command lines, answers with what the test chose."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self._inbox = b""

    def next_command(self, timeout: float = 5.0) -> bytes:
        """Block (bounded) until a full command line arrives from the station."""
        import select

        end = time.monotonic() + timeout
        while b"\r" not in self._inbox:
            remaining = end - time.monotonic()
            assert remaining > 0, "the station sent no command"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                self._inbox += os.read(self.master, 4096)
        line, _, self._inbox = self._inbox.partition(b"\r")
        return line

    def send(self, data: bytes, rng: random.Random) -> None:
        """Write ``data`` in random pieces (a USB modem's answers arrive split)."""
        while data:
            cut = rng.randint(1, max(1, len(data)))
            os.write(self.master, data[:cut])
            data = data[cut:]

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def pty_modem() -> Iterator[PtyModem]:
    modem = PtyModem()
    yield modem
    modem.close()


def _noise(rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
    if kind == 1:
        return b"\r\n" + b"A" * rng.randint(1000, 40000) + b"\r\n"  # a very long line
    if kind == 2:
        return b"\r\n" + rng.choice(ODD_TEXT).encode("utf-8") + b"\r\n"
    if kind == 3:
        return b"\r\n" + bytes([0xFF, 0xFE, 0x00, 0x1B]) + b"\r\n"
    return b"\r\n+CEREG: 1\r\n"


def test_channel_survives_random_answers_on_a_pty(pty_modem: PtyModem) -> None:
    rng = random.Random(20261202)
    port = serial.Serial(pty_modem.path, timeout=0.05)
    channel = AtChannel(port, name="fuzz", default_timeout=3.0)
    answered = ended_in_error = 0
    try:
        for round_number in range(60):
            command = f"AT+CSQ{round_number}" if round_number % 2 else "AT+CSQ"
            outcome: dict[str, object] = {}

            def run(text: str = command, result: dict[str, object] = outcome) -> None:
                try:
                    result["response"] = channel.execute(at(text, prefix="+CSQ:"))
                except ModemError as failure:
                    result["error"] = failure

            worker = threading.Thread(target=run)
            worker.start()
            assert pty_modem.next_command().endswith(command.encode())
            answer = b"".join(_noise(rng) for _ in range(rng.randint(0, 4)))
            answer += b"\r\n" + rng.choice(ODD_FINALS) + b"\r\n"
            pty_modem.send(answer, rng)
            worker.join(timeout=10)
            assert not worker.is_alive(), f"round {round_number}: the command never ended"
            error = outcome.get("error")
            # Never a missed deadline: every answer carried a final result code.
            assert not isinstance(error, AtTimeoutError), f"round {round_number}: {error}"
            if "response" in outcome:
                answered += 1
            else:
                ended_in_error += 1
            # Let late pieces of this answer land before the next command.
            channel.wait_quiet(0.05, 2.0)
        assert channel._reader.is_alive()
        assert answered and ended_in_error
        # The channel still works with a clean answer.
        worker = threading.Thread(target=lambda: channel.execute(at("AT", prefix=False)))
        worker.start()
        assert pty_modem.next_command().endswith(b"AT")
        os.write(pty_modem.master, b"\r\nOK\r\n")
        worker.join(timeout=5)
        assert not worker.is_alive()
        assert channel.stats.garbage_lines > 0
    finally:
        channel.close()


def test_superscript_error_is_a_command_error_not_a_dead_reader(pty_modem: PtyModem) -> None:
    port = serial.Serial(pty_modem.path, timeout=0.05)
    channel = AtChannel(port, name="cme2", default_timeout=3.0)
    try:
        outcome: dict[str, object] = {}

        def run() -> None:
            try:
                channel.execute(at("AT+CIMI", prefix="+CIMI:", free_text=True))
            except ModemError as error:
                outcome["error"] = error

        worker = threading.Thread(target=run)
        worker.start()
        pty_modem.next_command()
        os.write(pty_modem.master, "\r\n+CME ERROR: ²\r\n".encode())
        worker.join(timeout=5)
        error = outcome["error"]
        assert isinstance(error, AtCommandError) and error.cme_code is None
        assert error.cme_text == "²"
        assert channel._reader.is_alive()
    finally:
        channel.close()


class _DyingPort:
    """A port whose read raises something no port should (a bug below the channel)."""

    port = "dying"
    timeout: float | None = 0.05
    is_open = True

    def __init__(self) -> None:
        self.reads = threading.Event()

    @property
    def in_waiting(self) -> int:
        return 0

    def read(self, size: int = 1) -> bytes:
        self.reads.set()
        raise RuntimeError("driver bug")

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.is_open = False


def test_a_stopped_reader_makes_the_next_command_fail_at_once() -> None:
    port = _DyingPort()
    channel = AtChannel(port, name="dying", default_timeout=30.0)  # type: ignore[arg-type]
    try:
        assert port.reads.wait(5)
        channel._reader.join(timeout=5)
        assert not channel._reader.is_alive()
        started = time.monotonic()
        with pytest.raises(ModemPortError, match="reader thread stopped"):
            channel.execute("AT")
        assert time.monotonic() - started < 5.0  # not the 30 s deadline
    finally:
        channel.close()


def test_a_failing_line_sorter_does_not_stop_the_reader(
    pty_modem: PtyModem, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = serial.Serial(pty_modem.path, timeout=0.05)
    channel = AtChannel(port, name="sorter", default_timeout=3.0)
    original = channel._sort_line
    failed = threading.Event()

    def flaky(raw: bytes) -> object:
        if raw == b"BOOM" and not failed.is_set():
            failed.set()
            raise ValueError("a bug in line sorting")
        return original(raw)

    monkeypatch.setattr(channel, "_sort_line", flaky)
    try:
        os.write(pty_modem.master, b"BOOM\r\n")
        assert failed.wait(5)
        worker = threading.Thread(target=lambda: channel.execute(at("AT", prefix=False)))
        worker.start()
        pty_modem.next_command()
        os.write(pty_modem.master, b"\r\nOK\r\n")
        worker.join(timeout=5)
        assert not worker.is_alive() and channel._reader.is_alive()
    finally:
        channel.close()
