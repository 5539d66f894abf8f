"""The card side of the vpcd protocol, without pcscd: frames, answers, the socket link."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.errors import ParseError, SimtoolError
from apdu.virtual import VirtualUicc, lab_profile
from apdu.virtual.vpcd import (
    MAX_PAYLOAD,
    FrameDecoder,
    VpcdCardLink,
    VpcdControl,
    VpcdProtocolError,
    answer,
    encode_frame,
)

SELECT_MF = bytes.fromhex("00A40004023F00")


class RecordingCard:
    """The smallest object with the card methods, recording what vpcd asked of it."""

    atr = bytes.fromhex("3B02AABB")

    def __init__(self, *, fail: bool = False) -> None:
        self.events: list[str] = []
        self.fail = fail

    def power_on(self) -> bytes:
        self.events.append("on")
        return self.atr

    def power_off(self) -> None:
        self.events.append("off")

    def reset(self) -> bytes:
        self.events.append("reset")
        return self.atr

    def process(self, command: bytes) -> bytes:
        if self.fail:
            raise RuntimeError("model bug")
        self.events.append(command.hex())
        return b"\x90\x00"


# --- frames ---------------------------------------------------------------------------


def test_frame_is_big_endian_length_then_payload() -> None:
    assert encode_frame(b"\x04") == b"\x00\x01\x04"
    assert encode_frame(bytes(300))[:2] == b"\x01\x2c"
    assert encode_frame(b"") == b"\x00\x00"


def test_frame_longer_than_16_bit_length_is_refused() -> None:
    encode_frame(bytes(MAX_PAYLOAD))
    with pytest.raises(VpcdProtocolError) as info:
        encode_frame(bytes(MAX_PAYLOAD + 1))
    assert info.value.length == MAX_PAYLOAD + 1


@given(st.lists(st.binary(max_size=600), max_size=8), st.data())
def test_decoder_recovers_frames_from_any_split(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(p) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    decoder = FrameDecoder()
    got: list[bytes] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        got += decoder.feed(stream[start:cut])
        start = cut
    assert got == payloads
    assert decoder.pending == 0


@given(st.binary(max_size=64))
def test_decoder_never_raises_and_keeps_incomplete_bytes(data: bytes) -> None:
    decoder = FrameDecoder()
    payloads = decoder.feed(data)
    assert sum(2 + len(p) for p in payloads) + decoder.pending == len(data)


# --- answers --------------------------------------------------------------------------


def test_atr_request_is_the_only_control_with_an_answer() -> None:
    card = RecordingCard()
    assert answer(card, bytes([VpcdControl.ATR])) == card.atr
    assert answer(card, bytes([VpcdControl.POWER_ON])) is None
    assert answer(card, bytes([VpcdControl.RESET])) is None
    assert answer(card, bytes([VpcdControl.POWER_OFF])) is None
    assert card.events == ["on", "reset", "off"]


def test_command_apdu_gets_the_cards_response_apdu() -> None:
    card, twin = VirtualUicc(lab_profile(0)), VirtualUicc(lab_profile(0))
    card.power_on()
    twin.power_on()
    reply = answer(card, SELECT_MF)
    assert reply == twin.process(SELECT_MF)
    # T=0: a SELECT asking for the FCP answers 61xx, the data comes with GET RESPONSE.
    assert reply is not None and reply[0] == 0x61


@pytest.mark.parametrize("message", [b"", b"\x03", b"\x05", b"\xff"])
def test_empty_or_unknown_control_is_a_parse_error(message: bytes) -> None:
    with pytest.raises(ParseError):
        answer(RecordingCard(), message)


def test_a_card_model_that_raises_answers_6f00() -> None:
    assert answer(RecordingCard(fail=True), SELECT_MF) == b"\x6f\x00"


@given(st.binary(max_size=300))
def test_answer_gives_bytes_none_or_parse_error(message: bytes) -> None:
    card = VirtualUicc(lab_profile(1))
    try:
        reply = answer(card, message)
    except ParseError:
        assert len(message) <= 1
        return
    assert reply is None or (isinstance(reply, bytes) and len(reply) >= 2)


def test_protocol_errors_belong_to_the_project_tree() -> None:
    assert issubclass(VpcdProtocolError, SimtoolError)


# --- the link over a socket, against a stand-in for vpcd's listener ----------------------


class FakeVpcd:
    """A TCP listener playing vpcd: accepts the card and exchanges frames with it."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.port: int = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> socket.socket:
        conn, _ = self.listener.accept()
        conn.settimeout(5)
        self.conn = conn
        return conn

    def exchange(self, payload: bytes) -> bytes:
        assert self.conn is not None
        self.conn.sendall(encode_frame(payload))
        header = _recv(self.conn, 2)
        return _recv(self.conn, int.from_bytes(header, "big"))

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(encode_frame(payload))

    def connection_closed(self) -> bool:
        assert self.conn is not None
        try:
            return self.conn.recv(1) == b""
        except OSError:
            return True

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


def _recv(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


def test_link_serves_atr_power_and_apdus(vpcd: FakeVpcd) -> None:
    card = RecordingCard()
    link = VpcdCardLink("127.0.0.1", vpcd.port, card)
    link.start()
    try:
        vpcd.accept()
        assert vpcd.exchange(bytes([VpcdControl.ATR])) == card.atr
        vpcd.send(bytes([VpcdControl.POWER_ON]))
        assert vpcd.exchange(SELECT_MF) == b"\x90\x00"
        assert card.events == ["on", SELECT_MF.hex()]
        assert link.connected
    finally:
        link.stop()


def test_remove_closes_the_connection_and_insert_reconnects(vpcd: FakeVpcd) -> None:
    first = RecordingCard()
    link = VpcdCardLink("127.0.0.1", vpcd.port, first)
    link.start()
    try:
        vpcd.accept()
        assert vpcd.exchange(bytes([VpcdControl.ATR])) == first.atr
        assert link.remove() is first
        assert first.events[-1] == "off"
        assert vpcd.connection_closed()
        assert not link.connected
        second = RecordingCard()
        second.atr = bytes.fromhex("3B02CCDD")
        link.insert(second)
        vpcd.accept()
        assert vpcd.exchange(bytes([VpcdControl.ATR])) == second.atr
    finally:
        link.stop()


def test_link_reconnects_when_vpcd_drops_the_connection(vpcd: FakeVpcd) -> None:
    card = RecordingCard()
    link = VpcdCardLink("127.0.0.1", vpcd.port, card, retry_interval=0.01)
    link.start()
    try:
        first = vpcd.accept()
        first.close()  # pcscd restarting
        vpcd.accept()
        assert vpcd.exchange(bytes([VpcdControl.ATR])) == card.atr
    finally:
        link.stop()


def test_link_waits_for_vpcd_to_come_up() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens on the port now
    card = RecordingCard()
    link = VpcdCardLink("127.0.0.1", port, card, retry_interval=0.01)
    link.start()
    try:
        time.sleep(0.1)
        assert not link.connected
        listener = socket.create_server(("127.0.0.1", port))
        listener.settimeout(5)
        conn, _ = listener.accept()
        conn.sendall(encode_frame(bytes([VpcdControl.ATR])))
        conn.settimeout(5)
        assert _recv(conn, 2 + len(card.atr))[2:] == card.atr
        conn.close()
        listener.close()
    finally:
        link.stop()


def test_an_empty_slot_does_not_connect(vpcd: FakeVpcd) -> None:
    link = VpcdCardLink("127.0.0.1", vpcd.port)
    link.start()
    try:
        vpcd.listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            vpcd.listener.accept()
        assert link.card is None
    finally:
        link.stop()


def test_inserting_into_an_occupied_slot_is_refused() -> None:
    link = VpcdCardLink("127.0.0.1", 9, RecordingCard())
    with pytest.raises(RuntimeError):
        link.insert(RecordingCard())


def test_stop_ends_the_thread(vpcd: FakeVpcd) -> None:
    link = VpcdCardLink("127.0.0.1", vpcd.port, RecordingCard())
    link.start()
    vpcd.accept()
    link.stop()
    assert not any(t.name == link.name for t in threading.enumerate())
