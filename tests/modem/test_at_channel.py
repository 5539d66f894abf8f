"""The AT channel on byte sequences real modems send, through a scripted port.

The scripted port answers each command line with fixed bytes (echo, URCs in
the middle of an answer, text errors, restarts, garbage): exact sequences the
simulator would only produce by chance. Everything goes through the real
reader thread and framing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from modem.channel import AtChannel, Unsolicited, at, deadline_for
from modem.errors import (
    AtCommandError,
    AtParseError,
    AtTimeoutError,
    ModemGarbageError,
    ModemPortError,
    ModemRebootedError,
)

Script = dict[str, bytes | Callable[[], bytes] | None]


class ScriptedPort:
    """Just enough of a pyserial port: ``write`` looks the command up, ``read`` returns it."""

    def __init__(self, script: Script, *, unsolicited: bytes = b"") -> None:
        self.port = "scripted"
        self.timeout: float | None = 0.05
        self.script = script
        self.written: list[str] = []
        self._data = bytearray(unsolicited)
        self._ready = threading.Condition()
        self.is_open = True

    def push(self, data: bytes) -> None:
        with self._ready:
            self._data += data
            self._ready.notify_all()

    @property
    def in_waiting(self) -> int:
        return len(self._data)

    def read(self, size: int = 1) -> bytes:
        with self._ready:
            if not self._data and self.is_open:
                self._ready.wait(self.timeout)
            data = bytes(self._data[:size])
            del self._data[:size]
            return data

    def write(self, data: bytes) -> int:
        line = data.decode().rstrip("\r")
        self.written.append(line)
        answer = self.script.get(line, b"\r\nERROR\r\n")
        if callable(answer):
            answer = answer()
        if answer is not None:
            self.push(answer)
        return len(data)

    def flush(self) -> None:
        pass

    def cancel_read(self) -> None:
        with self._ready:
            self._ready.notify_all()

    def close(self) -> None:
        self.is_open = False
        self.cancel_read()


def channel_for(script: Script, **kwargs: object) -> tuple[AtChannel, ScriptedPort]:
    port = ScriptedPort(script)
    return AtChannel(port, name="scripted", default_timeout=1.0, **kwargs), port  # type: ignore[arg-type]


def test_multi_line_answer_with_echo() -> None:
    channel, _ = channel_for(
        {
            "AT+CGDCONT?": (
                b'AT+CGDCONT?\r\r\n+CGDCONT: 1,"IP","a","0.0.0.0",0,0\r\n'
                b'+CGDCONT: 2,"IPV6","b","::",0,0\r\n\r\nOK\r\n'
            )
        }
    )
    with channel:
        answer = channel.execute("AT+CGDCONT?")
    assert answer.echoed
    assert answer.lines == ('+CGDCONT: 1,"IP","a","0.0.0.0",0,0', '+CGDCONT: 2,"IPV6","b","::",0,0')
    assert answer.final.ok


def test_free_text_answer_without_echo() -> None:
    channel, _ = channel_for({"AT+CGSN": b"\r\n862695031045226\r\n\r\nOK\r\n"})
    with channel:
        answer = channel.execute(at("AT+CGSN", free_text=True))
    assert answer.lines == ("862695031045226",) and not answer.echoed


def test_unsolicited_lines_inside_an_answer_are_kept_apart() -> None:
    seen: list[Unsolicited] = []
    channel, _ = channel_for(
        {
            "AT+CEREG?": (
                b'\r\n+CEREG: 1,"1A2B","01A2B3C4",7\r\n'  # unsolicited form, before the answer
                b"\r\n+CEREG: 2,1\r\n"  # the answer (n=2, stat=1)
                b'\r\n+QIND: "csq",20,99\r\n'  # vendor URC inside the answer
                b"\r\nOK\r\n"
                b"\r\n^MODE: 17,17\r\n"
            )
        }
    )  # after the final result
    with channel:
        channel.subscribe(seen.append)
        answer = channel.execute("AT+CEREG?")
        late = channel.next_unsolicited(timeout=1.0)
        queued = [late, *channel.drain_unsolicited()]
    assert answer.lines == ("+CEREG: 2,1",)
    names = [u.line for u in queued if u is not None]
    assert names[:2] == ['+CEREG: 1,"1A2B","01A2B3C4",7', '+QIND: "csq",20,99']
    assert "^MODE: 17,17" in names
    assert [u.line for u in seen] == names


def test_unsolicited_between_commands_reaches_queue_and_callback() -> None:
    channel, port = channel_for({})
    got = threading.Event()
    with channel:
        channel.subscribe(lambda urc: got.set())
        port.push(b'\r\nRING\r\n\r\n+CMTI: "SM",3\r\n')
        assert got.wait(2.0)
        first = channel.next_unsolicited(timeout=1.0)
        second = channel.next_unsolicited(timeout=1.0)
    assert first is not None and first.line == "RING" and first.known
    assert second is not None and second.name == "+CMTI"


@pytest.mark.parametrize(
    ("final", "code", "text"),
    [
        (b"+CME ERROR: 16", 16, "incorrect password"),
        (b"+CME ERROR: incorrect password", 16, "incorrect password"),
        (b"+CME ERROR: SIM busy", 14, "SIM busy"),
    ],
)
def test_cme_error_numeric_and_text(final: bytes, code: int, text: str) -> None:
    channel, _ = channel_for({'AT+CPIN="1234"': b"\r\n" + final + b"\r\n"})
    with channel, pytest.raises(AtCommandError) as caught:
        channel.execute(at('AT+CPIN="1234"', shown='AT+CPIN="****"'))
    error = caught.value
    assert (error.cme_code, error.cme_text) == (code, text)
    assert error.command == 'AT+CPIN="****"' and "1234" not in str(error)


@pytest.mark.parametrize(
    ("final", "attribute", "value"),
    [
        (b"+CMS ERROR: 330", "cms_code", 330),
        (b"NO CARRIER", "final", "NO CARRIER"),
        (b"ERROR", "final", "ERROR"),
    ],
)
def test_other_failures(final: bytes, attribute: str, value: object) -> None:
    channel, _ = channel_for({"AT+X": b"\r\n" + final + b"\r\n"})
    with channel, pytest.raises(AtCommandError) as caught:
        channel.execute("AT+X")
    assert getattr(caught.value, attribute) == value
    assert "AT+X" in str(caught.value)


def test_timeout_names_the_command_and_resynchronises() -> None:
    channel, port = channel_for(
        {"AT+COPS=0": None, "AT": b"\r\nOK\r\n", "AT+CSQ": b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"}
    )
    with channel:
        with pytest.raises(AtTimeoutError) as caught:
            channel.execute(at("AT+COPS=0", timeout=0.2))
        assert caught.value.command == "AT+COPS=0" and caught.value.timeout == 0.2
        # The late answer of the timed-out command must not become the next one's.
        port.push(b"\r\nOK\r\n")
        answer = channel.execute("AT+CSQ")
    assert answer.lines == ("+CSQ: 20,99",)
    assert port.written == ["AT+COPS=0", "AT", "AT+CSQ"]
    assert channel.stats.stale_lines == 1 and channel.stats.timeouts == 1


def test_long_commands_get_long_deadlines() -> None:
    assert deadline_for("AT+COPS=?") == 180.0
    assert deadline_for("AT+CFUN=1") == 15.0
    assert deadline_for("AT+CSQ", 2.0) == 2.0


def test_garbage_is_reported_after_the_final_result() -> None:
    channel, _ = channel_for(
        {"AT+CSQ": b"\r\n\x00\xfe\xff\x13\r\n+CSQ: 20,99\r\n\r\nOK\r\n", "AT": b"\r\nOK\r\n"}
    )
    with channel:
        with pytest.raises(ModemGarbageError) as caught:
            channel.execute("AT+CSQ")
        assert caught.value.final == "OK" and caught.value.garbage == (b"\x00\xfe\xff\x13",)
        channel.execute("AT")  # still in step
    assert channel.stats.garbage_lines == 1


def test_restart_marker_ends_the_command() -> None:
    channel, _ = channel_for({'AT+QICSGP=1,1,"x","","",0': b"\r\nRDY\r\n\r\n+CFUN: 1\r\n"})
    with channel, pytest.raises(ModemRebootedError) as caught:
        channel.execute('AT+QICSGP=1,1,"x","","",0')
    assert caught.value.marker == "RDY" and channel.reboots == 1


def test_port_failure_is_a_modem_port_error() -> None:
    class Broken(ScriptedPort):
        def read(self, size: int = 1) -> bytes:
            raise OSError(5, "Input/output error")

    port = Broken({})
    channel = AtChannel(port, name="broken", default_timeout=0.5)  # type: ignore[arg-type]
    with channel, pytest.raises(ModemPortError) as caught:
        channel.execute("AT")
    assert caught.value.port == "broken"


def test_one_command_in_flight_across_threads() -> None:
    answers: dict[str, bytes | Callable[[], bytes] | None] = {
        f"AT+N{i}": f"\r\n+N{i}: {i}\r\n\r\nOK\r\n".encode() for i in range(20)
    }
    channel, _port = channel_for(answers)
    results: dict[int, tuple[str, ...]] = {}

    def worker(i: int) -> None:
        results[i] = channel.execute(f"AT+N{i}?".replace("?", "")).lines

    with channel:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
    assert results == {i: (f"+N{i}: {i}",) for i in range(20)}


@pytest.mark.parametrize("text", ['AT+CGDCONT=1,"IP","a"\rAT+CFUN=0', 'AT+CPIN="ö"'])
def test_command_must_be_one_ascii_line(text: str) -> None:
    channel, port = channel_for({})
    with channel, pytest.raises(AtParseError):
        channel.execute(text)
    assert port.written == []
