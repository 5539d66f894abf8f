"""Answer to reset (ISO/IEC 7816-3 §8) and the pcsc-tools card name list.

The ATRs are real cards listed in pcsc-tools' smartcard_list.txt; their fields
were decoded by hand from ISO/IEC 7816-3 Tables 7-8 and §8.2-8.3.
"""

from __future__ import annotations

import random
import re
import statistics
import time
import warnings
from functools import reduce
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.atr import (
    DEFAULT_SMARTCARD_LIST,
    Atr,
    AtrNameList,
    HistoricalObject,
    InterfaceGroup,
    parse_atr,
    parse_atr_hex,
)
from apdu.errors import ParseError

H = bytes.fromhex

# An LTE USIM (GREEN CARD / Celcom in the list). TCK by hand: the XOR of T0 ..
# the last historical byte (9F 95 80 1F C3 80 31 E0 73 FE 21 13 57 86 81 02 86
# 98 44 18) is A8, so T0..TCK XOR to 00.
SIM = "3B 9F 95 80 1F C3 80 31 E0 73 FE 21 13 57 86 81 02 86 98 44 18 A8"
YUBIKEY = "3B F8 13 00 00 81 31 FE 15 59 75 62 69 6B 65 79 34 D4"
COSMO = "3B DB 96 00 80 B1 FE 45 1F 83 00 31 C0 64 C7 FC 10 00 01 90 00 74"
GPK8000 = "3B A7 00 40 18 80 65 A2 08 01 01 52"
SESAM_VITALE = "3F 65 25 00 2C 09 69 90 00"


def _xor(data: bytes) -> int:
    return reduce(lambda a, b: a ^ b, data, 0)


def test_sim_atr() -> None:
    atr = parse_atr_hex(SIM)
    assert atr.findings == []
    assert atr.ok
    assert (atr.ts, atr.t0) == ("direct", 0x9F)
    assert atr.interface_bytes == [
        InterfaceGroup(1, ta=0x95, td=0x80),
        InterfaceGroup(2, td=0x1F, applies_to=0),
        InterfaceGroup(3, ta=0xC3, applies_to=15),
    ]
    assert [g.protocol for g in atr.interface_bytes] == [0, 15, None]
    assert atr.protocols == [0]
    # TA1 95: Fi 512 (f max 5 MHz), Di 16.
    assert (atr.fi, atr.di, atr.f_max, atr.cycles_per_etu) == (512, 16, 5.0, 32.0)
    assert (atr.extra_guard_time, atr.work_waiting_integer) == (0, 10)
    # TA3 C3 for T=15: clock stop "no preference" (11), classes A and B.
    assert atr.clock_stop == "no preference"
    assert atr.class_indicator == ["A", "B"]
    assert atr.voltages == [5.0, 3.0]
    assert atr.t1_ifsc is None
    assert atr.historical_bytes == H("80 31 E0 73 FE 21 13 57 86 81 02 86 98 44 18")
    assert atr.historical is not None
    assert atr.historical.category == 0x80
    assert atr.historical.objects == [
        HistoricalObject(0x3, H("E0"), "card service data"),
        HistoricalObject(0x7, H("FE 21 13"), "card capabilities"),
        HistoricalObject(0x5, H("86 81 02 86 98 44 18"), "card issuer data"),
    ]
    assert atr.historical.status_indicator is None
    assert (atr.tck, atr.tck_valid) == (0xA8, True)
    assert _xor(H(SIM)[1:]) == 0
    assert atr.hex() == SIM


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            YUBIKEY,
            {
                "protocols": [1],
                "fi": 372,
                "di": 4,
                "f_max": 5.0,
                "extra_guard_time": 0,
                "t1_ifsc": 0xFE,
                "t1_bwi": 1,
                "t1_cwi": 5,
                "t1_error_detection": "LRC",
                "historical_bytes": b"Yubikey4",
                "tck": 0xD4,
                "tck_valid": True,
                "clock_stop": None,
            },
        ),
        (
            COSMO,
            {
                "protocols": [0, 1],
                "fi": 512,
                "di": 32,
                "t1_ifsc": 0xFE,
                "t1_bwi": 4,
                "t1_cwi": 5,
                "clock_stop": "high",
                "class_indicator": ["A", "B"],
                "tck": 0x74,
                "tck_valid": True,
            },
        ),
        (
            GPK8000,
            {
                "protocols": [0],
                "fi": 372,
                "di": 1,
                "work_waiting_integer": 0x18,
                "tck": None,
                "tck_valid": None,
                "t1_ifsc": None,
            },
        ),
        (
            SESAM_VITALE,
            {
                "ts": "inverse",
                "protocols": [0],
                "extra_guard_time": 0,
                "historical_bytes": H("2C 09 69 90 00"),
            },
        ),
        (
            "3B 00",
            {
                "protocols": [0],
                "interface_bytes": [InterfaceGroup(1)],
                "historical_bytes": b"",
                "historical": None,
                "tck": None,
            },
        ),
    ],
)
def test_real_atrs(text: str, expected: dict[str, Any]) -> None:
    atr = parse_atr_hex(text)
    assert atr.ok, atr.findings
    for name, value in expected.items():
        assert getattr(atr, name) == value, name


def test_historical_categories() -> None:
    cosmo = parse_atr_hex(COSMO).historical
    assert cosmo is not None
    assert cosmo.category == 0x00
    assert cosmo.status_indicator == H("01 90 00")
    assert [o.name for o in cosmo.objects] == ["card service data", "pre-issuing data"]
    gpk = parse_atr_hex(GPK8000).historical
    assert gpk is not None
    assert gpk.find(0x6) == HistoricalObject(0x6, H("A2 08 01 01 52"), "pre-issuing data")
    assert gpk.find(0x7) is None
    status = parse_atr_hex("3B 05 80 31 C0 81 05").historical
    assert status is not None
    assert status.status_indicator == H("05")
    dir_reference = parse_atr_hex("3B 02 10 7F").historical
    assert dir_reference is not None
    assert dir_reference.dir_data_reference == 0x7F
    yubikey = parse_atr_hex(YUBIKEY).historical
    assert yubikey is not None
    assert (yubikey.category, yubikey.proprietary) == (0x59, b"ubikey4")
    proprietary = parse_atr_hex("3B 02 F1 01").historical
    assert proprietary is not None
    assert (proprietary.category, proprietary.proprietary) == (0xF1, b"\x01")
    assert proprietary.objects == []


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("", ["empty"]),
        ("3A 00", ["bad-ts"]),
        ("03 00", ["bad-ts"]),
        ("3B", ["missing-t0"]),
        ("3B 9F 95", ["truncated-interface"]),
        ("3B 9F 95 80 1F", ["truncated-interface"]),
        ("3B 05 80 31", ["missing-historical"]),
        (SIM[:-3], ["missing-tck"]),
        (SIM[:-2] + "A9", ["wrong-tck"]),
        (SIM + " 00", ["extra-bytes"]),
        ("3B 01 41 41", ["extra-bytes"]),
        ("3B 01 41 40", ["tck-not-allowed"]),
        ("3B 8F" + " 80" * 20 + " 00" + " 41" * 15, ["too-long"]),
        ("3B 10 71", ["rfu-ta1"]),
        ("3B 80 0F 8F", ["t15-in-td1"]),
        ("3B 80 40 00", ["reserved-tc2"]),
        ("3B 80 81 11 00 10", ["bad-ifsc"]),
        ("3B 02 00 01", ["historical-malformed"]),
        ("3B 03 80 35 00", ["historical-malformed"]),
        ("3B 02 10 01 02", ["extra-bytes"]),
        ("3B 03 10 01", ["missing-historical"]),
        ("3B 03 10 01 02", ["historical-malformed"]),
        ("3B 02 81 00", ["historical-rfu"]),
        ("3B 40 FF", ["minimum-guard-time"]),
        ("3B 20 25", ["deprecated-tb1"]),
        ("3A 9F 95", ["bad-ts", "truncated-interface"]),
    ],
)
def test_malformed_atr_findings(text: str, codes: list[str]) -> None:
    atr = parse_atr_hex(text)
    assert atr.finding_codes() == codes
    assert all(f.message for f in atr.findings)
    assert atr.raw == H(text)


def test_severities() -> None:
    assert not parse_atr(b"").ok
    assert not parse_atr_hex(SIM[:-2] + "A9").ok
    assert parse_atr_hex(SIM + " 00").ok  # extra bytes: a warning
    assert parse_atr_hex("3B 20 25").findings[0].severity == "info"


def test_rfu_ta1_leaves_unknown_values() -> None:
    atr = parse_atr_hex("3B 10 70")
    assert (atr.fi, atr.di, atr.f_max, atr.cycles_per_etu) == (None, None, None, None)


def test_wrong_tck_message_gives_expected_value() -> None:
    atr = parse_atr_hex(SIM[:-2] + "A9")
    assert atr.tck == 0xA9
    assert atr.tck_valid is False
    assert "A8" in atr.findings[0].message


@pytest.mark.parametrize(
    "text", [SIM.lower().replace(" ", ""), SIM.replace(" ", ":"), "  " + SIM + "\n"]
)
def test_parse_atr_hex_spellings(text: str) -> None:
    assert parse_atr_hex(text).raw == H(SIM)


@pytest.mark.parametrize("text", ["3B 9G", "3B9", "ATR"])
def test_parse_atr_hex_rejects_bad_hex(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_atr_hex(text)
    assert info.value.data == text


@pytest.mark.parametrize(
    ("text", "digits"), [("3B9F9", 5), ("3B 9F 9", 5), ("3", 1), ("3B:9F:95:8", 7)]
)
def test_parse_atr_hex_odd_length_says_so(text: str, digits: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_atr_hex(text)
    message = str(info.value)
    assert f"ATR hex has an odd number of digits ({digits})" in message
    assert "fromhex" not in message


@pytest.mark.parametrize(
    ("text", "culprit", "offset"),
    [
        ("xyz", "'x'", 0),
        ("3B 9G", "'G'", 4),
        ("0x3B9F", "'x'", 1),
        ("3B\u00e99F", "'\u00e9'", 2),
        ("3B-9F", "'-'", 2),
    ],
)
def test_parse_atr_hex_names_the_character_that_is_not_hex(
    text: str, culprit: str, offset: int
) -> None:
    with pytest.raises(ParseError) as info:
        parse_atr_hex(text)
    message = str(info.value)
    assert f"not hexadecimal: {text!r}" in message
    assert f"{culprit} at position {offset + 1} is not a hex digit" in message
    assert "fromhex" not in message
    assert info.value.offset == offset


@given(st.text(max_size=80))
def test_parse_atr_hex_gives_an_atr_or_a_parse_error(text: str) -> None:
    try:
        atr = parse_atr_hex(text)
    except ParseError as exc:
        assert exc.data == text
    else:
        assert atr.hex().replace(" ", "") == re.sub(r"[\s:]", "", text).upper()


# --- properties ------------------------------------------------------------


@given(st.binary(max_size=40))
def test_parse_atr_never_raises(data: bytes) -> None:
    atr = parse_atr(data)
    assert isinstance(atr, Atr)
    assert atr.raw == data
    codes = atr.finding_codes()
    assert (atr.tck_valid is False) == ("wrong-tck" in codes)
    if atr.tck_valid and "extra-bytes" not in codes:
        assert _xor(data[1:]) == 0


@given(st.binary(min_size=1, max_size=40))
def test_parse_atr_never_raises_with_good_ts(tail: bytes) -> None:
    atr = parse_atr(b"\x3b" + tail)
    assert atr.ts == "direct"
    assert "bad-ts" not in atr.finding_codes()


_optional_byte = st.none() | st.integers(0, 255)
_group = st.tuples(_optional_byte, _optional_byte, _optional_byte)
Group = tuple[int | None, int | None, int | None]


def _build_atr(groups: list[tuple[Group, int | None]], historical: bytes) -> bytes:
    """An ATR from interface groups ((TA, TB, TC), T announced by TD or None) and history."""
    presence = []
    for index, ((ta, tb, tc), _) in enumerate(groups):
        y = sum(bit for bit, value in ((1, ta), (2, tb), (4, tc)) if value is not None)
        presence.append(y | (8 if index + 1 < len(groups) else 0))
    raw = bytearray((0x3B, presence[0] << 4 | len(historical)))
    for index, ((ta, tb, tc), protocol) in enumerate(groups):
        raw += bytes(v for v in (ta, tb, tc) if v is not None)
        if protocol is not None:
            raw.append(presence[index + 1] << 4 | protocol)
    raw += historical
    if any(p not in (None, 0) for _, p in groups):
        raw.append(_xor(bytes(raw[1:])))
    return bytes(raw)


@given(st.lists(st.tuples(_group, st.integers(0, 14)), max_size=4), _group, st.binary(max_size=15))
def test_well_formed_atrs_parse_back(
    chained: list[tuple[Group, int]], last: Group, historical: bytes
) -> None:
    groups: list[tuple[Group, int | None]] = [*chained, (last, None)]
    atr = parse_atr(_build_atr(groups, historical))
    assert not any(f.severity == "error" for f in atr.findings), atr.findings
    assert atr.historical_bytes == historical
    assert [(g.ta, g.tb, g.tc) for g in atr.interface_bytes] == [g for g, _ in groups]
    assert [g.protocol for g in atr.interface_bytes] == [p for _, p in groups]
    announced = {p for _, p in chained}
    assert atr.protocols == (sorted(announced - {15}) or [0])
    assert atr.tck_valid is (True if announced - {0} else None)


# --- card names ------------------------------------------------------------


def test_names_from_installed_list() -> None:
    names = AtrNameList.load()
    assert len(names) > 3000
    assert names.skipped == 0
    assert names.names(H(SIM)) == [
        "GREEN CARD, Grcard (Hong Kong ) Co.,Limited, LTE Usim Card (Telecommunication)",
        "Celcom Postpaid 3G (Telecommunication)",
    ]
    assert names.names(H(YUBIKEY)) == ["Yubico Yubikey 4 OTP+CCID"]
    # Matched through the regular expression 3F 65 25 00 2[2C] 09 [F6]9 90 00.
    assert "Sesam Vitale (French health card)" in names.names(H(SESAM_VITALE))
    assert names.names(H("3B 00 11 22 33")) == []
    assert names.names(b"") == []


def test_load_is_cached_and_missing_file_is_empty(tmp_path: Path) -> None:
    assert AtrNameList.load() is AtrNameList.load(DEFAULT_SMARTCARD_LIST)
    missing = AtrNameList.load(tmp_path / "nope.txt")
    assert len(missing) == 0
    assert missing.names(H(SIM)) == []
    assert len(AtrNameList.load(tmp_path)) == 0  # a directory is unreadable as a list


def test_list_format_and_regular_expressions(tmp_path: Path) -> None:
    text = (
        "# comment\n"
        "\n"
        "3B 9F 95 80 1F C3 80 31 E0 73 FE 21 13 .. .. .. .. .. .. .. .. ..\n"
        "\tSome USIM\n"
        "\thttp://example.invalid\n"
        "\n"
        "3B 9F 9[56] 80 1F C3 80 31 E0 73 FE 21 13 57 86 81 02 86 98 44 18 A8\n"
        "\tExact USIM\n"
        "\n"
        "3b 02 14 50|3B 9F .*\n"
        "\tAlternation, lower case\n"
        "\n"
        "3B ( 00\n"
        "\tNot a valid Python expression\n"
        "\n"
        "3B 02 14 50\n"
        "\tUnrelated\n"
    )
    path = tmp_path / "smartcard_list.txt"
    path.write_text(text)
    names = AtrNameList.load(path)
    assert len(names) == 4
    assert names.skipped == 1
    assert names.names(H(SIM)) == [
        "Some USIM",
        "http://example.invalid",
        "Exact USIM",
        "Alternation, lower case",
    ]
    assert names.names(H("3B 02 14 50")) == ["Alternation, lower case", "Unrelated"]
    # A pattern must match the whole ATR, not a prefix of it.
    assert names.names(H("3B 02 14 50 00")) == []


def _full_scan(text: str) -> list[tuple[re.Pattern[str], list[str]]]:
    """Every pattern of a list, compiled, in file order: what a lookup must agree with."""
    listed: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("\t"):
            if listed:
                listed[-1][1].append(line.strip())
        elif line.strip():
            listed.append((line.rstrip(), []))
    compiled = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for pattern, names in listed:
            try:
                compiled.append((re.compile(pattern, re.IGNORECASE), names))
            except re.error:
                continue
    return compiled


def _sample_atrs(text: str, count: int, seed: int) -> list[bytes]:
    """ATRs of the list: patterns made of hex bytes and '..' with the wildcards filled in."""
    rng = random.Random(seed)
    simple = [
        line.rstrip().split(" ")
        for line in text.splitlines()
        if line[:1] not in ("#", "\t", "")
        and line.strip()
        and all(re.fullmatch(r"[0-9A-Fa-f]{2}|\.\.", t) for t in line.rstrip().split(" "))
    ]
    atrs = []
    for tokens in rng.sample(simple, count):
        atrs.append(bytes(rng.randrange(256) if t == ".." else int(t, 16) for t in tokens))
    return atrs


def test_lazy_lookup_equals_a_full_scan() -> None:
    text = DEFAULT_SMARTCARD_LIST.read_text(encoding="utf-8", errors="replace")
    scan = _full_scan(text)
    names = AtrNameList.from_text(text)
    atrs = _sample_atrs(text, 200, seed=2024)
    # Near misses as well: one more byte, one byte less, the last byte changed.
    atrs += [atr + b"\x00" for atr in atrs[:30]] + [atr[:-1] for atr in atrs[30:60]]
    atrs += [atr[:-1] + bytes([atr[-1] ^ 0x01]) for atr in atrs[60:90]]
    atrs += [H(SIM), H(YUBIKEY), H(COSMO), H(SESAM_VITALE), H("3B 00 11 22 33"), b"", H("3B")]
    matched = 0
    for atr in atrs:
        atr_text = " ".join(f"{b:02X}" for b in atr)
        expected = [n for regex, found in scan if regex.fullmatch(atr_text) for n in found]
        assert names.names(atr) == expected, atr_text
        matched += bool(expected)
    assert matched >= 200  # the sample really hits the list


def test_reading_the_list_compiles_no_pattern(monkeypatch: pytest.MonkeyPatch) -> None:
    text = DEFAULT_SMARTCARD_LIST.read_text(encoding="utf-8", errors="replace")
    compiled: list[str] = []
    real_compile = re.compile

    def counting_compile(pattern: Any, flags: Any = 0) -> Any:
        compiled.append(pattern)
        return real_compile(pattern, flags)

    monkeypatch.setattr(re, "compile", counting_compile)
    names = AtrNameList.from_text(text)
    assert compiled == []
    assert names.pattern_count > 3000
    assert names.names(H(SIM))[0].startswith("GREEN CARD")
    # Only the patterns filed under the ATR's first bytes (3B, 3B 9F, ...) are compiled.
    assert 0 < len(compiled) < 300
    assert names.compiled_count == len(compiled)
    names.names(H(SIM))
    assert names.compiled_count == len(compiled), "compiled patterns are kept"


def test_lookup_is_fast() -> None:
    names = AtrNameList.load()
    atrs = [H(SIM), H(YUBIKEY), H(COSMO), H("3B 00 11 22 33"), H(SESAM_VITALE)]
    timings = []
    for _ in range(20):
        for atr in atrs:
            start = time.perf_counter()
            names.names(atr)
            timings.append(time.perf_counter() - start)
    assert statistics.median(timings) < 0.020
