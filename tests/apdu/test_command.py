"""Command and response APDUs (ISO/IEC 7816-3 §12.1, ISO/IEC 7816-4 §5.1)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from apdu.command import CommandApdu, ResponseApdu
from apdu.errors import ParseError

H = bytes.fromhex
DATA_256 = bytes(range(256))
DATA_300 = bytes(300)


@pytest.mark.parametrize(
    ("wire", "apdu", "case", "extended"),
    [
        # Case 1: header only.
        ("00 70 00 00", CommandApdu(0x00, 0x70, 0x00, 0x00), 1, False),
        # Case 2 short: READ BINARY of 10 bytes; Le 00 means 256.
        ("00 B0 00 00 0A", CommandApdu(0x00, 0xB0, 0x00, 0x00, le=10), 2, False),
        ("00 B0 00 00 00", CommandApdu(0x00, 0xB0, 0x00, 0x00, le=256), 2, False),
        # Case 3 short: SELECT by file id, no response wanted.
        ("00 A4 00 0C 02 3F 00", CommandApdu(0x00, 0xA4, 0x00, 0x0C, H("3F00")), 3, False),
        # Case 4 short: SELECT returning the FCP, Le 00.
        (
            "00 A4 00 04 02 6F 07 00",
            CommandApdu(0x00, 0xA4, 0x00, 0x04, H("6F07"), le=256),
            4,
            False,
        ),
        ("00 88 00 81 01 AA 10", CommandApdu(0x00, 0x88, 0x00, 0x81, H("AA"), le=16), 4, False),
        # Case 2 extended: Le 0100, and Le 0000 meaning 65536.
        ("00 B0 00 00 00 01 00", CommandApdu(0x00, 0xB0, 0, 0, le=256, extended=True), 2, True),
        ("00 B0 00 00 00 01 01", CommandApdu(0x00, 0xB0, 0, 0, le=257), 2, True),
        ("00 B0 00 00 00 00 00", CommandApdu(0x00, 0xB0, 0, 0, le=65536), 2, True),
        # Case 3 extended: 256 bytes of data need three Lc bytes.
        ("00 D6 00 00 00 01 00" + DATA_256.hex(), CommandApdu(0x00, 0xD6, 0, 0, DATA_256), 3, True),
        ("00 D6 00 00 00 00 01 55", CommandApdu(0x00, 0xD6, 0, 0, H("55"), extended=True), 3, True),
        # Case 4 extended: data and a two-byte Le.
        (
            "00 88 00 81 00 00 02 AA BB 00 00",
            CommandApdu(0x00, 0x88, 0x00, 0x81, H("AABB"), le=65536),
            4,
            True,
        ),
        (
            "00 2A 80 86 00 01 2C" + DATA_300.hex() + "01 00",
            CommandApdu(0x00, 0x2A, 0x80, 0x86, DATA_300, le=256),
            4,
            True,
        ),
    ],
)
def test_cases_round_trip(wire: str, apdu: CommandApdu, case: int, extended: bool) -> None:
    raw = H(wire)
    assert apdu.to_bytes() == raw
    assert bytes(apdu) == raw
    assert CommandApdu.from_bytes(raw) == apdu
    assert apdu.case == case
    assert apdu.extended is extended
    assert apdu.header == raw[:4]


@pytest.mark.parametrize(
    ("wire", "offset"),
    [
        ("", None),
        ("00 A4 00", None),  # shorter than a header
        ("00 A4 00 04 05 3F 00", 4),  # Lc 5, 2 bytes of data
        ("00 A4 00 04 02 3F 00 00 00", 4),  # one byte too many for case 4
        ("00 A4 00 04 00 3F", 4),  # short Lc 0
        ("00 D6 00 00 00 00 00 01", 5),  # extended Lc 0
        ("00 D6 00 00 00 00 05 01 02", 5),  # extended Lc 5, 2 bytes
        ("00 D6 00 00 00 00 02 01 02 00", 5),  # extended case 4 with a one-byte Le
    ],
)
def test_malformed_command_apdu(wire: str, offset: int | None) -> None:
    with pytest.raises(ParseError) as info:
        CommandApdu.from_bytes(H(wire))
    assert info.value.offset == offset
    assert info.value.data == H(wire)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cla": 256},
        {"ins": -1},
        {"p1": 0x100},
        {"p2": 999},
        {"le": 0},
        {"le": 65537},
        {"le": -3},
        {"data": bytes(65536)},
        {"data": bytes(65536), "extended": True},
    ],
)
def test_invalid_fields_raise_parse_error(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"cla": 0, "ins": 0xA4, "p1": 0, "p2": 0}
    fields.update(kwargs)
    with pytest.raises(ParseError):
        CommandApdu(**fields)  # type: ignore[arg-type]


def test_large_fields_switch_to_extended() -> None:
    assert CommandApdu(0, 0xD6, 0, 0, bytes(256)).extended
    assert CommandApdu(0, 0xB0, 0, 0, le=257).extended
    assert not CommandApdu(0, 0xB0, 0, 0, bytes(255), le=256).extended


def test_with_le_for_6cxx_resend() -> None:
    first = CommandApdu(0x00, 0xB2, 0x01, 0x04, le=256)
    again = first.with_le(0x1A)
    assert again.to_bytes() == H("00 B2 01 04 1A")
    assert again.with_le(None).case == 1


def test_response_apdu() -> None:
    response = ResponseApdu.from_bytes(H("98 10 32 54 76 98 10 32 54 90 00"))
    assert response.data == H("98 10 32 54 76 98 10 32 54")
    assert (response.sw1, response.sw2, response.sw) == (0x90, 0x00, 0x9000)
    assert response.ok
    assert response.to_bytes() == H("98 10 32 54 76 98 10 32 54 90 00")
    assert ResponseApdu.from_bytes(H("6A 82")) == ResponseApdu(b"", 0x6A, 0x82)
    assert not ResponseApdu.from_sw(0x6A82).ok
    assert ResponseApdu.from_sw(0x9112).ok
    assert ResponseApdu.from_sw(0x9000, b"\x01") == ResponseApdu(b"\x01", 0x90, 0x00)


@pytest.mark.parametrize("wire", ["", "90"])
def test_truncated_response(wire: str) -> None:
    with pytest.raises(ParseError):
        ResponseApdu.from_bytes(H(wire))


# --- properties ------------------------------------------------------------


@given(st.binary(max_size=300))
def test_from_bytes_gives_result_or_parse_error(raw: bytes) -> None:
    try:
        apdu = CommandApdu.from_bytes(raw)
    except ParseError:
        return
    assert apdu.to_bytes() == raw


@st.composite
def _commands(draw: st.DrawFn) -> CommandApdu:
    byte = st.integers(0, 255)
    data = draw(
        st.one_of(
            st.just(b""), st.binary(min_size=1, max_size=20), st.binary(min_size=250, max_size=300)
        )
    )
    le = draw(st.none() | st.integers(1, 300) | st.integers(1, 65536))
    extended = draw(st.booleans())
    return CommandApdu(draw(byte), draw(byte), draw(byte), draw(byte), data, le, extended)


@given(_commands())
def test_encode_decode_round_trip(apdu: CommandApdu) -> None:
    # A case 1 command has no extended form: its encoding is the bare header.
    assume(apdu.case != 1 or not apdu.extended)
    assert CommandApdu.from_bytes(apdu.to_bytes()) == apdu


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=40))
def test_response_round_trip(sw1: int, sw2: int, data: bytes) -> None:
    response = ResponseApdu(data, sw1, sw2)
    assert ResponseApdu.from_bytes(response.to_bytes()) == response
