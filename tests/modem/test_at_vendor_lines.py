"""Parsers and final result codes on the lines real modems send beyond the 27.007 examples.

Vectors are answer lines as 3GPP TS 27.007 defines them and as vendor AT
manuals (Quectel, Sierra, SIMCom, u-blox, Telit, Huawei, Fibocom) document
them: blanks after commas, vendor final result codes, vendor registration
layouts, hex ICCIDs, the full ``+CESQ``, operator scans with UCS2 names,
``+CGCONTRDP``, ``#QSS``, ``^HCSQ`` and the SIM-status unsolicited lines.
The hypothesis tests check that no input makes a parser raise anything but
:class:`AtParseError`, and that :func:`classify_final` never raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modem.codes import classify_final
from modem.errors import AtParseError
from modem.parsers import (
    apn_matches,
    decode_ucs2,
    iccid_from_file,
    is_solicited_registration,
    normalize_iccid,
    parse_ceer,
    parse_cesq,
    parse_cgcontrdp,
    parse_cgdcont,
    parse_cgpaddr,
    parse_cops_list,
    parse_csim,
    parse_hcsq,
    parse_imei,
    parse_qss,
    parse_registration,
    parse_sim_status,
    split_fields,
)

# -- final result codes -----------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind", "code"),
    [
        # A superscript digit: str.isdigit() says yes, int() says no.
        ("+CME ERROR: ²", "cme", None),
        ("+CME ERROR: ٣", "cme", None),  # an Arabic-Indic digit
        ("+CME ERROR: 1_0", "cme", None),  # int() would take "1_0" as 10
        ("+CMS ERROR: ⁵⁰⁰", "cms", None),
        ("MODEM ERROR: 5", "error", 5),
        ("MODEM ERROR: x", "error", None),
        ("COMMAND NOT SUPPORT", "error", None),  # Huawei
        ("TOO MANY PARAMETERS", "error", None),  # Huawei
        ("NO CARRIER", "error", None),
        ("NO ANSWER", "error", None),
        ("BUSY", "error", None),
        ("NO DIALTONE", "error", None),
        ("ABORTED", "error", None),  # u-blox
        ("+CME ERROR: 129", "cme", 129),  # ESM cause 29 + 100
        ("+CME ERROR: missing or unknown APN", "cme", 127),
    ],
)
def test_vendor_and_odd_final_codes(line: str, kind: str, code: int | None) -> None:
    result = classify_final(line)
    assert result is not None and result.kind == kind and result.code == code
    assert not result.ok


@given(st.text(max_size=200))
@settings(max_examples=300)
def test_classify_final_never_raises_on_any_text(line: str) -> None:
    classify_final(line)
    classify_final("+CME ERROR: " + line)
    classify_final("MODEM ERROR: " + line)


# -- fields ---------------------------------------------------------------------------


def test_blank_after_comma_is_not_part_of_a_quoted_field() -> None:
    fields = split_fields(' 1, "IP", "internet" ,"0.0.0.0"')
    assert [f.text for f in fields] == ["1", "IP", "internet", "0.0.0.0"]
    assert [f.quoted for f in fields] == [False, True, True, True]
    # Blanks inside the quotes are the string's own.
    assert split_fields('1, " a b "')[1].text == " a b "


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['+CSIM: 8, "000063C1"'], bytes.fromhex("000063C1")),
        (['+CSIM: 4,"9000"'], bytes.fromhex("9000")),
    ],
)
def test_csim_with_blanks(lines: list[str], expected: bytes) -> None:
    assert parse_csim(lines) == expected


def test_cgdcont_with_blanks_reads_the_apn_unpadded() -> None:
    contexts = parse_cgdcont(['+CGDCONT: 1, "IP", "internet", "0.0.0.0", 0, 0'])
    assert contexts[0].cid == 1 and contexts[0].pdp_type == "IP"
    assert contexts[0].apn == "internet"


# -- registration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind", "n", "stat", "area", "cell", "act"),
    [
        # TS 27.007 read forms, with and without blanks.
        ('+CREG: 2, 1, "0426", "F00F"', "CREG", 2, 1, "0426", "F00F", None),
        ('+CEREG: 2,1,"1A2B","01A2B3C4",7', "CEREG", 2, 1, "1A2B", "01A2B3C4", 7),
        ('+CGREG: 2,5,"0426","0001F00F",6,"FF"', "CGREG", 2, 5, "0426", "0001F00F", 6),
        # +CEREG n=4 with cause and PSM timers after the AcT (TS 27.007 10.1.22).
        (
            '+CEREG: 4,1,"1A2B","01A2B3C4",9,,,"00100100","01000111"',
            "CEREG",
            4,
            1,
            "1A2B",
            "01A2B3C4",
            9,
        ),
        # Unsolicited forms; some firmware sends LAC and cell without quotes.
        ('+CREG: 1,"0426","F00F",0', "CREG", None, 1, "0426", "F00F", 0),
        ("+CREG: 1,0426,F00F,2", "CREG", None, 1, "0426", "F00F", 2),
        ("+CEREG: 5", "CEREG", None, 5, None, None, None),
        ('+C5GREG: 2,1,"00A1B2","000000123456",11', "C5GREG", 2, 1, "00A1B2", "000000123456", 11),
    ],
)
def test_registration_layouts(
    line: str,
    kind: str,
    n: int | None,
    stat: int,
    area: str | None,
    cell: str | None,
    act: int | None,
) -> None:
    report = parse_registration(line)
    assert (report.kind, report.n, report.stat, report.area, report.cell, report.act) == (
        kind,
        n,
        stat,
        area,
        cell,
        act,
    )


@pytest.mark.parametrize(
    "line",
    [
        '+CEREG: 2,1,"1A2B","01A2B3C4",42',  # no such access technology
        '+CREG: 2,1,"0426","F00F",99',
        "+CREG: 9,1",  # <n> is 0..5
    ],
)
def test_registration_out_of_range_is_refused(line: str) -> None:
    with pytest.raises(AtParseError):
        parse_registration(line)


def test_unquoted_area_code_is_not_taken_for_stat() -> None:
    assert not is_solicited_registration("+CREG: 1,0426,F00F,7")
    assert is_solicited_registration("+CREG: 0, 1")


# -- identity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "iccid", "luhn"),
    [
        ("89860025128306012474", "89860025128306012474", None),
        ("8981100022222222224F", "8981100022222222224", None),  # Sierra pads 19 digits
        ("898600700907A6019125", "898600700907A6019125", False),  # hex issuer part
        ("89860B1906090001234F", "89860B1906090001234", False),
        ('"8944500102198304826"', "8944500102198304826", None),
    ],
)
def test_iccid_forms(line: str, iccid: str, luhn: bool | None) -> None:
    reading = normalize_iccid(line)
    assert reading.iccid == iccid
    if luhn is not None:
        assert reading.luhn_ok is luhn


@pytest.mark.parametrize(
    "line", ["1234567890123456789", "35693803564380912345", "89123", "8986002512830601247G"]
)
def test_not_iccids(line: str) -> None:
    with pytest.raises(AtParseError):
        normalize_iccid(line)


def test_iccid_from_ef_iccid_bytes_keeps_hex_digits() -> None:
    # EF.ICCID holds the digits nibble-swapped, F-padded (TS 102 221 clause 13.2).
    assert iccid_from_file(bytes.fromhex("98680007907A1620F4F0")).iccid.startswith("898600700")
    assert iccid_from_file(bytes.fromhex("981800002222222222F4")).iccid == "8981000022222222224"
    with pytest.raises(AtParseError):
        iccid_from_file(b"\x98\x18")


@pytest.mark.parametrize(
    ("lines", "imei"),
    [
        (["866758041234560 SN:E1A2B3C4"], "866758041234560"),
        (['+CGSN: "356938035643809","SN123"'], "356938035643809"),
        (["356938035643809", "SN: 0123"], "356938035643809"),
        (["+CGSN: 3569380356438091"], "3569380356438091"),  # IMEISV
        (["IMEI: 359072062088113"], "359072062088113"),  # Sierra's label
        (["+GSN: 359072062088113"], "359072062088113"),
    ],
)
def test_imei_followed_by_a_serial(lines: list[str], imei: str) -> None:
    assert parse_imei(lines) == imei


@pytest.mark.parametrize(
    "lines", [["35693803564380912"], ["SN:E1A2B3C4"], ["３５６９３８０３５６４３８０９"]]
)
def test_not_an_imei(lines: list[str]) -> None:
    with pytest.raises(AtParseError):
        parse_imei(lines)


# -- APN -------------------------------------------------------------------------------------


def test_apn_operator_identifier_is_stripped_from_the_read_back_only() -> None:
    assert apn_matches("ijmio.jp", "ijmio.jp.mnc010.mcc440.gprs")
    assert apn_matches("IJMIO.JP", "ijmio.jp")
    # An APN configured with an operator identifier is compared whole.
    assert not apn_matches("ijmio.jp.mnc010.mcc440.gprs", "ijmio.jp")


# -- signal ------------------------------------------------------------------------------------


def test_cesq_decodes_every_radio() -> None:
    # GSM rxlev 30 (-81 dBm), UTRAN rscp 40 (-81 dBm) ecno 30 (-9.5 dB),
    # LTE rsrq 26 (-7 dB) rsrp 48 (-93 dBm).
    signal = parse_cesq(["+CESQ: 30,0,40,30,26,48"])
    assert signal.rxlev_dbm == -81 and signal.ber == 0
    assert signal.rscp_dbm == -81 and signal.ecno_db == -9.5
    assert signal.rsrq_db == -7.0 and signal.rsrp_dbm == -93
    unknown = parse_cesq(["+CESQ: 99, 99, 255, 255, 255, 255"])
    assert unknown.rxlev_dbm is None and unknown.rsrp_dbm is None and unknown.ber is None
    # Release 15 appends the NR figures.
    nr = parse_cesq(["+CESQ: 99,99,255,255,255,255,60,80,70"])
    assert (nr.ss_rsrq_db, nr.ss_rsrp_dbm, nr.ss_sinr_db) == (-13.5, -77, 11.5)


@pytest.mark.parametrize("line", ["+CESQ: 64,0,40,30,26,48", "+CESQ: 30,0,97,30,26,48"])
def test_cesq_out_of_range(line: str) -> None:
    with pytest.raises(AtParseError):
        parse_cesq([line])


def test_huawei_hcsq() -> None:
    lte = parse_hcsq(['^HCSQ: "LTE",53,46,151,23'])
    assert lte.mode == "LTE" and lte.rssi_dbm == -68 and lte.rsrp_dbm == -95
    assert lte.sinr_db == 10.0 and lte.rsrq_db == -8.5
    wcdma = parse_hcsq(['^HCSQ: "WCDMA",30,30,58'])
    assert (wcdma.rssi_dbm, wcdma.rscp_dbm, wcdma.ecno_db) == (-91, -91, -3.5)
    assert parse_hcsq(['^HCSQ: "NOSERVICE"']).rssi_dbm is None
    assert parse_hcsq(['^HCSQ: "GSM",255']).rssi_dbm is None
    with pytest.raises(AtParseError):
        parse_hcsq(['^HCSQ: "LTE",300,1,1,1'])


# -- operator scan -------------------------------------------------------------------------------


def test_operator_scan() -> None:
    line = (
        '+COPS: (2,"NTT DOCOMO","DOCOMO","44010",7),(1,"SoftBank","SoftBank","44020",7),'
        '(3,"KDDI","KDDI","44051",7),,(0,1,2,3,4),(0,1,2)'
    )
    networks = parse_cops_list([line])
    assert [(n.status, n.short_name, n.numeric, n.act) for n in networks] == [
        (2, "DOCOMO", "44010", 7),
        (1, "SoftBank", "44020", 7),
        (3, "KDDI", "44051", 7),
    ]
    assert networks[0].state == "current" and networks[2].state == "forbidden"


def test_operator_scan_with_ucs2_names() -> None:
    # AT+CSCS="UCS2": names as UTF-16 hex; the numeric PLMN stays digits.
    name = "ドコモ".encode("utf-16-be").hex().upper()
    line = f'+COPS: (2,"{name}","{name}","44010",7),,(0-4),(0-2)'
    networks = parse_cops_list([line])
    assert networks[0].long_name == "ドコモ" and networks[0].numeric == "44010"
    assert decode_ucs2("44010") is None
    assert parse_cops_list([line], ucs2=False)[0].long_name == name


def test_operator_scan_without_networks() -> None:
    assert parse_cops_list(["+COPS: ,,(0-4),(0-2)"]) == []


# -- context addresses ----------------------------------------------------------------------------


def test_cgcontrdp_ipv4_with_mask_and_dns() -> None:
    lines = [
        '+CGCONTRDP: 1,5,"ijmio.jp.mnc010.mcc440.gprs","10.45.3.7.255.255.255.0",'
        '"10.45.3.1","202.232.2.2","202.232.2.3"'
    ]
    (address,) = parse_cgcontrdp(lines)
    assert address.cid == 1 and address.bearer == 5
    assert address.ipv4 == "10.45.3.7" and address.ipv4_mask == "255.255.255.0"
    assert address.gateway == "10.45.3.1"
    assert address.dns == ("202.232.2.2", "202.232.2.3")


def test_cgcontrdp_ipv4v6_lines_are_merged() -> None:
    v6 = ".".join(str(b) for b in bytes.fromhex("20010db8000000000000000000000001"))
    lines = [
        '+CGCONTRDP: 1, 5, "internet", "10.0.0.2", "", "8.8.8.8", "8.8.4.4"',
        f'+CGCONTRDP: 1, 5, "internet", "{v6}", "", "", ""',
        '+CGCONTRDP: 2,6,"ims"',
    ]
    (address,) = parse_cgcontrdp(lines, cid=1)
    assert address.ipv4 == "10.0.0.2" and address.ipv6 == "2001:db8::1"
    assert address.dns == ("8.8.8.8", "8.8.4.4")


def test_cgpaddr() -> None:
    assert parse_cgpaddr(['+CGPADDR: 1,"10.0.0.2"', "+CGPADDR: 2"]) == {
        1: ("10.0.0.2",),
        2: (),
    }


@pytest.mark.parametrize(
    "line", ['+CGCONTRDP: 1,5,"x","10.0.0.300"', '+CGCONTRDP: 1,5,"x","1.2.3"', "+CGCONTRDP: 1"]
)
def test_cgcontrdp_bad_addresses(line: str) -> None:
    with pytest.raises(AtParseError):
        parse_cgcontrdp([line])


# -- error reports ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "cause"),
    [
        ('+CEER: "ESM",29', 29),  # category then number
        ("+CEER: PDP activation rejected, cause: 27", 27),
        ("+CEER: #33", 33),
        ("+CEER: User authentication failed", 29),
        ("+CEER: No report available", None),
    ],
)
def test_ceer(line: str, cause: int | None) -> None:
    assert parse_ceer([line]).cause == cause


# -- SIM status ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "inserted", "ready"),
    [
        ("#QSS: 0", False, False),  # Telit unsolicited
        ("#QSS: 1,3", True, True),  # Telit AT#QSS? read form <mode>,<status>
        ("^SIMST: 1", True, True),  # Huawei
        ("^SIMST: 255", False, False),
        ("+UUSIMSTAT: 1", True, False),  # u-blox: PIN needed
        ("+QSIMSTAT: 1,0", False, None),  # Quectel hot-plug: removed
        ("+QUSIM: 1", True, None),
        ("+SIMCARD: NOT AVAILABLE", False, None),  # SIMCom
        ("+CPIN: NOT INSERTED", False, False),
        ("+CPIN: READY", True, True),
    ],
)
def test_sim_status_lines(line: str, inserted: bool | None, ready: bool | None) -> None:
    status = parse_sim_status(line)
    assert status is not None and (status.inserted, status.ready) == (inserted, ready)


def test_not_sim_status_lines() -> None:
    assert parse_sim_status("+CSQ: 20,99") is None
    assert parse_sim_status("#QSS: ²") is None
    assert parse_qss(["#QSS: 0,2"]).ready is True
    with pytest.raises(AtParseError):
        parse_qss(["#QSS: x"])


# -- no parser raises anything but AtParseError -----------------------------------------

_PARSERS: Sequence[tuple[str, Callable[[list[str]], Any]]] = (
    ("+CESQ: ", parse_cesq),
    ("^HCSQ: ", parse_hcsq),
    ("+COPS: ", parse_cops_list),
    ("+CGCONTRDP: ", parse_cgcontrdp),
    ("+CGPADDR: ", parse_cgpaddr),
    ("+CEER: ", parse_ceer),
    ("#QSS: ", parse_qss),
    ("+CSIM: ", parse_csim),
    ("+CGDCONT: ", parse_cgdcont),
    ("+CGSN: ", parse_imei),
    ("", lambda lines: [normalize_iccid(line) for line in lines]),
    ("+CEREG: ", lambda lines: [parse_registration(line) for line in lines]),
)

_FIELDISH = st.lists(
    st.one_of(
        st.integers(-5, 300).map(str),
        st.text(alphabet='0123456789ABCDEF.:"²٣ ', max_size=40),
        st.text(max_size=12),
    ),
    max_size=10,
).map(",".join)


@given(st.sampled_from(range(len(_PARSERS))), _FIELDISH)
@settings(max_examples=600, deadline=None)
def test_parsers_raise_only_parse_errors(index: int, payload: str) -> None:
    prefix, parser = _PARSERS[index]
    with contextlib.suppress(AtParseError):
        parser([prefix + payload])
    status = parse_sim_status(prefix + payload)  # never raises
    assert status is None or prefix in ("#QSS: ", "")
