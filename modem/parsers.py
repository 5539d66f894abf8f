"""Parsers for AT answer lines: text in, dataclasses out.

Every function here takes the lines a modem sent and returns a value or raises
:class:`~modem.errors.AtParseError`; nothing else escapes (no IndexError, no
ValueError), whatever the input. Field layouts follow 3GPP TS 27.007 unless a
vendor is named; the clause is given at each parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from apdu.files import luhn_valid
from modem.dialects import Auth, AuthSpec, RetryKind
from modem.errors import AtParseError

# --------------------------------------------------------------------------
# Fields


@dataclass(frozen=True, slots=True)
class Field:
    """One comma-separated parameter: its text and whether it was quoted."""

    text: str
    quoted: bool

    @property
    def empty(self) -> bool:
        """An omitted parameter (``,,``)."""
        return not self.quoted and self.text == ""


def split_fields(payload: str) -> list[Field]:
    """Split ``a,"b,c",3`` into fields; quotes protect commas (V.250 strings).

    Blanks around a field are not part of it: many modems put one after each
    comma (``+CGDCONT: 1, "IP", "internet"``), and a blank before the opening
    quote would otherwise end up in the string. An unterminated quote raises
    AtParseError.
    """
    fields: list[Field] = []
    current: list[str] = []
    quoted = False
    in_quotes = False
    for char in payload:
        if in_quotes:
            if char == '"':
                in_quotes = False
            else:
                current.append(char)
        elif char == '"' and not quoted and not "".join(current).strip():
            in_quotes = True
            quoted = True
            current = []
        elif char == ",":
            fields.append(
                Field("".join(current).strip() if not quoted else "".join(current), quoted)
            )
            current, quoted = [], False
        elif quoted:
            if not char.isspace():
                raise AtParseError(f"text after a closing quote in {payload!r}", line=payload)
        else:
            current.append(char)
    if in_quotes:
        raise AtParseError(f"unterminated quote in {payload!r}", line=payload)
    fields.append(Field("".join(current).strip() if not quoted else "".join(current), quoted))
    return fields


def payload_of(line: str, prefix: str) -> str:
    """The part after ``prefix`` (case-insensitive), stripped."""
    if not line.upper().startswith(prefix.upper()):
        raise AtParseError(f"expected {prefix} in {line!r}", line=line)
    return line[len(prefix) :].strip()


_DECIMAL = re.compile(r"-?[0-9]{1,12}")
_HEXADECIMAL = re.compile(r"[0-9A-Fa-f]{1,12}")


def _int(value: Field | str, what: str, line: str, *, base: int = 10) -> int:
    text = value.text if isinstance(value, Field) else value
    text = text.strip()
    # ASCII digits only: int() also takes "1_000" and digits of other scripts,
    # str.isdigit() takes "²", which int() refuses.
    pattern = _HEXADECIMAL if base == 16 else _DECIMAL
    if not pattern.fullmatch(text):
        raise AtParseError(f"{what} {text[:20]!r} is not a number in {line!r}", line=line)
    return int(text, base)


def _opt_int(fields: Sequence[Field], index: int, what: str, line: str) -> int | None:
    if index >= len(fields) or fields[index].empty:
        return None
    return _int(fields[index], what, line)


def _opt_str(fields: Sequence[Field], index: int) -> str | None:
    if index >= len(fields) or fields[index].empty:
        return None
    return fields[index].text


def find_line(lines: Iterable[str], prefix: str) -> str:
    """The first line starting with ``prefix``; AtParseError if there is none."""
    for line in lines:
        if line.upper().startswith(prefix.upper()):
            return line
    raise AtParseError(f"no {prefix} line in the answer", line=None)


# --------------------------------------------------------------------------
# Identity (TS 27.007 clause 5: +CGMI, +CGMM, +CGMR, +CGSN)

_IDENTITY_PREFIXES = (
    "+CGMI:",
    "+CGMM:",
    "+CGMR:",
    "+GMI:",
    "+GMM:",
    "+GMR:",
    "MANUFACTURER:",
    "MODEL:",
    "REVISION:",
)


def parse_text_answer(lines: Sequence[str]) -> str:
    """A free-text answer (``+CGMI``, ``+CGMM``, ``+CGMR``): one line, prefix dropped.

    Several lines are joined with a space; an empty answer raises AtParseError.
    """
    parts: list[str] = []
    for line in lines:
        text = line.strip()
        for prefix in _IDENTITY_PREFIXES:
            if text.upper().startswith(prefix):
                text = text[len(prefix) :].strip()
                break
        text = text.strip('"').strip()
        if text:
            parts.append(text)
    if not parts:
        raise AtParseError("empty answer where text was expected")
    return " ".join(parts)


def parse_imei(lines: Sequence[str]) -> str:
    """The IMEI from ``AT+CGSN`` (bare digits, or ``+CGSN: "<imei>"``).

    TS 23.003 clause 6.2: 15 digits (14 + Luhn check digit) or an IMEISV of 16.
    Some firmware follows the IMEI with a serial number on the same line
    (``866758041234567 SN:E1A2B3``, ``"866758041234567","E1A2B3"``): the
    IMEI is the leading run of digits; an ``IMEI:`` label (as in ``ATI``
    answers) is dropped.
    """
    for line in lines:
        text = line.strip()
        for prefix in ("+CGSN:", "+GSN:", "IMEI:", "IMEI"):
            if text.upper().startswith(prefix):
                text = text[len(prefix) :].strip()
                break
        match = _IMEI.match(text)
        if match is not None:
            return match.group(1)
    raise AtParseError(f"no IMEI in the answer {list(lines)!r}"[:200])


_IMEI = re.compile(r'"?([0-9]{14,16})"?(?:[\s,;/]+\S.*)?$')


def parse_imsi(lines: Sequence[str]) -> str:
    """The IMSI from ``AT+CIMI``: 6 to 15 digits (TS 23.003 clause 2.2)."""
    for line in lines:
        text = line.strip()
        if text.upper().startswith("+CIMI:"):
            text = text[6:].strip()
        text = text.strip('"')
        if text.isascii() and text.isdigit() and 6 <= len(text) <= 15:
            return text
    raise AtParseError(f"no IMSI in the answer {list(lines)!r}"[:200])


# --------------------------------------------------------------------------
# ICCID (vendor commands, ITU-T E.118)


@dataclass(frozen=True, slots=True)
class IccidReading:
    """An ICCID as a modem reported it, normalized.

    ``raw`` is the text as received; ``swapped`` says the modem gave the
    nibble-swapped file bytes (``98...``) and they were put back in order.
    """

    iccid: str
    luhn_ok: bool
    raw: str
    swapped: bool = False


def normalize_iccid(text: str) -> IccidReading:
    """Clean one ICCID text: quotes, a trailing ``F`` filler, a swapped order.

    ICCIDs are 18 to 20 characters beginning ``89`` (E.118, the
    telecommunication industry identifier). Sierra's ``!ICCID?`` pads a
    19-digit ICCID with ``F``; some firmware prints the raw EF.ICCID nibbles,
    which start ``98`` and read in order once each pair is swapped. Some
    operators' ICCIDs hold hex digits (``A``-``E``) in the issuer part: they
    are accepted (their Luhn check is then reported as failed, it is only
    defined on digits).
    """
    raw = text.strip().strip('"').strip()
    value = raw.upper()
    swapped = False
    if value.startswith("98") and len(value) == 20 and _ICCID_TEXT.fullmatch(value):
        value = "".join(value[i + 1] + value[i] for i in range(0, len(value), 2))
        swapped = True
    # The padding is at the end only, and never eats into the 18 characters
    # of the shortest ICCID.
    while len(value) > 18 and value.endswith("F"):
        value = value[:-1]
    if not (_ICCID_TEXT.fullmatch(value) and 18 <= len(value) <= 20 and value.startswith("89")):
        raise AtParseError(f"{raw[:40]!r} is not an ICCID", line=text)
    return IccidReading(value, luhn_valid(value), raw, swapped)


_ICCID_TEXT = re.compile(r"[0-9A-F]+")


def iccid_from_file(data: bytes) -> IccidReading:
    """The ICCID in EF.ICCID's bytes (swapped nibbles, ``F`` padding), hex digits kept."""
    if len(data) != 10:
        raise AtParseError(f"EF.ICCID is 10 bytes, got {len(data)}", line=data.hex())
    text = data.hex().upper()
    swapped = "".join(text[i + 1] + text[i] for i in range(0, len(text), 2))
    reading = normalize_iccid(swapped)
    return IccidReading(reading.iccid, reading.luhn_ok, text, True)


def parse_iccid(lines: Sequence[str], prefix: str | None = None) -> IccidReading:
    """The ICCID from a vendor answer, with or without its prefix.

    Accepts ``+QCCID: 8981...``, ``ICCID: "8981..."``, ``^ICCID: 8981...`` and a
    bare line of digits.
    """
    prefixes = [
        p
        for p in (
            prefix,
            "+CCID:",
            "+ICCID:",
            "+QCCID:",
            "ICCID:",
            "^ICCID:",
            "#CCID:",
            "^SCID:",
            "+CICCID:",
        )
        if p
    ]
    for line in lines:
        text = line.strip()
        for candidate in prefixes:
            if text.upper().startswith(candidate.upper()):
                text = text[len(candidate) :].strip()
                break
        try:
            return normalize_iccid(text)
        except AtParseError:
            continue
    raise AtParseError(f"no ICCID in the answer {list(lines)!r}"[:200])


# --------------------------------------------------------------------------
# PIN state (TS 27.007 clause 8.3) and retry counters

PIN_CODES = (
    "READY",
    "SIM PIN",
    "SIM PUK",
    "SIM PIN2",
    "SIM PUK2",
    "PH-SIM PIN",
    "PH-FSIM PIN",
    "PH-FSIM PUK",
    "PH-NET PIN",
    "PH-NET PUK",
    "PH-NETSUB PIN",
    "PH-NETSUB PUK",
    "PH-SP PIN",
    "PH-SP PUK",
    "PH-CORP PIN",
    "PH-CORP PUK",
)


def parse_cpin(lines: Sequence[str]) -> str:
    """``+CPIN: <code>``; returns the code (``READY``, ``SIM PIN``, ...)."""
    line = find_line(lines, "+CPIN:")
    code = payload_of(line, "+CPIN:").strip('"').strip().upper()
    if code not in PIN_CODES:
        raise AtParseError(f"unknown +CPIN code {code!r}", line=line)
    return code


@dataclass(frozen=True, slots=True)
class PinRetries:
    """Attempts left for each code (``None`` where the source did not say)."""

    pin1: int | None = None
    puk1: int | None = None
    pin2: int | None = None
    puk2: int | None = None
    source: str = ""


def _counter(value: Field, line: str) -> int | None:
    if value.empty:
        return None
    number = _int(value, "counter", line)
    if not 0 <= number <= 255:
        raise AtParseError(f"counter {number} out of range in {line!r}", line=line)
    return number


def parse_retries(
    kind: RetryKind, lines: Sequence[str], prefix: str, *, pin_state: str | None = None
) -> PinRetries:
    """Decode a vendor PIN-counter answer (the layouts are in :mod:`modem.dialects`).

    ``pin_state`` is the ``+CPIN?`` code, needed for Telit's ``#PCT`` which only
    counts the code the SIM is asking for now.
    """
    source = prefix.rstrip(":")
    if kind == "cpinr":
        values: dict[str, int | None] = {}
        for line in lines:
            if not line.upper().startswith("+CPINR:"):
                continue
            fields = split_fields(payload_of(line, "+CPINR:"))
            if len(fields) < 2:
                raise AtParseError(f"+CPINR needs a code and a counter: {line!r}", line=line)
            values[fields[0].text.strip().upper()] = _counter(fields[1], line)
        if not values:
            raise AtParseError("no +CPINR line in the answer")
        return PinRetries(
            pin1=values.get("SIM PIN"),
            puk1=values.get("SIM PUK"),
            pin2=values.get("SIM PIN2"),
            puk2=values.get("SIM PUK2"),
            source=source,
        )
    line = find_line(lines, prefix)
    fields = split_fields(payload_of(line, prefix))

    def need(count: int) -> None:
        if len(fields) < count:
            raise AtParseError(f"{prefix} needs {count} fields: {line!r}", line=line)

    if kind == "qpinc":
        need(3)
        if fields[0].text.upper() != "SC":
            raise AtParseError(f"+QPINC for {fields[0].text!r}, not SC: {line!r}", line=line)
        return PinRetries(
            pin1=_counter(fields[1], line), puk1=_counter(fields[2], line), source=source
        )
    if kind == "spic":
        need(4)
        return PinRetries(
            pin1=_counter(fields[0], line),
            puk1=_counter(fields[1], line),
            pin2=_counter(fields[2], line),
            puk2=_counter(fields[3], line),
            source=source,
        )
    if kind in ("upincnt", "xpincnt"):
        need(4)
        return PinRetries(
            pin1=_counter(fields[0], line),
            pin2=_counter(fields[1], line),
            puk1=_counter(fields[2], line),
            puk2=_counter(fields[3], line),
            source=source,
        )
    if kind == "hcpin":
        need(6)
        return PinRetries(
            puk1=_counter(fields[2], line),
            pin1=_counter(fields[3], line),
            puk2=_counter(fields[4], line),
            pin2=_counter(fields[5], line),
            source=source,
        )
    if kind == "pct":
        need(1)
        count = _counter(fields[0], line)
        if pin_state == "SIM PIN":
            return PinRetries(pin1=count, source=source)
        if pin_state == "SIM PUK":
            return PinRetries(puk1=count, source=source)
        return PinRetries(source=source)
    raise AtParseError(f"unknown retry layout {kind!r}")


# --------------------------------------------------------------------------
# Registration (TS 27.007 clauses 7.2 +CREG, 10.1.20 +CGREG, 10.1.22 +CEREG,
# 10.1.42 +C5GREG)

REGISTRATION_PREFIXES = ("+CREG:", "+CGREG:", "+CEREG:", "+C5GREG:")

REG_STATES = {
    0: "not registered, not searching",
    1: "registered, home network",
    2: "not registered, searching",
    3: "registration denied",
    4: "unknown",
    5: "registered, roaming",
    6: "registered for SMS only, home network",
    7: "registered for SMS only, roaming",
    8: "attached for emergency bearer services only",
    9: "registered for CSFB not preferred, home network",
    10: "registered for CSFB not preferred, roaming",
    11: "attached for access to RLOS",
}

ACCESS_TECHNOLOGIES = {
    0: "GSM",
    1: "GSM Compact",
    2: "UTRAN",
    3: "GSM w/EGPRS",
    4: "UTRAN w/HSDPA",
    5: "UTRAN w/HSUPA",
    6: "UTRAN w/HSDPA and HSUPA",
    7: "E-UTRAN",
    8: "EC-GSM-IoT",
    9: "E-UTRAN (NB-S1)",
    10: "E-UTRA connected to 5GCN",
    11: "NR connected to 5GCN",
    12: "NG-RAN",
    13: "E-UTRA-NR dual connectivity",
    14: "satellite E-UTRAN (NB-S1 mode)",
    15: "satellite E-UTRAN (WB-S1 mode)",
    16: "satellite NG-RAN",
}
ACT_MAX = max(ACCESS_TECHNOLOGIES)


@dataclass(frozen=True, slots=True)
class Registration:
    """One registration report, solicited (``n`` set) or unsolicited (``n`` None).

    ``area`` is the LAC (+CREG/+CGREG) or TAC (+CEREG/+C5GREG) as hex text.
    """

    kind: str
    stat: int
    n: int | None = None
    area: str | None = None
    cell: str | None = None
    act: int | None = None

    @property
    def registered(self) -> bool:
        """Home or roaming registration (SMS-only and CSFB variants included)."""
        return self.stat in (1, 5, 6, 7, 9, 10)

    @property
    def roaming(self) -> bool:
        """Registered on a visited network."""
        return self.stat in (5, 7, 10)

    @property
    def state(self) -> str:
        """The stat value in words."""
        return REG_STATES.get(self.stat, f"stat {self.stat}")

    @property
    def technology(self) -> str | None:
        """The access technology in words, when reported."""
        return None if self.act is None else ACCESS_TECHNOLOGIES.get(self.act, str(self.act))


def registration_prefix(line: str) -> str | None:
    """Which registration prefix ``line`` starts with, if any."""
    upper = line.upper()
    for prefix in REGISTRATION_PREFIXES:
        if upper.startswith(prefix):
            return prefix
    return None


def is_solicited_registration(line: str) -> bool:
    """True for the read-command form ``+CxREG: <n>,<stat>[,...]``.

    The unsolicited form starts with ``<stat>`` and, when more follows, the
    next field is a LAC/TAC (quoted per 27.007; some firmware leaves the
    quotes out, ``+CREG: 1,0426,F00F,7``); the solicited form always has
    ``<n>`` and then ``<stat>`` (one or two digits each). An area code has
    four hex digits or more, which tells them apart.
    """
    prefix = registration_prefix(line)
    if prefix is None:
        return False
    try:
        fields = split_fields(payload_of(line, prefix))
    except AtParseError:
        return False
    if len(fields) < 2 or fields[0].quoted or fields[1].quoted:
        return False
    first, second = fields[0].text, fields[1].text
    return _SMALL.fullmatch(first) is not None and _SMALL.fullmatch(second) is not None


_SMALL = re.compile(r"[0-9]{1,2}")


def parse_registration(line: str, *, solicited: bool | None = None) -> Registration:
    """Decode one ``+CREG/+CGREG/+CEREG/+C5GREG`` line.

    ``solicited=None`` decides from the line itself (see
    :func:`is_solicited_registration`).
    """
    prefix = registration_prefix(line)
    if prefix is None:
        raise AtParseError(f"not a registration line: {line!r}", line=line)
    if solicited is None:
        solicited = is_solicited_registration(line)
    fields = split_fields(payload_of(line, prefix))
    start = 1 if solicited else 0
    if len(fields) <= start or fields[start].empty:
        raise AtParseError(f"registration line without <stat>: {line!r}", line=line)
    n = _int(fields[0], "<n>", line) if solicited else None
    stat = _int(fields[start], "<stat>", line)
    if not 0 <= stat <= 11:
        raise AtParseError(f"<stat> {stat} out of range in {line!r}", line=line)
    if n is not None and not 0 <= n <= 5:
        raise AtParseError(f"<n> {n} out of range in {line!r}", line=line)
    area = _opt_str(fields, start + 1)
    cell = _opt_str(fields, start + 2)
    act = _opt_int(fields, start + 3, "<AcT>", line)
    if act is not None and not 0 <= act <= ACT_MAX:
        # A value out of range means the layout is not the one assumed (a
        # vendor's extra field): refusing beats returning shifted fields.
        raise AtParseError(f"<AcT> {act} out of range in {line!r}", line=line)
    for value, what in ((area, "area code"), (cell, "cell id")):
        if value is not None and not re.fullmatch(r"(0[xX])?[0-9A-Fa-f]{1,16}", value):
            raise AtParseError(f"{what} {value!r} is not hex in {line!r}", line=line)
    area = area[2:] if area and area[:2] in ("0x", "0X") else area
    cell = cell[2:] if cell and cell[:2] in ("0x", "0X") else cell
    return Registration(
        prefix[1:-1], stat, n, area.upper() if area else None, cell.upper() if cell else None, act
    )


# --------------------------------------------------------------------------
# Signal (TS 27.007 clauses 8.5 +CSQ and 8.69 +CESQ)


@dataclass(frozen=True, slots=True)
class Signal:
    """Signal figures; a value the modem reported as unknown is ``None``.

    ``rssi_dbm`` from +CSQ (0 is -113 dBm or less, 31 is -51 dBm or more, in
    2 dB steps); ``rsrp_dbm``/``rsrq_db`` are the lower bounds of the +CESQ
    ranges (rsrp 0 is below -140 dBm, 97 is -44 dBm or more; rsrq 0 is below
    -19.5 dB, 34 is -3 dB or more, in 0.5 dB steps). The other ``+CESQ``
    figures are lower bounds too: ``rxlev_dbm`` (GSM), ``rscp_dbm`` and
    ``ecno_db`` (UTRAN), and the NR figures ``ss_rsrq_db``, ``ss_rsrp_dbm``,
    ``ss_sinr_db`` that Release 15 appended. ``sinr_db`` comes from Huawei's
    ``^HCSQ``; ``mode`` names the radio the figures are for when the source
    says (``LTE``, ``WCDMA``, ``GSM``).
    """

    rssi: int | None = None
    ber: int | None = None
    rssi_dbm: int | None = None
    rsrq_db: float | None = None
    rsrp_dbm: int | None = None
    rxlev_dbm: int | None = None
    rscp_dbm: int | None = None
    ecno_db: float | None = None
    ss_rsrq_db: float | None = None
    ss_rsrp_dbm: int | None = None
    ss_sinr_db: float | None = None
    sinr_db: float | None = None
    mode: str | None = None


def parse_csq(lines: Sequence[str]) -> Signal:
    """``+CSQ: <rssi>,<ber>`` (99 means unknown for both)."""
    line = find_line(lines, "+CSQ:")
    fields = split_fields(payload_of(line, "+CSQ:"))
    if len(fields) < 2:
        raise AtParseError(f"+CSQ needs <rssi>,<ber>: {line!r}", line=line)
    rssi = _int(fields[0], "<rssi>", line)
    ber = _int(fields[1], "<ber>", line)
    if not (0 <= rssi <= 31 or rssi == 99 or 100 <= rssi <= 191 or rssi == 199):
        raise AtParseError(f"<rssi> {rssi} out of range in {line!r}", line=line)
    if not (0 <= ber <= 7 or ber == 99):
        raise AtParseError(f"<ber> {ber} out of range in {line!r}", line=line)
    dbm = -113 + 2 * rssi if 0 <= rssi <= 31 else None
    return Signal(rssi=None if rssi == 99 else rssi, ber=None if ber == 99 else ber, rssi_dbm=dbm)


# +CESQ fields (TS 27.007 clause 8.69): name, highest value, the "unknown"
# value; 0 means "below the lowest step", which has no lower bound.
_CESQ_FIELDS = (
    ("rxlev", 63, 99),
    ("ber", 7, 99),
    ("rscp", 96, 255),
    ("ecno", 49, 255),
    ("rsrq", 34, 255),
    ("rsrp", 97, 255),
    ("ss_rsrq", 127, 255),
    ("ss_rsrp", 127, 255),
    ("ss_sinr", 127, 255),
)


def parse_cesq(lines: Sequence[str]) -> Signal:
    """``+CESQ: <rxlev>,<ber>,<rscp>,<ecno>,<rsrq>,<rsrp>[,<ss_rsrq>,<ss_rsrp>,<ss_sinr>]``.

    Every figure is decoded to the lower bound of its step (TS 27.007 clause
    8.69, TS 45.008 / 25.133 / 36.133 / 38.133 mappings); the unknown value
    (99 or 255) and the open-ended step 0 give ``None``.
    """
    line = find_line(lines, "+CESQ:")
    fields = split_fields(payload_of(line, "+CESQ:"))
    if len(fields) < 6:
        raise AtParseError(f"+CESQ needs six fields: {line!r}", line=line)
    raw: dict[str, int | None] = {}
    for (name, highest, unknown), value in zip(_CESQ_FIELDS, fields, strict=False):
        if value.empty:
            raw[name] = None
            continue
        number = _int(value, f"<{name}>", line)
        if not (0 <= number <= highest or number == unknown):
            raise AtParseError(f"+CESQ <{name}> {number} out of range in {line!r}", line=line)
        raw[name] = None if number == unknown else number

    def step(name: str, base: float, size: float) -> float | None:
        value = raw.get(name)
        return None if value is None or value == 0 else round(base + value * size, 2)

    def whole(value: float | None) -> int | None:
        return None if value is None else int(value)

    return Signal(
        ber=raw["ber"],
        rxlev_dbm=whole(step("rxlev", -111, 1)),
        rscp_dbm=whole(step("rscp", -121, 1)),
        ecno_db=step("ecno", -24.5, 0.5),
        rsrq_db=step("rsrq", -20.0, 0.5),
        rsrp_dbm=whole(step("rsrp", -141, 1)),
        ss_rsrq_db=step("ss_rsrq", -43.5, 0.5),
        ss_rsrp_dbm=whole(step("ss_rsrp", -157, 1)),
        ss_sinr_db=step("ss_sinr", -23.5, 0.5),
    )


def parse_hcsq(lines: Sequence[str]) -> Signal:
    """Huawei ``^HCSQ: <sysmode>[,<value1>[,<value2>[,<value3>[,<value4>]]]]``.

    From the Huawei LTE module AT manual: ``"LTE",<rssi>,<rsrp>,<sinr>,<rsrq>``,
    ``"WCDMA",<rssi>,<rscp>,<ecio>``, ``"GSM",<rssi>``; ``"NOSERVICE"`` carries
    no figure and 255 means unknown. Step 0 is "below the scale", step 1 starts
    at: rssi and rscp -120 dBm (1 dB steps), rsrp -140 dBm (1 dB), sinr -20 dB
    (0.2 dB), rsrq -19.5 dB (0.5 dB), ecio -32 dB (0.5 dB); the lower bound of
    the step is returned.
    """
    line = find_line(lines, "^HCSQ:")
    fields = split_fields(payload_of(line, "^HCSQ:"))
    mode = fields[0].text.strip().upper()
    values: list[int | None] = []
    for value in fields[1:5]:
        number = None if value.empty else _int(value, "^HCSQ value", line)
        if number is not None and not 0 <= number <= 255:
            raise AtParseError(f"^HCSQ value {number} out of range in {line!r}", line=line)
        values.append(None if number in (None, 255) else number)
    values += [None] * (4 - len(values))

    def scaled(value: int | None, base: float, size: float) -> float | None:
        return None if value is None or value == 0 else round(base + value * size, 2)

    def whole(value: float | None) -> int | None:
        return None if value is None else int(value)

    if mode == "LTE":
        return Signal(
            rssi_dbm=whole(scaled(values[0], -121, 1)),
            rsrp_dbm=whole(scaled(values[1], -141, 1)),
            sinr_db=scaled(values[2], -20.2, 0.2),
            rsrq_db=scaled(values[3], -20.0, 0.5),
            mode=mode,
        )
    if mode in ("WCDMA", "TD-SCDMA"):
        return Signal(
            rssi_dbm=whole(scaled(values[0], -121, 1)),
            rscp_dbm=whole(scaled(values[1], -121, 1)),
            ecno_db=scaled(values[2], -32.5, 0.5),
            mode=mode,
        )
    if mode == "GSM":
        return Signal(rssi_dbm=whole(scaled(values[0], -121, 1)), mode=mode)
    if mode in ("NOSERVICE", "NO SERVICE", "CDMA", "EVDO", "CDMA-EVDO"):
        return Signal(mode=mode)
    raise AtParseError(f"unknown ^HCSQ system mode {mode!r} in {line!r}", line=line)


# --------------------------------------------------------------------------
# Operator (TS 27.007 clause 7.3 +COPS)


@dataclass(frozen=True, slots=True)
class Operator:
    """``+COPS?``: selection mode, and the operator when registered."""

    mode: int
    format: int | None = None
    name: str | None = None
    act: int | None = None

    @property
    def technology(self) -> str | None:
        """The access technology in words."""
        return None if self.act is None else ACCESS_TECHNOLOGIES.get(self.act, str(self.act))


def parse_cops(lines: Sequence[str]) -> Operator:
    """``+COPS: <mode>[,<format>,<oper>[,<AcT>]]``."""
    line = find_line(lines, "+COPS:")
    fields = split_fields(payload_of(line, "+COPS:"))
    mode = _int(fields[0], "<mode>", line)
    if not 0 <= mode <= 4:
        raise AtParseError(f"+COPS <mode> {mode} out of range in {line!r}", line=line)
    fmt = _opt_int(fields, 1, "<format>", line)
    if fmt is not None and not 0 <= fmt <= 3:
        raise AtParseError(f"+COPS <format> {fmt} out of range in {line!r}", line=line)
    return Operator(mode, fmt, _opt_str(fields, 2), _opt_int(fields, 3, "<AcT>", line))


@dataclass(frozen=True, slots=True)
class NetworkOperator:
    """One network of an operator scan (``AT+COPS=?``)."""

    status: int
    long_name: str | None
    short_name: str | None
    numeric: str | None
    act: int | None = None

    @property
    def state(self) -> str:
        """The status in words (TS 27.007 clause 7.3)."""
        return {0: "unknown", 1: "available", 2: "current", 3: "forbidden"}.get(
            self.status, f"status {self.status}"
        )


_TUPLE = re.compile(r'\(((?:[^()"]|"[^"]*")*)\)')


def decode_ucs2(text: str) -> str | None:
    """``text`` as UCS2 hex (``+CSCS="UCS2"``: 4 hex digits per character), or ``None``.

    Only text that is all hex, a multiple of 4 long and decodes to printable
    characters counts as UCS2.
    """
    if not text or len(text) % 4 or not re.fullmatch(r"[0-9A-Fa-f]+", text):
        return None
    try:
        decoded = bytes.fromhex(text).decode("utf-16-be")
    except UnicodeDecodeError:
        return None
    return decoded if decoded.isprintable() else None


def parse_cops_list(lines: Sequence[str], *, ucs2: bool | None = None) -> list[NetworkOperator]:
    """``+COPS: (<stat>,"<long>","<short>","<numeric>"[,<AcT>]),...,,(modes),(formats)``.

    TS 27.007 clause 7.3. Names in UCS2 hex (``+CSCS="UCS2"``) are decoded:
    ``ucs2=None`` decodes a name only when it reads as UCS2 (a numeric PLMN
    never does: it has 5 or 6 digits); ``True`` requires it, ``False`` never
    decodes.
    """
    networks: list[NetworkOperator] = []
    for line in lines:
        if not line.upper().startswith("+COPS:"):
            continue
        payload = payload_of(line, "+COPS:")
        for match in _TUPLE.finditer(payload):
            inner = match.group(1)
            fields = split_fields(inner)
            if len(fields) < 4 or not fields[1].quoted:
                continue  # the trailing (0-4),(0-2) ranges, not a network
            status = _int(fields[0], "<stat>", line)
            if not 0 <= status <= 3:
                raise AtParseError(f"+COPS <stat> {status} out of range in {line!r}", line=line)
            names: list[str | None] = []
            for value in fields[1:3]:
                text = None if value.empty else value.text
                if text is not None and ucs2 is not False:
                    decoded = decode_ucs2(text)
                    if decoded is None and ucs2:
                        raise AtParseError(f"{text!r} is not UCS2 in {line!r}", line=line)
                    text = decoded if decoded is not None else text
                names.append(text)
            numeric = _opt_str(fields, 3)
            if numeric is not None and not re.fullmatch(r"[0-9]{5,6}", numeric):
                decoded = decode_ucs2(numeric) if ucs2 is not False else None
                if decoded is None or not re.fullmatch(r"[0-9]{5,6}", decoded):
                    raise AtParseError(f"PLMN {numeric!r} is not 5 or 6 digits", line=line)
                numeric = decoded
            act = _opt_int(fields, 4, "<AcT>", line)
            if act is not None and not 0 <= act <= ACT_MAX:
                raise AtParseError(f"+COPS <AcT> {act} out of range in {line!r}", line=line)
            networks.append(NetworkOperator(status, names[0], names[1], numeric, act))
    return networks


# --------------------------------------------------------------------------
# PDP contexts (TS 27.007 clause 10.1.1 +CGDCONT, 10.1.10 +CGACT)


@dataclass(frozen=True, slots=True)
class PdpContext:
    """One ``+CGDCONT?`` line: context id, PDP type and APN as read back."""

    cid: int
    pdp_type: str
    apn: str


def parse_cgdcont(lines: Sequence[str]) -> list[PdpContext]:
    """All ``+CGDCONT: <cid>,<PDP_type>,<APN>[,...]`` lines of an answer."""
    contexts: list[PdpContext] = []
    for line in lines:
        if not line.upper().startswith("+CGDCONT:"):
            continue
        fields = split_fields(payload_of(line, "+CGDCONT:"))
        if len(fields) < 2:
            raise AtParseError(f"+CGDCONT needs <cid>,<PDP_type>: {line!r}", line=line)
        cid = _int(fields[0], "<cid>", line)
        apn = fields[2].text if len(fields) > 2 else ""
        contexts.append(PdpContext(cid, fields[1].text.upper(), apn))
    return contexts


def parse_cgact(lines: Sequence[str]) -> dict[int, bool]:
    """``+CGACT: <cid>,<state>`` lines as {cid: active}."""
    states: dict[int, bool] = {}
    for line in lines:
        if not line.upper().startswith("+CGACT:"):
            continue
        fields = split_fields(payload_of(line, "+CGACT:"))
        if len(fields) < 2:
            raise AtParseError(f"+CGACT needs <cid>,<state>: {line!r}", line=line)
        states[_int(fields[0], "<cid>", line)] = _int(fields[1], "<state>", line) == 1
    return states


_OPERATOR_ID = re.compile(r"\.mnc[0-9]{3}\.mcc[0-9]{3}\.gprs$", re.IGNORECASE)


def network_identifier(apn: str) -> str:
    """The APN without an operator identifier (TS 23.003 clause 9.1.2).

    An activated context can read back as ``ijmio.jp.mnc010.mcc440.gprs``;
    the network identifier ``ijmio.jp`` is what was configured. APN labels are
    case-insensitive, so the result is lower case.
    """
    return _OPERATOR_ID.sub("", apn.strip()).lower()


def apn_matches(wanted: str, read_back: str) -> bool:
    """Same APN, ignoring case and an operator identifier appended to the read-back.

    Only the read-back loses its operator identifier: the modem appends it
    after activation; an APN the operator configured *with* one is compared
    whole.
    """
    return wanted.strip().lower() == network_identifier(read_back)


# --------------------------------------------------------------------------
# Credentials read back through a dialect's read form


@dataclass(frozen=True, slots=True)
class AuthReading:
    """Credentials of one context as the modem read them back.

    ``None`` means the field is not in the answer: not readable, which is
    never a match. ``password`` never leaves this module except for comparison
    (callers compare and drop it).
    """

    cid: int
    auth_code: int | None
    auth: Auth | None
    user: str | None
    password: str | None = field(default=None, repr=False)
    apn: str | None = None
    ctx_type: int | None = None


def _named_int(values: Mapping[str, Field], name: str, line: str) -> int | None:
    value = values.get(name)
    return None if value is None or value.empty else _int(value, f"<{name}>", line)


def _named_text(values: Mapping[str, Field], name: str) -> str | None:
    value = values.get(name)
    return None if value is None else value.text


def parse_auth_readback(spec: AuthSpec, lines: Sequence[str], cid: int) -> AuthReading | None:
    """Decode the dialect's credential read-back for context ``cid``.

    Returns ``None`` when no line concerns ``cid`` (nothing configured there).
    Fields past the end of a line are "not readable" (``None``).
    """
    per_context = "{cid}" in spec.read_command
    for line in lines:
        if not line.upper().startswith(spec.read_prefix.upper()):
            continue
        fields = split_fields(payload_of(line, spec.read_prefix))
        values: dict[str, Field] = dict(zip(spec.read_order, fields, strict=False))
        if not per_context and ("cid" not in values or _int(values["cid"], "<cid>", line) != cid):
            continue
        auth_code = _named_int(values, "auth", line)
        return AuthReading(
            cid=cid,
            auth_code=auth_code,
            auth=None if auth_code is None else spec.auth_for(auth_code),
            user=_named_text(values, "user"),
            password=_named_text(values, "password"),
            apn=_named_text(values, "apn"),
            ctx_type=_named_int(values, "ctx_type", line),
        )
    return None


# --------------------------------------------------------------------------
# SIM access (TS 27.007 clauses 8.17 +CSIM and 8.18 +CRSM)


def _hex(text: str, what: str, line: str) -> bytes:
    if len(text) % 2 or not re.fullmatch(r"[0-9A-Fa-f]*", text):
        raise AtParseError(f"{what} is not hex in {line!r}", line=line)
    return bytes.fromhex(text)


def parse_csim(lines: Sequence[str]) -> bytes:
    """``+CSIM: <length>,"<response>"``; <length> counts hex characters."""
    line = find_line(lines, "+CSIM:")
    fields = split_fields(payload_of(line, "+CSIM:"))
    if len(fields) < 2:
        raise AtParseError(f"+CSIM needs <length>,<response>: {line!r}", line=line)
    length = _int(fields[0], "<length>", line)
    data = _hex(fields[1].text, "+CSIM response", line)
    if length != len(fields[1].text):
        raise AtParseError(
            f"+CSIM length {length} does not match {len(fields[1].text)} "
            f"hex characters in {line!r}",
            line=line,
        )
    if len(data) < 2:
        raise AtParseError(f"+CSIM response without a status word: {line!r}", line=line)
    return data


@dataclass(frozen=True, slots=True)
class CrsmResponse:
    """``+CRSM: <sw1>,<sw2>[,<response>]``."""

    sw1: int
    sw2: int
    data: bytes

    @property
    def sw(self) -> int:
        """SW1 SW2 as one number."""
        return (self.sw1 << 8) | self.sw2


def parse_crsm(lines: Sequence[str]) -> CrsmResponse:
    """Decode a restricted SIM access answer."""
    line = find_line(lines, "+CRSM:")
    fields = split_fields(payload_of(line, "+CRSM:"))
    if len(fields) < 2:
        raise AtParseError(f"+CRSM needs <sw1>,<sw2>: {line!r}", line=line)
    sw1, sw2 = _int(fields[0], "<sw1>", line), _int(fields[1], "<sw2>", line)
    if not (0 <= sw1 <= 255 and 0 <= sw2 <= 255):
        raise AtParseError(f"+CRSM status bytes out of range in {line!r}", line=line)
    data = _hex(fields[2].text, "+CRSM response", line) if len(fields) > 2 else b""
    return CrsmResponse(sw1, sw2, data)


def parse_cfun(lines: Sequence[str]) -> int:
    """``+CFUN: <fun>`` (TS 27.007 clause 8.2)."""
    line = find_line(lines, "+CFUN:")
    fields = split_fields(payload_of(line, "+CFUN:"))
    return _int(fields[0], "<fun>", line)


def prefix_of(command: str) -> str | None:
    """The answer prefix a command's information lines carry, if any.

    ``AT+CGDCONT?`` -> ``+CGDCONT:``, ``AT^ICCID?`` -> ``^ICCID:``,
    ``AT$QCPDPP?`` -> ``$QCPDPP:``; basic commands (``ATE0``, ``ATI``) have none.
    """
    text = command.strip()
    if text.upper().startswith("AT"):
        text = text[2:]
    match = re.match(r"([+^$#%!*][A-Za-z0-9_]+)", text)
    return f"{match.group(1).upper()}:" if match else None


# --------------------------------------------------------------------------
# Dynamic parameters of an active context (TS 27.007 clause 10.1.23)


@dataclass(frozen=True, slots=True)
class ContextAddress:
    """What the network gave an active context: addresses and name servers."""

    cid: int
    bearer: int | None
    apn: str | None
    ipv4: str | None = None
    ipv4_mask: str | None = None
    ipv6: str | None = None
    gateway: str | None = None
    dns: tuple[str, ...] = ()


def _address(text: str) -> tuple[str | None, str | None, str | None]:
    """(IPv4, IPv4 mask, IPv6) from one 27.007 address field.

    The field is dotted decimal: 4 numbers (an IPv4 address), 8 (address and
    mask), 16 (an IPv6 address), 32 (IPv6 address and mask); with
    ``AT+CGPIAF`` the IPv6 forms are colon-separated hex. An empty or all-zero
    field is "none".
    """
    text = text.strip()
    if not text:
        return None, None, None
    if ":" in text:
        import ipaddress

        address = text.split(" ")[0].split("/")[0]
        try:
            return None, None, str(ipaddress.IPv6Address(address))
        except ValueError:
            raise AtParseError(f"{text!r} is not an IPv6 address", line=text) from None
    parts = text.split(".")
    if not all(re.fullmatch(r"[0-9]{1,3}", part) for part in parts) or any(
        int(part) > 255 for part in parts
    ):
        raise AtParseError(f"{text!r} is not a dotted address", line=text)
    numbers = [int(part) for part in parts]
    if len(numbers) in (4, 8):
        address = ".".join(str(n) for n in numbers[:4])
        mask = ".".join(str(n) for n in numbers[4:]) if len(numbers) == 8 else None
        return (None if address == "0.0.0.0" else address), mask, None
    if len(numbers) in (16, 32):
        import ipaddress

        value = ipaddress.IPv6Address(bytes(numbers[:16]))
        return None, None, None if value == ipaddress.IPv6Address(0) else str(value)
    raise AtParseError(f"{text!r} has {len(numbers)} numbers, not an address", line=text)


def parse_cgcontrdp(lines: Sequence[str], cid: int | None = None) -> list[ContextAddress]:
    """``+CGCONTRDP: <cid>,<bearer_id>,<apn>[,<local_addr and subnet_mask>[,<gw_addr>
    [,<DNS_prim_addr>[,<DNS_sec_addr>...]]]]``, one line per address type.

    Lines of one context (an IPv4v6 context has an IPv4 and an IPv6 line) are
    merged; ``cid`` keeps only that context.
    """
    merged: dict[int, ContextAddress] = {}
    for line in lines:
        if not line.upper().startswith("+CGCONTRDP:"):
            continue
        fields = split_fields(payload_of(line, "+CGCONTRDP:"))
        if len(fields) < 3:
            raise AtParseError(f"+CGCONTRDP needs <cid>,<bearer_id>,<apn>: {line!r}", line=line)
        number = _int(fields[0], "<cid>", line)
        if cid is not None and number != cid:
            continue
        bearer = _opt_int(fields, 1, "<bearer_id>", line)
        apn = _opt_str(fields, 2)
        ipv4, mask, ipv6 = _address(fields[3].text) if len(fields) > 3 else (None, None, None)
        gateway_v4, _, gateway_v6 = (
            _address(fields[4].text) if len(fields) > 4 else (None, None, None)
        )
        dns: list[str] = []
        for value in fields[5:7]:
            v4, _, v6 = _address(value.text)
            dns += [a for a in (v4, v6) if a]
        before = merged.get(number)
        if before is None:
            merged[number] = ContextAddress(
                number, bearer, apn, ipv4, mask, ipv6, gateway_v4 or gateway_v6, tuple(dns)
            )
        else:
            merged[number] = ContextAddress(
                number,
                before.bearer if before.bearer is not None else bearer,
                before.apn or apn,
                before.ipv4 or ipv4,
                before.ipv4_mask or mask,
                before.ipv6 or ipv6,
                before.gateway or gateway_v4 or gateway_v6,
                tuple(dict.fromkeys(before.dns + tuple(dns))),
            )
    return list(merged.values())


def parse_cgpaddr(lines: Sequence[str], cid: int | None = None) -> dict[int, tuple[str, ...]]:
    """``+CGPADDR: <cid>[,<PDP_addr_1>[,<PDP_addr_2>]]`` (TS 27.007 clause 10.1.14)."""
    result: dict[int, tuple[str, ...]] = {}
    for line in lines:
        if not line.upper().startswith("+CGPADDR:"):
            continue
        fields = split_fields(payload_of(line, "+CGPADDR:"))
        number = _int(fields[0], "<cid>", line)
        if cid is not None and number != cid:
            continue
        addresses: list[str] = []
        for value in fields[1:3]:
            v4, _, v6 = _address(value.text)
            addresses += [a for a in (v4, v6) if a]
        result[number] = tuple(addresses)
    return result


# --------------------------------------------------------------------------
# Why the last activation failed (TS 27.007 clause 6.10 +CEER)

_CAUSE_NUMBER = re.compile(r"(?:cause|#)\s*[:=]?\s*([0-9]{1,3})", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """``+CEER: <report>``: the text, and the ESM/SM cause when one is named."""

    text: str
    cause: int | None


def parse_ceer(lines: Sequence[str]) -> ErrorReport:
    """Decode ``+CEER`` (free text by 27.007, vendors add a cause number or name).

    Seen layouts: ``+CEER: <text>``, ``+CEER: "<category>",<cause>`` (a number
    after a category), ``+CEER: ... cause: 29`` / ``#29``, and a cause named
    in words (``user authentication failed``). The ESM cause numbers are those
    of TS 24.301 clause 9.9.4.4.
    """
    from modem.codes import ESM_CAUSES

    line = find_line(lines, "+CEER:")
    text = payload_of(line, "+CEER:")
    cause: int | None = None
    match = _CAUSE_NUMBER.search(text)
    if match is not None:
        cause = int(match.group(1))
    else:
        try:
            fields = split_fields(text)
        except AtParseError:
            fields = []
        for value in fields:
            if not value.quoted and _SMALL.fullmatch(value.text.strip()):
                cause = int(value.text)
        if cause is None:
            lowered = re.sub(r"[\s_]+", " ", text.lower())
            for number, words in ESM_CAUSES.items():
                if words.lower() in lowered:
                    cause = number
                    break
    return ErrorReport(text.strip().strip('"'), cause)


# --------------------------------------------------------------------------
# SIM status (Telit #QSS; vendor SIM-status unsolicited lines)


@dataclass(frozen=True, slots=True)
class SimStatus:
    """A SIM status report: inserted or not, ready or not (``None``: not said)."""

    source: str
    inserted: bool | None
    ready: bool | None
    detail: str


_QSS = {
    0: (False, False, "SIM not inserted"),
    1: (True, False, "SIM inserted"),
    2: (True, True, "SIM inserted and PIN unlocked"),
    3: (True, True, "SIM inserted and ready (SMS and phonebook read)"),
}
_SIMST = {
    0: (True, False, "invalid SIM"),
    1: (True, True, "valid SIM"),
    2: (True, False, "SIM invalid for CS"),
    3: (True, False, "SIM invalid for PS"),
    4: (True, False, "SIM invalid for CS and PS"),
    240: (True, True, "ROM SIM"),
    255: (False, False, "no SIM"),
}
_UUSIMSTAT = {
    0: (False, False, "SIM not present"),
    1: (True, False, "PIN needed"),
    2: (True, False, "PIN blocked"),
    3: (True, False, "PUK blocked"),
    4: (True, False, "SIM not operational"),
    5: (True, False, "SIM in restricted use (FDN)"),
    6: (True, True, "SIM operational"),
    7: (True, True, "SIM phonebook ready"),
    8: (True, True, "USIM phonebook ready"),
    9: (True, True, "SIM toolkit REFRESH proactive command successfully concluded"),
    10: (True, False, "SIM toolkit REFRESH proactive command unsuccessfully concluded"),
    11: (True, False, "PPP connection active, SIM not operational"),
    12: (True, True, "voice call active"),
}


def parse_sim_status(line: str) -> SimStatus | None:
    """A SIM status line of any vendor, or ``None`` when ``line`` is not one.

    Telit ``#QSS: [<mode>,]<status>`` (0 not inserted, 1 inserted, 2 PIN
    unlocked, 3 ready); Huawei ``^SIMST: <state>[,<lock>]``; u-blox
    ``+UUSIMSTAT: <state>``; Quectel ``+QSIMSTAT: [<enable>,]<inserted>`` and
    ``+QUSIM: <type>``; SIMCom ``+SIMCARD: NOT AVAILABLE``; and the 27.007
    ``+CPIN: <code>`` sent unsolicited at start-up. Never raises.
    """
    text = line.strip()
    upper = text.upper()
    try:
        if upper.startswith("#QSS:"):
            fields = split_fields(payload_of(text, "#QSS:"))
            status = _int(fields[-1], "<status>", text)
            inserted, ready, detail = _QSS.get(status, (None, None, f"status {status}"))
            return SimStatus("#QSS", inserted, ready, detail)
        if upper.startswith("^SIMST:"):
            fields = split_fields(payload_of(text, "^SIMST:"))
            state = _int(fields[0], "<sim_state>", text)
            inserted, ready, detail = _SIMST.get(state, (None, None, f"state {state}"))
            return SimStatus("^SIMST", inserted, ready, detail)
        if upper.startswith("+UUSIMSTAT:"):
            fields = split_fields(payload_of(text, "+UUSIMSTAT:"))
            state = _int(fields[0], "<state>", text)
            inserted, ready, detail = _UUSIMSTAT.get(state, (None, None, f"state {state}"))
            return SimStatus("+UUSIMSTAT", inserted, ready, detail)
        if upper.startswith("+QSIMSTAT:"):
            fields = split_fields(payload_of(text, "+QSIMSTAT:"))
            state = _int(fields[-1], "<inserted_status>", text)
            if state == 2:
                return SimStatus("+QSIMSTAT", None, None, "SIM status unknown")
            present = state == 1
            return SimStatus(
                "+QSIMSTAT", present, None, "SIM inserted" if present else "SIM removed"
            )
        if upper.startswith("+QUSIM:"):
            kind = _int(split_fields(payload_of(text, "+QUSIM:"))[0], "<type>", text)
            return SimStatus("+QUSIM", True, None, "USIM" if kind == 1 else "SIM")
        if upper.startswith("+SIMCARD:"):
            available = "NOT AVAILABLE" not in upper
            return SimStatus("+SIMCARD", available, None, payload_of(text, "+SIMCARD:"))
        if upper.startswith("+CPIN:"):
            code = payload_of(text, "+CPIN:").strip('"').strip().upper()
            if code == "NOT INSERTED":
                return SimStatus("+CPIN", False, False, "SIM not inserted")
            if code == "NOT READY":
                return SimStatus("+CPIN", None, False, "SIM not ready")
            if code in PIN_CODES:
                return SimStatus("+CPIN", True, code == "READY", code)
            return None
    except (AtParseError, IndexError):
        return None
    return None


def parse_qss(lines: Sequence[str]) -> SimStatus:
    """Telit ``AT#QSS?`` answer ``#QSS: <mode>,<status>``."""
    status = parse_sim_status(find_line(lines, "#QSS:"))
    if status is None:
        raise AtParseError(f"no #QSS status in {list(lines)!r}"[:200])
    return status
