"""The transport base class: tracing with masked secrets, deadlines, replay."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest

from apdu.command import CommandApdu
from apdu.errors import DeadlineError, ParseError, TransportError
from apdu.transport.base import CardTransport
from apdu.transport.replay import ReplayMismatchError, ReplayTransport
from apdu.transport.trace import Tracer, TraceRecord, mask_command


class ScriptedTransport(CardTransport):
    """A backend answering from a dict, optionally stalling on one command."""

    needs_watchdog = True

    def __init__(
        self, answers: dict[bytes, bytes], stall_on: bytes | None = None, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.answers = answers
        self.stall_on = stall_on
        self.release = threading.Event()
        self.connects = 0

    def _connect(self) -> bytes:
        self.connects += 1
        return bytes.fromhex("3B0000")

    def _disconnect(self) -> None:
        return None

    def _transmit(self, command: bytes, timeout: float) -> bytes:
        if command == self.stall_on:
            self.release.wait(10)
        return self.answers.get(command, b"\x6d\x00")


SELECT_MF = bytes.fromhex("00A4000C023F00")
VERIFY_0000 = bytes.fromhex("002000010830303030FFFFFFFF")


def test_trace_masks_pin_commands_and_keeps_length() -> None:
    masked = mask_command(VERIFY_0000)
    assert masked.startswith("0020000108")
    assert "3030" not in masked
    assert len(masked) == len(VERIFY_0000.hex())
    # Non-secret commands are traced in full.
    assert mask_command(SELECT_MF) == SELECT_MF.hex().upper()


@pytest.mark.parametrize("ins", [0x20, 0x24, 0x26, 0x28, 0x2C])
def test_every_pin_instruction_is_masked(ins: int) -> None:
    command = CommandApdu(0x00, ins, 0x00, 0x01, b"12345678").to_bytes()
    assert "3132333435363738" not in mask_command(command)


def test_transmit_traces_counts_and_returns_response() -> None:
    stream = io.StringIO()
    transport = ScriptedTransport(
        {SELECT_MF: b"\x90\x00", VERIFY_0000: b"\x63\xc2"}, tracer=Tracer(stream), name="r0"
    )
    assert transport.transmit(SELECT_MF).sw == 0x9000
    assert transport.transmit(VERIFY_0000).sw == 0x63C2
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    # The power-up comes first, with the ATR, then one record per exchange.
    assert [(line["event"], line["response"]) for line in lines] == [
        ("connect", "3B0000"),
        ("apdu", "9000"),
        ("apdu", "63C2"),
    ]
    assert "30303030" not in stream.getvalue()
    assert transport.stats.apdus == 2
    assert transport.stats.by_ins == {0xA4: 1, 0x20: 1}


def test_short_command_is_refused_before_the_backend() -> None:
    transport = ScriptedTransport({})
    with pytest.raises(ParseError):
        transport.transmit(b"\x00\xa4")
    assert transport.stats.apdus == 0


def test_truncated_response_is_a_parse_error() -> None:
    transport = ScriptedTransport({SELECT_MF: b"\x90"})
    with pytest.raises(ParseError):
        transport.transmit(SELECT_MF)


def test_stalled_card_hits_the_deadline_and_forces_a_reconnect() -> None:
    transport = ScriptedTransport({SELECT_MF: b"\x90\x00"}, stall_on=VERIFY_0000, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(DeadlineError) as info:
        transport.transmit(VERIFY_0000)
    assert 0.15 < time.monotonic() - started < 2.0
    assert info.value.command == VERIFY_0000[:4]
    # The link is unusable until reconnected: nothing is sent on a stuck handle.
    with pytest.raises(TransportError):
        transport.transmit(SELECT_MF)
    transport.release.set()
    transport.reconnect()
    assert transport.transmit(SELECT_MF).sw == 0x9000
    assert transport.connects == 2


def test_replay_answers_in_order_and_matches_masked_secrets() -> None:
    records = [
        TraceRecord(mask_command(SELECT_MF), "9000", 0.0, 0.0),
        TraceRecord(mask_command(VERIFY_0000), "63C2", 0.0, 0.0),
    ]
    replay = ReplayTransport(records)
    assert replay.transmit(SELECT_MF).sw == 0x9000
    # Another PIN of the same length matches the masked record.
    other_pin = bytes.fromhex("002000010831323334FFFFFFFF")
    assert replay.transmit(other_pin).sw == 0x63C2
    assert replay.remaining == 0
    with pytest.raises(ReplayMismatchError):
        replay.transmit(SELECT_MF)


def test_replay_detects_a_different_command() -> None:
    replay = ReplayTransport([TraceRecord(mask_command(SELECT_MF), "9000", 0.0, 0.0)])
    with pytest.raises(ReplayMismatchError, match="trace has"):
        replay.transmit(bytes.fromhex("00A4000C022FE2"))


def test_trace_file_round_trip(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "t.jsonl"
    tracer = Tracer.to_path(path)
    transport = ScriptedTransport({SELECT_MF: b"\x90\x00"}, tracer=tracer)
    transport.transmit(SELECT_MF)
    tracer.close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    replay = ReplayTransport.from_file(path)
    assert replay.transmit(SELECT_MF).sw == 0x9000


def test_bad_trace_line_names_the_line(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "bad.jsonl"
    path.write_text('{"command": "00A4", "response": "9000"}\nnot json\n')
    with pytest.raises(ParseError, match="trace line 2"):
        ReplayTransport.from_file(path)
