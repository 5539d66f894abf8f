"""Parsers on answer lines of real modems (as published in manuals and field logs).

Each vector is a line a modem was documented or logged to send; the expected
values follow from the 3GPP TS 27.007 definitions or the vendor manual.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu.files import encode_iccid, luhn_valid
from modem.dialects import DIALECTS, Auth, AuthSpec, RetryKind
from modem.errors import AtParseError, ModemError
from modem.parsers import (
    apn_matches,
    is_solicited_registration,
    network_identifier,
    normalize_iccid,
    parse_auth_readback,
    parse_cesq,
    parse_cgact,
    parse_cgdcont,
    parse_cops,
    parse_cpin,
    parse_crsm,
    parse_csim,
    parse_csq,
    parse_iccid,
    parse_imei,
    parse_imsi,
    parse_registration,
    parse_retries,
    parse_text_answer,
    prefix_of,
    split_fields,
)

# --- fields ---------------------------------------------------------------------


def test_split_fields_keeps_commas_inside_quotes() -> None:
    fields = split_fields('1,"IP","a,b",,7')
    assert [(f.text, f.quoted) for f in fields] == [
        ("1", False),
        ("IP", True),
        ("a,b", True),
        ("", False),
        ("7", False),
    ]
    assert fields[3].empty and not fields[2].empty


@pytest.mark.parametrize("payload", ['1,"open', '"a"b,1'])
def test_split_fields_refuses_broken_quotes(payload: str) -> None:
    with pytest.raises(AtParseError):
        split_fields(payload)


@pytest.mark.parametrize(
    ("command", "prefix"),
    [
        ("AT+CGDCONT?", "+CGDCONT:"),
        ("AT^ICCID?", "^ICCID:"),
        ("AT$QCPDPP?", "$QCPDPP:"),
        ("AT#CCID", "#CCID:"),
        ('AT+QPINC="SC"', "+QPINC:"),
        ("ATE0", None),
        ("AT", None),
    ],
)
def test_prefix_of(command: str, prefix: str | None) -> None:
    assert prefix_of(command) == prefix


# --- registration (TS 27.007 7.2, 10.1.20, 10.1.22) -------------------------------------


@pytest.mark.parametrize(
    ("line", "solicited", "kind", "n", "stat", "area", "cell", "act"),
    [
        # Read-command answers logged from Quectel/Chunghwa and Sierra sessions.
        ("+CEREG: 2,1", True, "CEREG", 2, 1, None, None, None),
        ("+CEREG: 0,3", True, "CEREG", 0, 3, None, None, None),
        ("+CREG: 0,5", True, "CREG", 0, 5, None, None, None),
        ("+CGREG: 0,1", True, "CGREG", 0, 1, None, None, None),
        ('+CREG: 2,1,"1A2B","01C3D4E5",7', True, "CREG", 2, 1, "1A2B", "01C3D4E5", 7),
        ('+CEREG: 2,1,"0B7A","012f6a0c",7', True, "CEREG", 2, 1, "0B7A", "012F6A0C", 7),
        # Unsolicited forms: <stat> first, then the quoted area and cell.
        ("+CEREG: 1", False, "CEREG", None, 1, None, None, None),
        ('+CREG: 1,"00C3","0000B0D3",2', False, "CREG", None, 1, "00C3", "0000B0D3", 2),
        ('+CEREG: 5,"1A2B","01A2B3C4",7', False, "CEREG", None, 5, "1A2B", "01A2B3C4", 7),
        ("+C5GREG: 1,1", True, "C5GREG", 1, 1, None, None, None),
    ],
)
def test_registration(
    line: str,
    solicited: bool,
    kind: str,
    n: int | None,
    stat: int,
    area: str | None,
    cell: str | None,
    act: int | None,
) -> None:
    assert is_solicited_registration(line) is solicited
    report = parse_registration(line)
    assert (report.kind, report.n, report.stat, report.area, report.cell, report.act) == (
        kind,
        n,
        stat,
        area,
        cell,
        act,
    )


def test_registration_states_in_words() -> None:
    home = parse_registration("+CEREG: 0,1")
    roaming = parse_registration("+CEREG: 0,5")
    denied = parse_registration("+CEREG: 0,3")
    assert home.registered and not home.roaming
    assert roaming.registered and roaming.roaming
    assert not denied.registered and denied.state == "registration denied"
    assert parse_registration('+CEREG: 2,1,"1A2B","01",7').technology == "E-UTRAN"


@pytest.mark.parametrize("line", ["+CEREG: 0,12", '+CEREG: 0,1,"XYZ!"', "+CEREG:", "+CSQ: 1,2"])
def test_registration_rejects(line: str) -> None:
    with pytest.raises(AtParseError):
        parse_registration(line)


# --- signal and operator -------------------------------------------------------------------


def test_csq_converts_to_dbm() -> None:
    # TS 27.007 clause 8.5: rssi 0 is -113 dBm or less, 2 dB steps, 31 is -51 dBm.
    signal = parse_csq(["+CSQ: 16,99"])
    assert (signal.rssi, signal.ber, signal.rssi_dbm) == (16, None, -81)
    unknown = parse_csq(["+CSQ: 99,99"])
    assert unknown.rssi is None and unknown.rssi_dbm is None
    assert parse_csq(["+CSQ: 31,0"]).rssi_dbm == -51


def test_cesq_lte_fields() -> None:
    # TS 27.007 clause 8.69: rsrq 0..34 in 0.5 dB steps from -20; rsrp 0..97 from -141.
    quality = parse_cesq(["+CESQ: 99,99,255,255,26,48"])
    assert quality.rsrq_db == -7.0 and quality.rsrp_dbm == -93
    assert parse_cesq(["+CESQ: 99,99,255,255,255,255"]).rsrp_dbm is None


@pytest.mark.parametrize("lines", [["+CSQ: 32,99"], ["+CSQ: 20"], ["+CSQ: 20,8"], ["OK"]])
def test_csq_rejects(lines: list[str]) -> None:
    with pytest.raises(AtParseError):
        parse_csq(lines)


@pytest.mark.parametrize("lines", [["+CESQ: 1,2,3"], ["+CESQ: 99,99,255,255,35,48"], []])
def test_cesq_rejects(lines: list[str]) -> None:
    with pytest.raises(AtParseError):
        parse_cesq(lines)


@pytest.mark.parametrize(
    ("line", "mode", "fmt", "name", "act"),
    [
        ('+COPS: 0,0,"CHINA MOBILE",7', 0, 0, "CHINA MOBILE", 7),
        ('+COPS: 0,1,"CMCC",7', 0, 1, "CMCC", 7),
        ('+COPS: 0,0,"Chunghwa",7', 0, 0, "Chunghwa", 7),
        ('+COPS: 0,2,"44010",7', 0, 2, "44010", 7),
        ("+COPS: 0", 0, None, None, None),
    ],
)
def test_cops(line: str, mode: int, fmt: int | None, name: str | None, act: int | None) -> None:
    operator = parse_cops([line])
    assert (operator.mode, operator.format, operator.name, operator.act) == (mode, fmt, name, act)


# --- SIM --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("+CPIN: READY", "READY"),
        ("+CPIN: SIM PIN", "SIM PIN"),
        ("+CPIN: SIM PUK", "SIM PUK"),
        ("+CPIN: PH-NET PIN", "PH-NET PIN"),
    ],
)
def test_cpin(line: str, code: str) -> None:
    assert parse_cpin([line]) == code


def test_cpin_rejects_unknown_code() -> None:
    with pytest.raises(AtParseError):
        parse_cpin(["+CPIN: MAYBE"])


@pytest.mark.parametrize(
    ("kind", "prefix", "lines", "state", "expected"),
    [
        # Quectel: +QPINC: <facility>,<pin counter>,<puk counter>.
        ("qpinc", "+QPINC:", ['+QPINC: "SC",3,10'], None, (3, 10, None, None)),
        # SIMCom: +SPIC: <pin1>,<puk1>,<pin2>,<puk2>.
        ("spic", "+SPIC:", ["+SPIC: 3,10,0,10"], None, (3, 10, 0, 10)),
        # u-blox (ModemManager test vectors): +UPINCNT: <pin>,<pin2>,<puk>,<puk2>.
        ("upincnt", "+UPINCNT:", ["+UPINCNT: 3,3,10,10"], None, (3, 10, 3, 10)),
        ("upincnt", "+UPINCNT:", ["+UPINCNT: 0,3,5,5"], None, (0, 5, 3, 5)),
        # Intel XMM (Fibocom): +XPINCNT: <pin1>,<pin2>,<puk1>,<puk2>.
        ("xpincnt", "+XPINCNT:", ["+XPINCNT: 3,3,10,10"], None, (3, 10, 3, 10)),
        # Huawei: ^CPIN: <code>,[<times>],<puk_times>,<pin_times>,<puk2_times>,<pin2_times>.
        ("hcpin", "^CPIN:", ["^CPIN: SIM PIN,3,10,3,10,3"], None, (3, 10, 3, 10)),
        ("hcpin", "^CPIN:", ["^CPIN: READY,,10,3,10,0"], None, (3, 10, 0, 10)),
        # TS 27.007 clause 8.65 +CPINR, quoted or not.
        (
            "cpinr",
            "+CPINR:",
            ['+CPINR: "SIM PIN",3,3', '+CPINR: "SIM PUK",10,10'],
            None,
            (3, 10, None, None),
        ),
        ("cpinr", "+CPINR:", ["+CPINR: SIM PIN,0"], None, (0, None, None, None)),
        # Telit #PCT counts the code the SIM asks for now.
        ("pct", "#PCT:", ["#PCT: 2"], "SIM PIN", (2, None, None, None)),
        ("pct", "#PCT:", ["#PCT: 9"], "SIM PUK", (None, 9, None, None)),
        ("pct", "#PCT:", ["#PCT: 3"], "READY", (None, None, None, None)),
    ],
)
def test_retry_counters(
    kind: Any, prefix: str, lines: list[str], state: str | None, expected: tuple[int | None, ...]
) -> None:
    retries = parse_retries(kind, lines, prefix, pin_state=state)
    assert (retries.pin1, retries.puk1, retries.pin2, retries.puk2) == expected


def test_retry_counter_out_of_range() -> None:
    with pytest.raises(AtParseError):
        parse_retries("spic", ["+SPIC: 3,10,0,300"], "+SPIC:")


@pytest.mark.parametrize(
    ("lines", "prefix", "iccid"),
    [
        (["^ICCID: 89860121802374570731"], "^ICCID:", "89860121802374570731"),
        # Sierra's !ICCID? pads a 19-digit ICCID with F to 20 characters.
        (["ICCID: 8981090000000000004F"], "ICCID:", "8981090000000000004"),
        (['ICCID: "8981090000000000004F"'], "ICCID:", "8981090000000000004"),
        (["+ICCID: 8981090000000000004"], "+ICCID:", "8981090000000000004"),
        (["+QCCID: 89860025128306012474"], "+QCCID:", "89860025128306012474"),
        # Intel XMM answers bare digits.
        (["89001010000000000001"], "+CCID:", "89001010000000000001"),
        # Raw EF.ICCID nibbles (98...): put back in order.
        (["+CCID: 981890000000000000F4"], "+CCID:", "8981090000000000004"),
    ],
)
def test_iccid_variants(lines: list[str], prefix: str, iccid: str) -> None:
    reading = parse_iccid(lines, prefix)
    assert reading.iccid == iccid
    assert reading.luhn_ok == luhn_valid(iccid)


def test_iccid_with_hex_digits_is_an_iccid() -> None:
    # Logged from a Chinese SIM through SIMCom: some operators' ICCIDs hold hex
    # digits in the issuer part. It is kept as is; the Luhn check is undefined.
    reading = parse_iccid(["+ICCID: 898600700907A6019125"], "+ICCID:")
    assert reading.iccid == "898600700907A6019125"
    assert not reading.luhn_ok


def test_iccid_swap_matches_the_file_encoding() -> None:
    iccid = "8981090000000000004"
    raw = encode_iccid(iccid).hex().upper()
    assert normalize_iccid(raw).iccid == iccid and normalize_iccid(raw).swapped


@pytest.mark.parametrize(
    ("lines", "imei"),
    [
        (["860488070026329"], "860488070026329"),  # SIMCom SIM8230G ATI/+CGSN log
        (['+CGSN: "356938035643809"'], "356938035643809"),
    ],
)
def test_imei(lines: list[str], imei: str) -> None:
    assert parse_imei(lines) == imei


@pytest.mark.parametrize(
    ("lines", "imsi"),
    [
        (["460083265908345"], "460083265908345"),  # Quectel RIL log
        (["255071013516311"], "255071013516311"),  # Huawei session dump
        (["+CIMI: 440103000000001"], "440103000000001"),
    ],
)
def test_imsi(lines: list[str], imsi: str) -> None:
    assert parse_imsi(lines) == imsi


def test_identity_text_drops_vendor_prefixes() -> None:
    assert parse_text_answer(["+CGMI: Quectel"]) == "Quectel"
    assert parse_text_answer(["Manufacturer: SIMCOM INCORPORATED"]) == "SIMCOM INCORPORATED"
    assert parse_text_answer(["Sierra Wireless, Incorporated"]) == "Sierra Wireless, Incorporated"
    with pytest.raises(AtParseError):
        parse_text_answer([])


def test_csim_and_crsm() -> None:
    assert parse_csim(['+CSIM: 4,"63C3"']) == bytes.fromhex("63C3")
    with pytest.raises(AtParseError):
        parse_csim(['+CSIM: 6,"63C3"'])  # <length> counts hex characters
    response = parse_crsm(['+CRSM: 144,0,"981890000000000000F4"'])
    assert response.sw == 0x9000 and response.data == bytes.fromhex("981890000000000000F4")
    assert parse_crsm(["+CRSM: 106,130"]).sw == 0x6A82


# --- contexts and credentials -------------------------------------------------------------------


def test_cgdcont_lines_of_real_modems() -> None:
    contexts = parse_cgdcont(
        [
            '+CGDCONT: 1,"IPV4V6","","0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0",0,0,0,0',  # Quectel RM551E
            '+CGDCONT: 15,"IP","telstra.bigpond","0.0.0.0",0,0',  # Sierra MC7xxx
            '+CGDCONT: 5,"IP","everywhere","0.0.0.0",0,0,0,0',
        ]
    )
    assert [(c.cid, c.pdp_type, c.apn) for c in contexts] == [
        (1, "IPV4V6", ""),
        (15, "IP", "telstra.bigpond"),
        (5, "IP", "everywhere"),
    ]
    assert parse_cgact(["+CGACT: 1,1", "+CGACT: 2,0"]) == {1: True, 2: False}


def test_activated_apn_is_the_same_apn() -> None:
    # docs/lab.md: an activated APN can read back with the operator identifier appended.
    assert network_identifier("ijmio.jp.mnc010.mcc440.gprs") == "ijmio.jp"
    assert apn_matches("ijmio.jp", "IJMIO.JP.MNC010.MCC440.GPRS")
    assert not apn_matches("ijmio.jp", "ijmio.jp.example")
    assert not apn_matches("ijmio.jp", "")


@pytest.mark.parametrize(
    ("dialect", "lines", "cid", "auth", "user", "password", "apn"),
    [
        (
            "generic",
            ["+CGAUTH: 1,0", '+CGAUTH: 5,1,"eesecure"'],
            5,
            Auth.PAP,
            "eesecure",
            None,
            None,
        ),
        ("generic", ['+CGAUTH: 1,2,"sora","sora"'], 1, Auth.CHAP, "sora", "sora", None),
        (
            "sierra",
            ['$QCPDPP: 1,1,"login@bigpond.com"', "$QCPDPP: 2,0"],
            1,
            Auth.PAP,
            "login@bigpond.com",
            None,
            None,
        ),
        ("sierra", ['$QCPDPP: 1,3,"user_id"'], 1, Auth.PAP_OR_CHAP, "user_id", None, None),
        ("quectel", ['+QICSGP: 3,"cmnet","","",0'], 1, Auth.NONE, "", "", "cmnet"),
        ("huawei", ['^AUTHDATA: 1,0,"",""'], 1, Auth.NONE, "", "", None),
    ],
)
def test_credential_read_backs(
    dialect: str,
    lines: list[str],
    cid: int,
    auth: Auth,
    user: str,
    password: str | None,
    apn: str | None,
) -> None:
    reading = parse_auth_readback(DIALECTS[dialect].auth, lines, cid)
    assert reading is not None
    assert (reading.auth, reading.user, reading.password, reading.apn) == (
        auth,
        user,
        password,
        apn,
    )


def test_credential_read_back_for_an_absent_context() -> None:
    assert parse_auth_readback(DIALECTS["sierra"].auth, ["$QCPDPP: 2,0"], 1) is None


# --- property tests: any text gives a result or a ModemError, nothing else -------------------

LineParser = Callable[[Sequence[str]], object]
LINE_PARSERS: list[tuple[str, LineParser]] = [
    ("+CSQ:", parse_csq),
    ("+CESQ:", parse_cesq),
    ("+COPS:", parse_cops),
    ("+CPIN:", parse_cpin),
    ("+CSIM:", parse_csim),
    ("+CRSM:", parse_crsm),
    ("+CGDCONT:", parse_cgdcont),
    ("+CGACT:", parse_cgact),
    ("", parse_imei),
    ("", parse_imsi),
    ("", parse_text_answer),
    ("+QCCID:", lambda ls: parse_iccid(ls, "+QCCID:")),
]


def _retries_parser(kind: RetryKind, prefix: str) -> LineParser:
    def parse(lines: Sequence[str]) -> object:
        return parse_retries(kind, lines, prefix, pin_state="SIM PIN")

    return parse


def _auth_parser(spec: AuthSpec) -> LineParser:
    def parse(lines: Sequence[str]) -> object:
        return parse_auth_readback(spec, lines, 1)

    return parse


RETRY_PREFIXES: tuple[tuple[RetryKind, str], ...] = (
    ("qpinc", "+QPINC:"),
    ("spic", "+SPIC:"),
    ("upincnt", "+UPINCNT:"),
    ("xpincnt", "+XPINCNT:"),
    ("hcpin", "^CPIN:"),
    ("cpinr", "+CPINR:"),
    ("pct", "#PCT:"),
)
LINE_PARSERS += [(prefix, _retries_parser(kind, prefix)) for kind, prefix in RETRY_PREFIXES]
LINE_PARSERS += [(d.auth.read_prefix, _auth_parser(d.auth)) for d in DIALECTS.values()]

_payload = st.text(alphabet=st.sampled_from('0123456789,"ABCFabcxyz:.+- \t^$#'), max_size=40)


@pytest.mark.parametrize(
    ("prefix", "parser"),
    LINE_PARSERS,
    ids=[f"{p or 'bare'}-{i}" for i, (p, _) in enumerate(LINE_PARSERS)],
)
@settings(max_examples=120, deadline=None)
@given(payloads=st.lists(_payload, max_size=3), noise=st.lists(st.text(max_size=30), max_size=2))
def test_parsers_never_leak(
    prefix: str, parser: LineParser, payloads: list[str], noise: list[str]
) -> None:
    lines = [f"{prefix} {payload}" for payload in payloads] + noise
    with contextlib.suppress(ModemError):
        parser(lines)


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from(["+CREG:", "+CGREG:", "+CEREG:", "+C5GREG:"]),
    payload=_payload,
    solicited=st.sampled_from([None, True, False]),
)
def test_registration_never_leaks(prefix: str, payload: str, solicited: bool | None) -> None:
    try:
        report = parse_registration(f"{prefix} {payload}", solicited=solicited)
    except ModemError:
        return
    assert 0 <= report.stat <= 11


@given(st.text(max_size=40))
def test_iccid_normalizer_never_leaks(text: str) -> None:
    try:
        reading = normalize_iccid(text)
    except ModemError:
        return
    assert reading.iccid.isdigit() and 18 <= len(reading.iccid) <= 20
