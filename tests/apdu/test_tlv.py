"""BER-TLV and compact-TLV codecs (ISO/IEC 7816-4 §5.2, §8.1.1; TS 102 221 §8.3)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.errors import ParseError
from apdu.tlv import (
    Tlv,
    encode_ber_length,
    encode_ber_tlv,
    encode_compact_tlv,
    find_tlv,
    parse_ber_tlv,
    parse_compact_tlv,
)

H = bytes.fromhex


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        # DF name of ADF.USIM (tag 84) from a real FCP.
        ("84 07 A0 00 00 00 87 10 02", [Tlv(0x84, H("A0000000871002"))]),
        # Two-byte tag (ISO 7816-6 language preference 5F2D).
        ("5F 2D 04 65 6E 66 72", [Tlv(0x5F2D, b"enfr")]),
        # Three-byte tag: DF, then 81 (more follows), then 01 (last).
        ("DF 81 01 01 00", [Tlv(0xDF8101, b"\x00")]),
        # Zero-length value.
        ("88 00", [Tlv(0x88, b"")]),
        # Two objects back to back.
        ("80 02 00 09 88 01 38", [Tlv(0x80, H("0009")), Tlv(0x88, H("38"))]),
        # 00/FF padding before, between and after objects (TS 102 221 §8.3).
        ("FF 00 80 01 05 FF FF 00 81 00 FF", [Tlv(0x80, H("05")), Tlv(0x81, b"")]),
        # Only padding: an erased record.
        ("FF FF FF FF", []),
        ("", []),
    ],
)
def test_parse_ber_tlv_vectors(wire: str, expected: list[Tlv]) -> None:
    assert parse_ber_tlv(H(wire)) == expected


@pytest.mark.parametrize(
    ("length", "length_field"),
    [
        (0, "00"),
        (127, "7F"),
        (128, "81 80"),
        (255, "81 FF"),
        (256, "82 01 00"),
        (65535, "82 FF FF"),
        (65536, "83 01 00 00"),
    ],
)
def test_long_form_lengths(length: int, length_field: str) -> None:
    assert encode_ber_length(length) == H(length_field)
    wire = H("53") + H(length_field) + bytes(range(256)) * (length // 256) + bytes(length % 256)
    (tlv,) = parse_ber_tlv(wire)
    assert tlv.tag == 0x53
    assert len(tlv.value) == length
    assert tlv.to_bytes() == wire


def test_non_minimal_long_form_is_accepted() -> None:
    assert parse_ber_tlv(H("80 81 02 AA BB")) == [Tlv(0x80, H("AABB"))]


@pytest.mark.parametrize(
    ("wire", "offset"),
    [
        ("80 05 01 02", 0),  # value truncated
        ("80 01 05 81 03 01", 3),  # second object truncated
        ("5F", 0),  # tag announces a second byte that is missing
        ("5F 81", 0),  # tag continuation runs off the end
        ("5F 81 81 81 01 00", 0),  # tag longer than 3 bytes
        ("80", 1),  # length missing
        ("80 82 01", 1),  # long-form length truncated
        ("80 80 00 00", 1),  # indefinite length
        ("80 85 00 00 00 00 01 00", 1),  # five length bytes
    ],
)
def test_malformed_ber_tlv_reports_offset(wire: str, offset: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_ber_tlv(H(wire))
    assert info.value.offset == offset
    assert info.value.data == H(wire)


def test_constructed_and_children() -> None:
    (fcp,) = parse_ber_tlv(H("62 07 82 02 41 21 88 01 38"))
    assert fcp.constructed
    assert fcp.children() == [Tlv(0x82, H("4121")), Tlv(0x88, H("38"))]
    primitive = fcp.children()[0]
    assert not primitive.constructed
    with pytest.raises(ParseError):
        primitive.children()


def test_constructed_bit_uses_first_tag_byte() -> None:
    assert Tlv(0xBF0C, b"").constructed  # BF = context, constructed
    assert not Tlv(0x9F7F, b"").constructed  # 9F = context, primitive
    assert Tlv(0x7F49, b"").constructed


def test_find_tlv() -> None:
    tlvs = parse_ber_tlv(H("80 01 01 83 02 3F 00 80 01 02"))
    assert find_tlv(tlvs, 0x83) == Tlv(0x83, H("3F00"))
    assert find_tlv(tlvs, 0x80) == Tlv(0x80, H("01"))  # the first one
    assert find_tlv(tlvs, 0x84) is None


@pytest.mark.parametrize(
    "tag",
    [0x00, 0xFF, 0x1F, 0x5F, 0x5F85, 0x2080, 0xDF0101, 0x5F818101, -1],
)
def test_encode_rejects_tags_that_would_not_parse_back(tag: int) -> None:
    with pytest.raises(ParseError):
        encode_ber_tlv(tag, b"")


def test_encode_rejects_oversized_length() -> None:
    with pytest.raises(ParseError):
        encode_ber_length(1 << 32)
    with pytest.raises(ParseError):
        encode_ber_length(-1)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        # Historical bytes of 3B 9F 95 80 1F C3 80 31 E0 73 FE 21 13 57 86 81 02 86 98 44 18 A8
        # after the category byte 80.
        (
            "31 E0 73 FE 21 13 57 86 81 02 86 98 44 18",
            [Tlv(0x3, H("E0")), Tlv(0x7, H("FE2113")), Tlv(0x5, H("8681028698 4418"))],
        ),
        ("65 A2 08 01 01 52", [Tlv(0x6, H("A208010152"))]),
        ("80", [Tlv(0x8, b"")]),
        ("", []),
    ],
)
def test_parse_compact_tlv_vectors(wire: str, expected: list[Tlv]) -> None:
    assert parse_compact_tlv(H(wire)) == expected


@pytest.mark.parametrize(("wire", "offset"), [("35 00", 0), ("31 E0 73 FE", 2)])
def test_malformed_compact_tlv(wire: str, offset: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_compact_tlv(H(wire))
    assert info.value.offset == offset


def test_encode_compact_tlv_limits() -> None:
    assert encode_compact_tlv(0x7, H("FE2113")) == H("73 FE 21 13")
    with pytest.raises(ParseError):
        encode_compact_tlv(0x10, b"")
    with pytest.raises(ParseError):
        encode_compact_tlv(0x1, bytes(16))


# --- properties ------------------------------------------------------------


@given(st.binary(max_size=300))
def test_parse_ber_tlv_gives_result_or_parse_error(data: bytes) -> None:
    try:
        tlvs = parse_ber_tlv(data)
    except ParseError:
        return
    for tlv in tlvs:
        assert tlv.value in data
        if tlv.constructed:
            with contextlib.suppress(ParseError):
                tlv.children()


@given(st.binary(max_size=60))
def test_parse_compact_tlv_gives_result_or_parse_error(data: bytes) -> None:
    try:
        tlvs = parse_compact_tlv(data)
    except ParseError:
        return
    assert b"".join(encode_compact_tlv(t.tag, t.value) for t in tlvs) == data


def _valid_tag() -> st.SearchStrategy[int]:
    one = st.integers(0x01, 0xFE).filter(lambda b: b & 0x1F != 0x1F)
    lead = st.integers(0x00, 0xFE).map(lambda b: b | 0x1F).filter(lambda b: b != 0xFF)
    last = st.integers(0x00, 0x7F)
    middle = st.integers(0x80, 0xFF)
    two = st.tuples(lead, last).map(lambda t: t[0] << 8 | t[1])
    three = st.tuples(lead, middle, last).map(lambda t: t[0] << 16 | t[1] << 8 | t[2])
    return st.one_of(one, two, three)


@given(st.lists(st.tuples(_valid_tag(), st.binary(max_size=300)), max_size=5))
def test_encode_parse_round_trip(objects: list[tuple[int, bytes]]) -> None:
    wire = b"".join(encode_ber_tlv(tag, value) for tag, value in objects)
    assert parse_ber_tlv(wire) == [Tlv(tag, value) for tag, value in objects]


@given(st.lists(st.tuples(st.integers(0, 15), st.binary(max_size=15)), max_size=6))
def test_compact_round_trip(objects: list[tuple[int, bytes]]) -> None:
    wire = b"".join(encode_compact_tlv(tag, value) for tag, value in objects)
    assert parse_compact_tlv(wire) == [Tlv(tag, value) for tag, value in objects]
