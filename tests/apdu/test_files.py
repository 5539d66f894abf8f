"""EF codecs: spec/real-card vectors both ways, and arbitrary bytes -> value or ParseError."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu import files
from apdu.errors import ParseError
from apdu.files import (
    AdministrativeData,
    Application,
    Msisdn,
    Spn,
    decode_ad,
    decode_alpha,
    decode_dir_record,
    decode_iccid,
    decode_imsi,
    decode_languages,
    decode_msisdn,
    decode_service_table,
    decode_spn,
    encode_ad,
    encode_alpha,
    encode_dir_record,
    encode_iccid,
    encode_imsi,
    encode_languages,
    encode_msisdn,
    encode_service_table,
    encode_spn,
    luhn_check_digit,
    luhn_valid,
)


def h(value: str) -> bytes:
    return bytes.fromhex(value.replace(" ", ""))


# --- Luhn ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "check"),
    [
        ("7992739871", "3"),  # ISO/IEC 7812-1 Annex B worked example
        ("35693803564380", "9"),  # IMEI 356938035643809 (docs/domain.md)
        ("8986031864022013389", "7"),  # ICCID of the Android emulator profile
        ("0", "0"),
    ],
)
def test_luhn_check_digit(payload: str, check: str) -> None:
    assert luhn_check_digit(payload) == check
    assert luhn_valid(payload + check)


def test_luhn_valid_rejects_wrong_digit_and_garbage() -> None:
    assert not luhn_valid("79927398710")
    assert not luhn_valid("7")
    assert not luhn_valid("12a4")
    assert not luhn_valid("")


@pytest.mark.parametrize("bad", ["", "12a", "１２", "-1"])
def test_luhn_check_digit_rejects_non_digits(bad: str) -> None:
    with pytest.raises(ParseError):
        luhn_check_digit(bad)


@given(st.text(alphabet="0123456789", min_size=1, max_size=30))
def test_luhn_completes_any_payload(payload: str) -> None:
    full = payload + luhn_check_digit(payload)
    assert luhn_valid(full)
    # Any single-digit change is detected.
    changed = str((int(full[0]) + 1) % 10) + full[1:]
    assert not luhn_valid(changed)


# --- EF.ICCID -------------------------------------------------------------------


def test_iccid_20_digits_android_profile() -> None:
    raw = h("98683081462002318379")
    assert decode_iccid(raw) == "89860318640220133897"
    assert encode_iccid("89860318640220133897") == raw


def test_iccid_19_digits_has_f_padding() -> None:
    raw = encode_iccid("8981100000000000005")
    assert raw == h("98 18 01 00 00 00 00 00 00 F5")
    assert decode_iccid(raw) == "8981100000000000005"


@pytest.mark.parametrize(
    "raw",
    [
        "98683081462002318379FF",  # 11 bytes
        "986830814620023183",  # 9 bytes
        "98F83081462002318379",  # digit after padding
        "9868308146200231837A",  # nibble A
        "FFFFFFFFFFFFFFFFFFFF",  # erased
    ],
)
def test_iccid_rejects(raw: str) -> None:
    with pytest.raises(ParseError):
        decode_iccid(h(raw))


@pytest.mark.parametrize(
    "iccid", ["898110000000000", "8981100000000000000000", "89811x0000000000000"]
)
def test_encode_iccid_rejects(iccid: str) -> None:
    with pytest.raises(ParseError):
        encode_iccid(iccid)


@given(st.text(alphabet="0123456789", min_size=18, max_size=20))
def test_iccid_round_trip(iccid: str) -> None:
    assert decode_iccid(encode_iccid(iccid)) == iccid


# --- EF.IMSI -----------------------------------------------------------------------


def test_imsi_ts_31_121_default() -> None:
    # TS 31.121 §4.1.1.1: IMSI 001010123456063.
    raw = h("08 09 10 10 10 32 54 06 36")
    assert decode_imsi(raw) == "001010123456063"
    assert encode_imsi("001010123456063") == raw


def test_imsi_japanese_and_even_length() -> None:
    assert encode_imsi("440103000000001") == h("08 49 04 01 03 00 00 00 10")
    even = encode_imsi("44010300000001")
    assert even == h("08 41 04 01 03 00 00 00 F1")
    assert decode_imsi(even) == "44010300000001"
    short = encode_imsi("4401030")
    assert short == h("04 49 04 01 03 FF FF FF FF")
    assert decode_imsi(short) == "4401030"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "FF FF FF FF FF FF FF FF FF",
        "00",
        "09 49 04 01 03 00 00 00 10 00",
        "08 49 04 01 03 00 00 00",  # length byte beyond the file
        "08 41 04 01 03 00 00 00 10",  # even parity but odd digit count
        "08 4A 04 01 03 00 00 00 10",  # identity type 2, not IMSI
        "02 49 04",  # 3 digits only
    ],
)
def test_imsi_rejects(raw: str) -> None:
    with pytest.raises(ParseError):
        decode_imsi(h(raw))


@given(st.text(alphabet="0123456789", min_size=6, max_size=15))
def test_imsi_round_trip(imsi: str) -> None:
    raw = encode_imsi(imsi)
    assert len(raw) == 9
    assert decode_imsi(raw) == imsi


# --- Alpha identifiers -----------------------------------------------------------


def test_alpha_gsm_default_and_extension() -> None:
    assert encode_alpha("ijmio", 8) == h("69 6A 6D 69 6F FF FF FF")
    assert encode_alpha("@€", 4) == h("00 1B 65 FF")
    assert decode_alpha(h("00 1B 65 FF")) == "@€"
    assert decode_alpha(h("FF FF")) == ""


def test_alpha_ucs2_80() -> None:
    raw = encode_alpha("日本", 8)
    assert raw == h("80 65 E5 67 2C FF FF FF")
    assert decode_alpha(raw) == "日本"


def test_alpha_ucs2_81_and_82_base_pointer() -> None:
    # TS 102 221 Annex A: 81 = 8-bit base (bits 15-8 of base = byte 3 << 7), 82 = 16-bit base.
    assert decode_alpha(h("81 03 13 53 95 A6 FF")) == "S" + chr(0x0995) + chr(0x09A6)
    assert decode_alpha(h("82 02 09 80 53 95 FF")) == "S" + chr(0x0995)


def test_alpha_too_long_rejected() -> None:
    with pytest.raises(ParseError):
        encode_alpha("toolong", 3)
    with pytest.raises(ParseError):
        encode_alpha("日本語", 6)
    with pytest.raises(ParseError):
        encode_alpha("😀", 10)


@given(
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"], max_codepoint=0xFFFE),
        max_size=10,
    )
)
def test_alpha_round_trip(text: str) -> None:
    assert decode_alpha(encode_alpha(text, 21)) == text


# --- EF.MSISDN ----------------------------------------------------------------------


def test_msisdn_international() -> None:
    record = encode_msisdn("+817012345678", record_length=14)
    assert record == h("07 91 18 07 21 43 65 87 FF FF FF FF FF FF")
    assert decode_msisdn(record) == Msisdn("+817012345678", "", 0x91)


def test_msisdn_national_with_alpha() -> None:
    record = encode_msisdn("07012345678", alpha="Me", record_length=18)
    assert record == h("4D 65 FF FF 07 81 70 10 32 54 76 F8 FF FF FF FF FF FF")
    assert decode_msisdn(record) == Msisdn("07012345678", "Me", 0x81)


def test_msisdn_empty_record_is_none() -> None:
    assert decode_msisdn(b"\xff" * 28) is None
    assert decode_msisdn(h("FF" * 14 + "00 FF" + "FF" * 12)) is None


@pytest.mark.parametrize(
    "raw",
    [
        "FF" * 13,  # shorter than the fixed part
        "0C 91" + "11" * 10 + "FF FF",  # BCD length 12 > 11
        "07 91 18 07 21 43 65 E7 FF FF FF FF FF FF",  # reserved nibble E
        "07 91 18 07 21 F3 65 87 FF FF FF FF FF FF",  # digit after padding
    ],
)
def test_msisdn_rejects(raw: str) -> None:
    with pytest.raises(ParseError):
        decode_msisdn(h(raw))


@pytest.mark.parametrize("number", ["", "+", "070-1234", "1" * 21])
def test_encode_msisdn_rejects(number: str) -> None:
    with pytest.raises(ParseError):
        encode_msisdn(number)


@given(
    st.text(alphabet="0123456789*#", min_size=1, max_size=20),
    st.booleans(),
    st.text(alphabet="abcXYZ 019", max_size=14),
)
def test_msisdn_round_trip(digits: str, international: bool, alpha: str) -> None:
    number = ("+" if international else "") + digits
    decoded = decode_msisdn(encode_msisdn(number, alpha, record_length=28))
    assert decoded is not None
    assert (decoded.number, decoded.alpha) == (number, alpha)


# --- EF.SPN -------------------------------------------------------------------------


def test_spn_gsm_and_ucs2() -> None:
    raw = encode_spn("IIJmio", display_condition=0x01)
    assert raw == h("01 49 49 4A 6D 69 6F" + "FF" * 10)
    assert decode_spn(raw) == Spn("IIJmio", 0x01)
    assert decode_spn(encode_spn("日本通信")) == Spn("日本通信", 0)
    with pytest.raises(ParseError):
        decode_spn(b"")


# --- EF.AD ----------------------------------------------------------------------------


def test_ad() -> None:
    assert decode_ad(h("00 00 00 02")) == AdministrativeData(0, 2)
    assert decode_ad(h("80 00 00 03")) == AdministrativeData(0x80, 3)
    assert decode_ad(h("00 00 00")) == AdministrativeData(0, None)
    assert decode_ad(h("00 00 00 0F")) == AdministrativeData(0, None)
    assert encode_ad(0x00, 2) == h("00 00 00 02")
    assert encode_ad(0x00, None) == h("00 00 00")
    with pytest.raises(ParseError):
        decode_ad(h("00 00"))
    with pytest.raises(ParseError):
        encode_ad(0, 4)


# --- EF.DIR -----------------------------------------------------------------------------

ANDROID_USIM = "61184F10A0000000871002FF86FF0389FFFFFFFF50045553494D" + "FF" * 22
ANDROID_CSIM = "61184F10A0000003431002FF86FF0389FFFFFFFF50044353494D" + "FF" * 22


def test_dir_records_android_profile() -> None:
    usim = decode_dir_record(h(ANDROID_USIM))
    assert usim == Application(h("A0000000871002FF86FF0389FFFFFFFF"), "USIM")
    assert usim is not None and usim.kind == "usim"
    csim = decode_dir_record(h(ANDROID_CSIM))
    assert csim is not None and csim.kind == "csim" and csim.label == "CSIM"
    assert encode_dir_record(usim.aid, "USIM", record_length=48) == h(ANDROID_USIM)
    assert decode_dir_record(b"\xff" * 48) is None


def test_application_kinds() -> None:
    assert Application(h("A0000000871004FF49FF0589")).kind == "isim"
    assert Application(h("A000000063504B43532D3135")).kind == "unknown"


@pytest.mark.parametrize(
    "raw",
    [
        "62 03 4F 01 00",  # not an application template
        "61 03 50 01 41",  # no AID
        "61 05 4F 03 A0 00 00",  # AID too short
        "61 0A 4F 05 A000000087 50 01 FF",  # label not UTF-8
        "61 20 4F",  # truncated
    ],
)
def test_dir_record_rejects(raw: str) -> None:
    with pytest.raises(ParseError):
        decode_dir_record(h(raw))


# --- EF.PL / EF.LI ------------------------------------------------------------------------


def test_languages() -> None:
    assert decode_languages(h("FFFFFFFF")) == []
    assert decode_languages(h("6A61 656E FFFF")) == ["ja", "en"]
    assert encode_languages(["ja", "en"], size=6) == h("6A61 656E FFFF")
    for bad in ("6A", "6A41", "0000"):
        with pytest.raises(ParseError):
            decode_languages(h(bad))
    with pytest.raises(ParseError):
        encode_languages(["jpn"])
    with pytest.raises(ParseError):
        encode_languages(["ja", "en"], size=2)


# --- EF.UST --------------------------------------------------------------------------------


def test_service_table() -> None:
    assert decode_service_table(h("9E")) == {2, 3, 4, 5, 8}
    assert decode_service_table(h("01 80")) == {1, 16}
    assert encode_service_table({1, 16}) == h("01 80")
    assert encode_service_table({2}, size=3) == h("02 00 00")
    with pytest.raises(ParseError):
        encode_service_table({0})
    with pytest.raises(ParseError):
        encode_service_table({17}, size=2)


@given(st.sets(st.integers(min_value=1, max_value=200)))
def test_service_table_round_trip(services: set[int]) -> None:
    assert decode_service_table(encode_service_table(services)) == services


# --- constants --------------------------------------------------------------------------------


def test_file_references_match_ts_31_102() -> None:
    assert (files.EF_IMSI.fid, files.EF_IMSI.sfi) == (0x6F07, 0x07)
    assert (files.EF_ICCID.fid, files.EF_ICCID.sfi) == (0x2FE2, 0x02)
    assert (files.EF_DIR.fid, files.EF_DIR.sfi) == (0x2F00, 0x1E)
    usim = [
        v
        for v in vars(files).values()
        if isinstance(v, files.FileRef) and v.fid >> 8 == 0x6F and v.sfi is not None
    ]
    sfis = [ref.sfi for ref in usim]
    assert len(sfis) == len(set(sfis)), "two ADF.USIM files share an SFI"


# --- robustness: every decoder, arbitrary bytes ---------------------------------------------

DECODERS: list[Callable[[bytes], object]] = [
    decode_iccid,
    decode_imsi,
    decode_msisdn,
    decode_spn,
    decode_ad,
    decode_dir_record,
    decode_languages,
    decode_service_table,
    decode_alpha,
]


@pytest.mark.parametrize("decoder", DECODERS, ids=[d.__name__ for d in DECODERS])
@given(raw=st.binary(max_size=64))
def test_decoders_raise_only_parse_error(decoder: Callable[[bytes], object], raw: bytes) -> None:
    with contextlib.suppress(ParseError):
        decoder(raw)
