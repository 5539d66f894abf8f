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

    An unterminated quote raises AtParseError.
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
        elif char == '"':
            in_quotes = True
            quoted = True
        elif char == ",":
            fields.append(
                Field("".join(current).strip() if not quoted else "".join(current), quoted)
            )
            current, quoted = [], False
        elif quoted and not char.isspace():
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


def _int(value: Field | str, what: str, line: str, *, base: int = 10) -> int:
    text = value.text if isinstance(value, Field) else value
    text = text.strip()
    if not text or len(text) > 12:
        raise AtParseError(f"{what} missing or too long in {line!r}", line=line)
    try:
        return int(text, base)
    except ValueError:
        raise AtParseError(f"{what} {text!r} is not a number in {line!r}", line=line) from None


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
    """
    for line in lines:
        text = line.strip()
        if text.upper().startswith("+CGSN:"):
            text = text[6:].strip()
        text = text.strip('"')
        if text.isdigit() and len(text) in (14, 15, 16) and text.isascii():
            return text
    raise AtParseError(f"no IMEI in the answer {list(lines)!r}"[:200])


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

    ICCIDs are 18 to 20 digits beginning ``89`` (E.118). Sierra's ``!ICCID?``
    pads a 19-digit ICCID with ``F``; some firmware prints the raw EF.ICCID
    nibbles, which start ``98`` and read in order once each pair is swapped.
    """
    raw = text.strip().strip('"').strip()
    value = raw.upper()
    swapped = False
    if value.startswith("98") and len(value) % 2 == 0 and all(c in "0123456789F" for c in value):
        value = "".join(value[i + 1] + value[i] for i in range(0, len(value), 2))
        swapped = True
    value = value.rstrip("F")
    if not (value.isascii() and value.isdigit() and 18 <= len(value) <= 20):
        raise AtParseError(f"{raw!r} is not an ICCID", line=text)
    return IccidReading(value, luhn_valid(value), raw, swapped)


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
}


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
    next field is a quoted LAC/TAC; the solicited form always has ``<n>`` and
    then an unquoted ``<stat>``. That second field tells them apart.
    """
    prefix = registration_prefix(line)
    if prefix is None:
        return False
    try:
        fields = split_fields(payload_of(line, prefix))
    except AtParseError:
        return False
    return len(fields) >= 2 and not fields[1].quoted and fields[1].text.isdigit()


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
    area = _opt_str(fields, start + 1)
    cell = _opt_str(fields, start + 2)
    act = _opt_int(fields, start + 3, "<AcT>", line)
    for value, what in ((area, "area code"), (cell, "cell id")):
        if value is not None and not re.fullmatch(r"[0-9A-Fa-f]{1,16}", value):
            raise AtParseError(f"{what} {value!r} is not hex in {line!r}", line=line)
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
    -19.5 dB, 34 is -3 dB or more, in 0.5 dB steps).
    """

    rssi: int | None = None
    ber: int | None = None
    rssi_dbm: int | None = None
    rsrq_db: float | None = None
    rsrp_dbm: int | None = None


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


def parse_cesq(lines: Sequence[str]) -> Signal:
    """``+CESQ: <rxlev>,<ber>,<rscp>,<ecno>,<rsrq>,<rsrp>`` (255 means unknown)."""
    line = find_line(lines, "+CESQ:")
    fields = split_fields(payload_of(line, "+CESQ:"))
    if len(fields) < 6:
        raise AtParseError(f"+CESQ needs six fields: {line!r}", line=line)
    values = [_int(f, "+CESQ field", line) for f in fields[:6]]
    rsrq, rsrp = values[4], values[5]
    if not (0 <= rsrq <= 34 or rsrq == 255) or not (0 <= rsrp <= 97 or rsrp == 255):
        raise AtParseError(f"+CESQ values out of range in {line!r}", line=line)
    return Signal(
        rsrq_db=None if rsrq in (0, 255) else -20.0 + rsrq / 2,
        rsrp_dbm=None if rsrp in (0, 255) else -141 + rsrp,
    )


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
    """Same APN, ignoring case and an appended operator identifier."""
    return network_identifier(wanted) == network_identifier(read_back)


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
