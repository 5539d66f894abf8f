"""FCP templates (TS 102 221 §11.1.1.3) and classic SIM SELECT responses (GSM 11.11 §9.2.1).

The vectors are SELECT responses of real UICCs and SIMs (MF, ADF.USIM, EF.ICCID,
EF.IMSI, EF.DIR, EF.ECC, EF.MSISDN), decoded field by field by hand.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.errors import ParseError
from apdu.fcp import (
    CodeStatus,
    Fcp,
    PinStatusEntry,
    PinStatusTemplate,
    SecurityAttributes,
    build_fcp,
    build_gsm_response,
    build_pin_status_template,
    file_descriptor_byte,
    life_cycle_text,
    parse_fcp,
    parse_gsm_response,
)
from apdu.tlv import Tlv, encode_ber_tlv

H = bytes.fromhex

MF = (
    "62 2C 82 02 78 21 83 02 3F 00 A5 0C 80 01 71 83 04 00 03 A7 38 87 01 01 8A 01 05"
    " 8B 03 2F 06 01 C6 0C 90 01 60 83 01 01 83 01 0A 83 01 0B"
)
ADF_USIM = (
    "62 36 82 02 78 21 83 02 7F F0 84 10 A0 00 00 00 87 10 02 FF 45 FF 01 89 02 01 11 00"
    " 8A 01 05 8B 03 2F 06 08 C6 0C 90 01 60 83 01 01 83 01 81 83 01 0A"
    " 81 04 00 00 03 9F"
)
MF_COMPACT = (
    "62 2D 82 02 78 21 83 02 3F 00 A5 09 80 01 71 83 04 00 01 8D 08 8A 01 05"
    " 8C 04 26 1A 00 00 C6 0F 90 01 70 83 01 01 83 01 81 83 01 0A 83 01 0B"
)
MF_SEID = (
    "62 33 82 02 78 21 83 02 3F 00 A5 0C 80 01 61 87 01 01 83 04 00 07 DB F0 8A 01 05"
    " 8B 06 2F 06 01 02 00 02 C6 0C 90 01 60 83 01 01 83 01 0A 83 01 0D 81 02 FF FF"
)
EF_ICCID = (
    "62 1F 82 02 41 21 83 02 2F E2 A5 06 D0 01 20 D2 01 05 8A 01 05 8B 03 2F 06 02"
    " 80 02 00 0A 88 01 10"
)
EF_IMSI = "62 17 82 02 41 21 83 02 6F 07 8A 01 05 8B 03 6F 06 05 80 02 00 09 88 01 38"
EF_DIR = "62 1A 82 05 42 21 00 21 01 83 02 2F 00 8A 01 05 8B 03 2F 06 04 80 02 00 21 88 01 F0"
EF_ECC = "62 1A 82 05 42 21 00 0E 02 83 02 6F B7 8A 01 05 8B 03 6F 06 08 80 02 00 1C 88 01 08"


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (
            MF,
            {
                "file_type": "df",
                "structure": None,
                "shareable": True,
                "file_id": 0x3F00,
                "file_descriptor": 0x78,
                "data_coding": 0x21,
                "life_cycle": 0x05,
                "life_cycle_status": "operational-activated",
                "short_file_id": None,
                "proprietary": H("80 01 71 83 04 00 03 A7 38 87 01 01"),
                "is_mf": True,
            },
        ),
        (
            ADF_USIM,
            {
                "file_type": "df",
                "file_id": 0x7FF0,
                "df_name": H("A0000000871002FF45FF018902011100"),
                "total_file_size": 0x39F,
                "file_size": None,
                "is_mf": False,
            },
        ),
        (
            EF_ICCID,
            {
                "file_type": "working_ef",
                "structure": "transparent",
                "shareable": True,
                "file_id": 0x2FE2,
                "file_size": 10,
                "short_file_id": 0x02,
                "record_length": None,
                "number_of_records": None,
                "pin_status": None,
            },
        ),
        (
            EF_IMSI,
            {"structure": "transparent", "file_id": 0x6F07, "file_size": 9, "short_file_id": 0x07},
        ),
        (
            EF_DIR,
            {
                "structure": "linear_fixed",
                "record_length": 0x21,
                "number_of_records": 1,
                "file_size": 0x21,
                "short_file_id": 0x1E,
                "file_descriptor": 0x42,
            },
        ),
        (
            EF_ECC,
            {
                "structure": "linear_fixed",
                "record_length": 14,
                "number_of_records": 2,
                "file_size": 28,
                "short_file_id": 0x01,
            },
        ),
    ],
)
def test_real_fcp_vectors(wire: str, expected: dict[str, Any]) -> None:
    fcp = parse_fcp(H(wire))
    for name, value in expected.items():
        assert getattr(fcp, name) == value, name


def test_security_attributes_forms() -> None:
    referenced = parse_fcp(H(EF_IMSI)).security_attributes
    assert referenced == SecurityAttributes("referenced", H("6F0605"), 0x6F06, 5)
    seid = parse_fcp(H(MF_SEID)).security_attributes
    assert seid is not None
    assert seid.form == "referenced"
    assert seid.arr_file_id == 0x2F06
    assert seid.arr_record is None
    assert seid.seid_records == ((0x01, 0x02), (0x00, 0x02))
    compact = parse_fcp(H(MF_COMPACT)).security_attributes
    assert compact == SecurityAttributes("compact", H("261A0000"))
    expanded = parse_fcp(encode_ber_tlv(0x62, H("82 02 41 21 AB 03 80 01 01"))).security_attributes
    assert expanded == SecurityAttributes("expanded", H("800101"))


def test_pin_status_template_of_real_cards() -> None:
    # PS_DO 60 = 0110 0000: first key reference (PIN1) disabled, the next two enabled.
    mf = parse_fcp(H(MF)).pin_status
    assert mf is not None
    assert mf.key_references == [0x01, 0x0A, 0x0B]
    assert [mf.enabled(k) for k in (0x01, 0x0A, 0x0B)] == [False, True, True]
    usim = parse_fcp(H(ADF_USIM)).pin_status
    assert usim is not None
    assert usim.key_references == [0x01, 0x81, 0x0A]
    assert not usim.enabled(0x01)
    assert usim.enabled(0x81)
    # PS_DO 70: PIN1 disabled, PIN2, ADM1, ADM2 enabled.
    compact = parse_fcp(H(MF_COMPACT)).pin_status
    assert compact is not None
    assert compact.key_references == [0x01, 0x81, 0x0A, 0x0B]
    assert [e.enabled for e in compact.entries] == [False, True, True, True]
    assert not compact.enabled(0x02)  # not listed
    assert 0x81 in compact
    assert 0x02 not in compact


def test_pin_status_usage_qualifier_and_multi_byte_ps_do() -> None:
    # Usage qualifier 95 precedes the key reference it qualifies; the PS_DO may
    # span two bytes when more than 8 key references are listed.
    refs = list(range(1, 10))
    value = (
        H("90 02 80 80") + H("95 01 08") + b"".join(encode_ber_tlv(0x83, bytes((r,))) for r in refs)
    )
    template = PinStatusTemplate.from_value(value)
    assert template.key_references == refs
    assert template.entries[0] == PinStatusEntry(1, True, 0x08)
    assert [e.enabled for e in template.entries] == [True] + [False] * 7 + [True]
    assert template.entries[1].usage_qualifier is None


@pytest.mark.parametrize(
    "value",
    [
        "83 01 01",  # no PS_DO
        "90 00 83 01 01",  # empty PS_DO
        "90 01 80 84 01 01",  # unexpected tag
        "90 01 80 83 01 01 95 01 08",  # usage qualifier without key reference
        "90 01 80" + " 83 01 01" * 9,  # more references than PS_DO bits
        "90 01 80 83 02 01 02",  # two-byte key reference
    ],
)
def test_malformed_pin_status_template(value: str) -> None:
    with pytest.raises(ParseError):
        PinStatusTemplate.from_value(H(value))


def test_build_pin_status_template_matches_card() -> None:
    assert build_pin_status_template([(0x01, False), (0x0A, True), (0x0B, True)]) == H(
        "C6 0C 90 01 60 83 01 01 83 01 0A 83 01 0B"
    )
    assert build_pin_status_template([(0x01, True)]) == H("C6 06 90 01 80 83 01 01")
    assert build_pin_status_template([]) == H("C6 03 90 01 00")


def test_sfi_absent_empty_and_explicit() -> None:
    base = H("82 02 41 21 83 02 6F 07 80 02 00 09")
    # Absent: the SFI is the low 5 bits of the file id 6F07.
    assert parse_fcp(encode_ber_tlv(0x62, base)).short_file_id == 0x07
    assert parse_fcp(encode_ber_tlv(0x62, base + H("88 00"))).short_file_id is None
    assert parse_fcp(encode_ber_tlv(0x62, base + H("88 01 F0"))).short_file_id == 0x1E


@pytest.mark.parametrize(
    ("fdb", "file_type", "structure", "shareable"),
    [
        (0x01, "working_ef", "transparent", False),
        (0x41, "working_ef", "transparent", True),
        (0x42, "working_ef", "linear_fixed", True),
        (0x46, "working_ef", "cyclic", True),
        (0x09, "internal_ef", "transparent", False),
        (0x0A, "internal_ef", "linear_fixed", False),
        (0x79, "working_ef", "ber_tlv", True),
        (0x39, "working_ef", "ber_tlv", False),
        (0x78, "df", None, True),
        (0x38, "df", None, False),
        (0x40, "working_ef", None, True),  # "no information given" on the structure
    ],
)
def test_file_descriptor_byte(
    fdb: int, file_type: str, structure: str | None, shareable: bool
) -> None:
    fcp = parse_fcp(encode_ber_tlv(0x62, encode_ber_tlv(0x82, bytes((fdb, 0x21)))))
    assert (fcp.file_type, fcp.structure, fcp.shareable) == (file_type, structure, shareable)
    if structure is not None:
        assert file_descriptor_byte(fcp.file_type, fcp.structure, shareable) == fdb


@pytest.mark.parametrize(
    ("life_cycle", "text"),
    [
        (0x00, "no-information"),
        (0x01, "creation"),
        (0x03, "initialisation"),
        (0x05, "operational-activated"),
        (0x07, "operational-activated"),
        (0x04, "operational-deactivated"),
        (0x06, "operational-deactivated"),
        (0x0C, "terminated"),
        (0x0F, "terminated"),
        (0x02, "rfu"),
        (0x90, "proprietary"),
    ],
)
def test_life_cycle_status(life_cycle: int, text: str) -> None:
    assert life_cycle_text(life_cycle) == text


def test_unknown_and_repeated_objects_are_kept() -> None:
    fcp = parse_fcp(H("62 0F 82 02 41 21 83 02 6F 07 C9 01 AA 83 02 6F 08"))
    assert fcp.file_id == 0x6F07
    assert fcp.other == (Tlv(0xC9, H("AA")), Tlv(0x83, H("6F08")))


@pytest.mark.parametrize(
    "wire",
    [
        "",
        "6F 04 82 02 41 21",  # FCI, not FCP
        "62 04 82 02 41",  # truncated
        "62 04 83 02 6F 07",  # no file descriptor
        "62 02 82 00",  # empty file descriptor
        "62 04 82 02 C1 21",  # FDB b8 set
        "62 04 82 02 51 21",  # RFU file type
        "62 09 82 07 42 21 00 21 01 00 00",  # descriptor too long
        "62 07 82 02 41 21 83 01 6F",  # one-byte file id
        "62 08 82 02 41 21 8A 02 05 05",  # two-byte life cycle
        "62 06 82 02 41 21 80 00",  # empty file size
        "62 08 82 02 41 21 88 02 38 00",  # two-byte SFI
        "62 0B 82 02 41 21 8B 05 2F 06 01 02 00",  # odd referenced length
        "62 08 82 02 41 21 8B 02 2F 06",  # referenced form without a record
        "62 04 82 02 41 21 62 00",  # two templates
        "62 07 82 02 78 21 C6 01 90",  # malformed PIN status template
    ],
)
def test_malformed_fcp(wire: str) -> None:
    with pytest.raises(ParseError):
        parse_fcp(H(wire))


def test_build_fcp_reproduces_real_responses() -> None:
    arr = SecurityAttributes.referenced
    assert build_fcp(
        file_type="working_ef",
        structure="linear_fixed",
        record_length=0x21,
        number_of_records=1,
        file_id=0x2F00,
        security_attributes=arr(0x2F06, 4),
        short_file_id=0x1E,
    ) == H(EF_DIR)
    assert build_fcp(
        file_type="working_ef",
        structure="transparent",
        file_id=0x6F07,
        security_attributes=arr(0x6F06, 5),
        file_size=9,
        short_file_id=0x07,
    ) == H(EF_IMSI)
    pins = PinStatusTemplate(
        (PinStatusEntry(0x01, False), PinStatusEntry(0x0A, True), PinStatusEntry(0x0B, True))
    )
    assert build_fcp(
        file_type="df",
        file_id=0x3F00,
        proprietary=H("80 01 71 83 04 00 03 A7 38 87 01 01"),
        security_attributes=arr(0x2F06, 1),
        pin_status=pins,
    ) == H(MF)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"file_type": "df", "structure": "transparent"},
        {"file_type": "working_ef"},
        {"file_type": "internal_ef", "structure": "ber_tlv"},
        {"file_type": "working_ef", "structure": "cyclic", "record_length": 10},
        {
            "file_type": "working_ef",
            "structure": "cyclic",
            "record_length": 0,
            "number_of_records": 3,
        },
        {"file_type": "working_ef", "structure": "transparent", "short_file_id": 31},
        {"file_type": "working_ef", "structure": "transparent", "file_size": -1},
    ],
)
def test_build_fcp_refuses_impossible_files(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ParseError):
        build_fcp(**kwargs)


# --- GSM 11.11 ---------------------------------------------------------------

GSM_MF = "00 00 00 00 3F 00 01 00 00 00 00 00 09 81 02 0C 04 00 83 8A 83 8A"
GSM_DF_TELECOM = "00 00 00 00 7F 10 02 00 00 00 00 00 09 81 00 0D 04 00 83 8A 83 8A"
GSM_EF_MSISDN = "00 00 00 34 6F 40 04 00 11 FF FF 01 02 01 1A"
GSM_EF_ICCID = "00 00 00 0A 2F E2 04 00 0C FF FF 01 02 00 00"


def test_gsm_mf_response() -> None:
    fcp = parse_gsm_response(H(GSM_MF))
    assert fcp.file_type == "df"
    assert fcp.is_mf
    assert fcp.file_id == 0x3F00
    assert fcp.gsm is not None
    assert fcp.gsm.free_memory == 0
    assert fcp.gsm.file_characteristics == 0x81
    assert fcp.gsm.chv1_enabled is False  # b8 of byte 14 set
    assert (fcp.gsm.child_dfs, fcp.gsm.child_efs, fcp.gsm.secret_codes) == (2, 12, 4)
    assert fcp.gsm.chv1 == CodeStatus(initialised=True, retries=3)
    assert fcp.gsm.unblock_chv1 == CodeStatus(initialised=True, retries=10)
    assert fcp.pin_status is not None
    assert fcp.pin_status.key_references == [0x01, 0x81]
    assert not fcp.pin_status.enabled(0x01)
    assert fcp.pin_status.enabled(0x81)


def test_gsm_df_and_efs() -> None:
    telecom = parse_gsm_response(H(GSM_DF_TELECOM))
    assert (telecom.file_id, telecom.is_mf, telecom.file_type) == (0x7F10, False, "df")
    msisdn = parse_gsm_response(H(GSM_EF_MSISDN))
    assert (msisdn.file_type, msisdn.structure) == ("working_ef", "linear_fixed")
    assert (msisdn.file_size, msisdn.record_length, msisdn.number_of_records) == (52, 26, 2)
    assert msisdn.gsm is not None
    assert msisdn.gsm.access_conditions == H("11FFFF")
    assert msisdn.gsm.invalidated is False
    assert msisdn.life_cycle_status == "operational-activated"
    assert msisdn.short_file_id is None
    iccid = parse_gsm_response(H(GSM_EF_ICCID))
    assert (iccid.file_id, iccid.structure, iccid.file_size) == (0x2FE2, "transparent", 10)
    assert iccid.record_length is None


def test_gsm_invalidated_and_cyclic() -> None:
    wire = build_gsm_response(
        file_id=0x6F3C,
        file_type="working_ef",
        structure="cyclic",
        file_size=0xB0,
        record_length=0x16,
        increase_allowed=True,
        invalidated=True,
        readable_when_invalidated=True,
    )
    fcp = parse_gsm_response(wire)
    assert fcp.structure == "cyclic"
    assert fcp.number_of_records == 8
    assert fcp.life_cycle_status == "operational-deactivated"
    assert fcp.gsm is not None
    assert fcp.gsm.increase_allowed is True
    assert fcp.gsm.readable_when_invalidated is True


def test_build_gsm_response_reproduces_real_responses() -> None:
    assert build_gsm_response(
        file_id=0x3F00,
        file_type="df",
        file_characteristics=0x01,
        chv1_enabled=False,
        child_dfs=2,
        child_efs=12,
    ) == H(GSM_MF)
    assert build_gsm_response(
        file_id=0x6F40,
        file_type="working_ef",
        structure="linear_fixed",
        file_size=52,
        record_length=26,
        access_conditions=H("11FFFF"),
    ) == H(GSM_EF_MSISDN)
    assert build_gsm_response(
        file_id=0x2FE2,
        file_type="working_ef",
        structure="transparent",
        file_size=10,
        access_conditions=H("0CFFFF"),
    ) == H(GSM_EF_ICCID)


@pytest.mark.parametrize(
    "wire",
    [
        "",
        "00 00 00 0A 2F E2 04 00 0C FF FF 01",  # shorter than 13 bytes
        "00 00 00 0A 2F E2 03 00 0C FF FF 01 02 00 00",  # type 03
        "00 00 00 0A 2F E2 04 00 0C FF FF 01 02",  # EF without structure byte
        "00 00 00 0A 2F E2 04 00 0C FF FF 01 02 02 00",  # structure 02
        "00 00 00 34 6F 40 04 00 11 FF FF 01 02 01",  # linear fixed without record length
        "00 00 00 34 6F 40 04 00 11 FF FF 01 02 01 00",  # record length 0
    ],
)
def test_malformed_gsm_response(wire: str) -> None:
    with pytest.raises(ParseError):
        parse_gsm_response(H(wire))


# --- properties ------------------------------------------------------------


@given(st.binary(max_size=120))
def test_parse_fcp_arbitrary_bytes(data: bytes) -> None:
    try:
        fcp = parse_fcp(data)
    except ParseError:
        return
    assert fcp.file_type in ("working_ef", "internal_ef", "df")


_FCP_OBJECT_TAGS = [0x80, 0x81, 0x82, 0x83, 0x84, 0x88, 0x8A, 0x8B, 0x8C, 0xA5, 0xAB, 0xC6, 0x90]


@given(st.lists(st.tuples(st.sampled_from(_FCP_OBJECT_TAGS), st.binary(max_size=8)), max_size=8))
def test_parse_fcp_plausible_templates(objects: list[tuple[int, bytes]]) -> None:
    body = b"".join(encode_ber_tlv(tag, value) for tag, value in objects)
    try:
        fcp = parse_fcp(encode_ber_tlv(0x62, body))
    except ParseError:
        return
    assert isinstance(fcp, Fcp)


@given(st.binary(max_size=40))
def test_parse_gsm_response_arbitrary_bytes(data: bytes) -> None:
    try:
        fcp = parse_gsm_response(data)
    except ParseError:
        return
    assert fcp.gsm is not None
    assert fcp.file_id == int.from_bytes(data[4:6], "big")


_byte = st.integers(0, 255)
_fid = st.integers(0, 0xFFFF)


@st.composite
def _fcp_arguments(draw: st.DrawFn) -> dict[str, Any]:
    file_type = draw(st.sampled_from(["working_ef", "internal_ef", "df"]))
    args: dict[str, Any] = {
        "file_type": file_type,
        "shareable": draw(st.booleans()),
        "file_id": draw(st.none() | _fid),
        "life_cycle": draw(st.none() | st.sampled_from([1, 3, 4, 5, 12])),
        "proprietary": draw(st.none() | st.binary(max_size=20)),
        "total_file_size": draw(st.none() | st.integers(0, 2**31)),
    }
    security = draw(st.none() | st.tuples(_fid, st.integers(1, 255)))
    if security is not None:
        args["security_attributes"] = SecurityAttributes.referenced(*security)
    if file_type == "df":
        args["df_name"] = draw(st.none() | st.binary(min_size=5, max_size=16))
        entries = draw(st.lists(st.tuples(_byte, st.booleans()), max_size=10))
        args["pin_status"] = PinStatusTemplate(tuple(PinStatusEntry(r, e) for r, e in entries))
        return args
    choices = ["transparent", "linear_fixed", "cyclic"]
    if file_type == "working_ef":
        choices.append("ber_tlv")
    structure = draw(st.sampled_from(choices))
    args["structure"] = structure
    if structure in ("linear_fixed", "cyclic"):
        args["record_length"] = draw(st.integers(1, 0xFFFF))
        args["number_of_records"] = draw(st.integers(1, 0xFF))
    else:
        args["file_size"] = draw(st.none() | st.integers(0, 0xFFFF))
    args["short_file_id"] = draw(st.none() | st.integers(1, 30))
    return args


@given(_fcp_arguments())
def test_build_parse_round_trip(args: dict[str, Any]) -> None:
    fcp = parse_fcp(build_fcp(**args))
    for name, value in args.items():
        assert getattr(fcp, name) == value, name
    if fcp.record_length is not None and fcp.number_of_records is not None:
        assert fcp.file_size == fcp.record_length * fcp.number_of_records


@given(st.integers(0, 0xFFFF), st.booleans(), st.integers(0, 15), st.integers(0, 15))
def test_gsm_directory_round_trip(
    fid: int, chv1_enabled: bool, chv1_retries: int, puk_retries: int
) -> None:
    if fid == 0x3F00:
        fid = 0x7F20
    wire = build_gsm_response(
        file_id=fid,
        file_type="df",
        chv1_enabled=chv1_enabled,
        chv1=CodeStatus(True, chv1_retries),
        unblock_chv1=CodeStatus(True, puk_retries),
    )
    fcp = parse_gsm_response(wire)
    assert fcp.file_id == fid
    assert fcp.gsm is not None
    assert fcp.gsm.chv1 == CodeStatus(True, chv1_retries)
    assert fcp.gsm.unblock_chv1 == CodeStatus(True, puk_retries)
    assert fcp.pin_status is not None
    assert fcp.pin_status.enabled(0x01) is chv1_enabled
