"""The card layer's fast paths give what the plain code gives.

The hot path of a read decodes with C-level string operations, decodes the
PIN status template without :mod:`apdu.fcp`, and keeps the commands it sends
encoded. Each shortcut is checked here against the reference it replaces, so
speed never changes an answer (nor keeps a PIN in memory).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu import card as card_module
from apdu import files
from apdu.card import Card, pin_enabled_flags, read_card
from apdu.command import CommandApdu
from apdu.errors import ParseError
from apdu.fcp import PinStatusTemplate
from apdu.pin import PinPolicy
from apdu.transport.inprocess import InProcessTransport
from apdu.transport.trace import SECRET_INS
from apdu.virtual import VirtualUicc, load_profile


def _reference_luhn_valid(digits: str) -> bool:
    if len(digits) < 2 or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value * 2 > 9 else value * 2
        total += value
    return total % 10 == 0


@given(st.text(alphabet="0123456789", min_size=0, max_size=22))
def test_luhn_matches_the_digit_by_digit_definition(digits: str) -> None:
    assert files.luhn_valid(digits) == _reference_luhn_valid(digits)
    if digits:
        check = files.luhn_check_digit(digits)
        assert _reference_luhn_valid(digits + check)


def _reference_digits(raw: bytes, what: str) -> str:
    return files._digits_until_padding(files._swapped_nibbles(raw), what, raw)


@given(st.binary(min_size=10, max_size=10))
def test_iccid_decoding_matches_the_nibble_loop(raw: bytes) -> None:
    try:
        expected = _reference_digits(raw, "EF.ICCID")
    except ParseError:
        expected = ""
    if len(expected) < 18:
        with pytest.raises(ParseError):
            files.decode_iccid(raw)
    else:
        assert files.decode_iccid(raw) == expected


def _reference_dialling(raw: bytes) -> str:
    """The nibble loop the fast path replaced (TS 24.008 extended BCD)."""
    out: list[str] = []
    nibbles = files._swapped_nibbles(raw)
    for index, nibble in enumerate(nibbles):
        if nibble == 0x0F:
            if any(n != 0x0F for n in nibbles[index:]):
                raise ParseError("digit after F padding")
            break
        if nibble >= len(files._DIAL_NIBBLES):
            raise ParseError("reserved nibble")
        out.append(files._DIAL_NIBBLES[nibble])
    return "".join(out)


@given(st.binary(min_size=0, max_size=11))
def test_dialling_digits_match_the_nibble_loop(raw: bytes) -> None:
    try:
        expected = _reference_dialling(raw)
    except ParseError:
        with pytest.raises(ParseError):
            files._decode_dialling(raw, raw)
        return
    assert files._decode_dialling(raw, raw) == expected


@given(st.binary(min_size=0, max_size=20))
def test_gsm_alpha_fast_path_matches_the_byte_loop(raw: bytes) -> None:
    clean = bytes(b & 0x7F for b in raw).replace(b"\x1b", b" ")
    assert files._decode_gsm_unpacked(clean) == "".join(files._GSM_DEFAULT[b] for b in clean)


_PIN_STATUS_PARTS = st.lists(
    st.one_of(
        st.tuples(st.just(0x83), st.binary(min_size=1, max_size=1)),
        st.tuples(st.just(0x95), st.binary(min_size=1, max_size=1)),
        st.tuples(st.sampled_from([0x83, 0x95, 0x90, 0x01]), st.binary(max_size=2)),
    ),
    max_size=8,
)


@given(st.binary(min_size=0, max_size=3), _PIN_STATUS_PARTS, st.binary(max_size=3))
def test_pin_enabled_flags_match_the_pin_status_template(
    ps_do: bytes, parts: list[tuple[int, bytes]], noise: bytes
) -> None:
    value = bytes((0x90, len(ps_do))) + ps_do
    value += b"".join(bytes((tag, len(data))) + data for tag, data in parts) + noise
    try:
        template = PinStatusTemplate.from_value(value)
    except ParseError:
        with pytest.raises(ParseError):
            pin_enabled_flags(value)
        return
    expected = {ref: template.enabled(ref) for ref in template.key_references}
    assert pin_enabled_flags(value) == expected


def test_a_read_decodes_the_pins_as_the_full_fcp_does() -> None:
    transport = InProcessTransport(VirtualUicc(load_profile("default")))
    transport.connect()
    template = Card(transport).select_application(files.USIM_AID_PREFIX)
    flags = Card(transport).select_application_pins(files.USIM_AID_PREFIX)
    assert template is not None
    assert flags == {ref: template.enabled(ref) for ref in template.key_references}


def test_commands_are_encoded_once_and_the_same_as_before() -> None:
    command = CommandApdu(0x00, 0xB0, 0x82, 0x00, le=10)
    assert command.raw == bytes.fromhex("00B082000A") == command.to_bytes() == bytes(command)
    assert command == CommandApdu(0x00, 0xB0, 0x82, 0x00, le=10)
    assert "raw" not in repr(command)
    assert command.with_le(256).raw == bytes.fromhex("00B0820000")


def test_no_pin_is_kept_in_the_command_cache() -> None:
    transport = InProcessTransport(VirtualUicc(load_profile("default")))
    with transport:
        read_card(transport)
        PinPolicy(Card(transport)).verify("pin1", "0000")
    cached = list(card_module._COMMANDS.values()) + list(card_module._PIN_QUERIES.values())
    assert cached
    assert not [c for c in cached if c.ins in SECRET_INS and c.data]
