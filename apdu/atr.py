"""Answer to reset (ISO/IEC 7816-3 §8) and card names from pcsc-tools' list.

:func:`parse_atr` never raises: whatever a reader hands over (empty,
truncated, padded, wrong checksum) decodes to an :class:`Atr` whose
``findings`` say what is wrong, so a station can still show and log it.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from apdu.errors import ParseError, UsageError
from apdu.tlv import Tlv, parse_compact_tlv

Severity = Literal["error", "warning", "info"]
_Note = Callable[[Severity, str, str], None]

TS_DIRECT = 0x3B
TS_INVERSE = 0x3F
MAX_ATR_LENGTH = 33  # TS plus at most 32 characters (ISO/IEC 7816-3 §8.2.1)

# ISO/IEC 7816-3 Table 7: Fi and f(max) in MHz by the high nibble of TA1.
FI_TABLE: dict[int, tuple[int, float]] = {
    0x0: (372, 4.0),
    0x1: (372, 5.0),
    0x2: (558, 6.0),
    0x3: (744, 8.0),
    0x4: (1116, 12.0),
    0x5: (1488, 16.0),
    0x6: (1860, 20.0),
    0x9: (512, 5.0),
    0xA: (768, 7.5),
    0xB: (1024, 10.0),
    0xC: (1536, 15.0),
    0xD: (2048, 20.0),
}
# ISO/IEC 7816-3 Table 8: Di by the low nibble of TA1.
DI_TABLE: dict[int, int] = {
    0x1: 1,
    0x2: 2,
    0x3: 4,
    0x4: 8,
    0x5: 16,
    0x6: 32,
    0x7: 64,
    0x8: 12,
    0x9: 20,
}
DEFAULT_FI, DEFAULT_DI, DEFAULT_F_MAX = 372, 1, 5.0
DEFAULT_WORK_WAITING_INTEGER = 10
DEFAULT_IFSC, DEFAULT_CWI, DEFAULT_BWI = 32, 13, 4

CLOCK_STOP: dict[int, str] = {0: "not supported", 1: "low", 2: "high", 3: "no preference"}
VOLTAGE_CLASSES: dict[str, float] = {"A": 5.0, "B": 3.0, "C": 1.8}

COMPACT_TAG_NAMES: dict[int, str] = {
    0x1: "country code",
    0x2: "issuer identification number",
    0x3: "card service data",
    0x4: "initial access data",
    0x5: "card issuer data",
    0x6: "pre-issuing data",
    0x7: "card capabilities",
    0x8: "status indicator",
    0xF: "application identifier",
}
"""Names of compact-TLV objects in historical bytes (ISO/IEC 7816-4 §8.1.1)."""


@dataclass(frozen=True, slots=True)
class AtrFinding:
    """Something wrong or notable in an ATR; ``code`` is a stable identifier for tests and UIs."""

    severity: Severity
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class InterfaceGroup:
    """Interface bytes TAi TBi TCi TDi of group ``index`` (1-based).

    ``protocol`` is the T announced by TDi (None without TDi); ``applies_to``
    is the T announced by TD(i-1), to which the group's bytes relate (None for
    group 1, whose bytes are global).
    """

    index: int
    ta: int | None = None
    tb: int | None = None
    tc: int | None = None
    td: int | None = None
    applies_to: int | None = None

    @property
    def protocol(self) -> int | None:
        """T announced by TDi (low nibble), or None."""
        return None if self.td is None else self.td & 0x0F


@dataclass(frozen=True, slots=True)
class HistoricalObject(Tlv):
    """A compact-TLV object of the historical bytes, with the name of its tag."""

    name: str = ""


@dataclass(frozen=True, slots=True)
class HistoricalBytes:
    """Historical bytes decoded by category indicator (ISO/IEC 7816-4 §8.1.1).

    Category 00: compact-TLV objects then a 3-byte status indicator; 80:
    compact-TLV objects, the last possibly a status indicator (tag 8); 10: a
    DIR data reference byte. Other categories are kept whole in ``proprietary``.
    """

    category: int
    objects: list[HistoricalObject] = field(default_factory=list)
    status_indicator: bytes | None = None
    dir_data_reference: int | None = None
    proprietary: bytes | None = None

    def find(self, tag: int) -> HistoricalObject | None:
        """The first object with compact tag ``tag``."""
        return next((o for o in self.objects if o.tag == tag), None)


@dataclass(frozen=True, slots=True)
class Atr:
    """A decoded answer to reset.

    Fields decoded from interface bytes carry the ISO/IEC 7816-3 default when
    the byte is absent (Fi 372, Di 1, f(max) 5 MHz, guard time 0, WI 10); the
    bytes themselves are in ``interface_bytes``. ``fi``/``di``/``f_max`` are
    None when TA1 holds an RFU value. T=1 and T=15 fields are None when the
    ATR does not announce those protocols.
    """

    raw: bytes
    ts: Literal["direct", "inverse"] | None = None
    t0: int | None = None
    interface_bytes: list[InterfaceGroup] = field(default_factory=list)
    protocols: list[int] = field(default_factory=lambda: [0])
    fi: int | None = DEFAULT_FI
    di: int | None = DEFAULT_DI
    f_max: float | None = DEFAULT_F_MAX
    extra_guard_time: int = 0
    work_waiting_integer: int = DEFAULT_WORK_WAITING_INTEGER
    specific_mode_protocol: int | None = None
    clock_stop: str | None = None
    class_indicator: list[str] | None = None
    t1_ifsc: int | None = None
    t1_cwi: int | None = None
    t1_bwi: int | None = None
    t1_error_detection: Literal["LRC", "CRC"] | None = None
    historical_bytes: bytes = b""
    historical: HistoricalBytes | None = None
    tck: int | None = None
    tck_valid: bool | None = None
    findings: list[AtrFinding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no finding is an error."""
        return not any(f.severity == "error" for f in self.findings)

    @property
    def cycles_per_etu(self) -> float | None:
        """Fi/Di: clock cycles per elementary time unit after PPS with TA1's values."""
        if self.fi is None or self.di is None:
            return None
        return self.fi / self.di

    @property
    def voltages(self) -> list[float]:
        """Supply voltages of the announced classes (5, 3, 1.8 V)."""
        return [VOLTAGE_CLASSES[c] for c in self.class_indicator or []]

    def hex(self) -> str:
        """The raw ATR as pcsc-tools writes it: upper-case bytes separated by spaces."""
        return " ".join(f"{b:02X}" for b in self.raw)

    def finding_codes(self) -> list[str]:
        """The codes of all findings, in order."""
        return [f.code for f in self.findings]


_NOT_HEX_DIGIT = re.compile(r"[^0-9A-Fa-f\s:]")


def parse_atr_hex(text: str) -> Atr:
    """Parse an ATR written in hex ("3B 9F 95 ..." or "3b9f95..."); invalid hex -> ParseError.

    Spaces and colons between digits are ignored. The error says which
    character is not a hex digit, or how many digits an odd-length ATR has.
    """
    bad = _NOT_HEX_DIGIT.search(text)
    if bad is not None:
        raise ParseError(
            f"ATR is not hexadecimal: {text.strip()!r} ({bad.group()!r} at "
            f"position {bad.start() + 1} is not a hex digit)",
            data=text,
            offset=bad.start(),
        )
    compact = re.sub(r"[\s:]", "", text)
    if len(compact) % 2:
        raise ParseError(
            f"ATR hex has an odd number of digits ({len(compact)}): "
            f"{text.strip()!r}; each byte is two digits",
            data=text,
        )
    return parse_atr(bytes.fromhex(compact))


def parse_atr(data: bytes) -> Atr:
    """Decode an ATR; never raises, problems are reported as ``findings``."""
    raw = bytes(data)
    findings: list[AtrFinding] = []

    def note(severity: Severity, code: str, message: str) -> None:
        findings.append(AtrFinding(severity, code, message))

    if not raw:
        note("error", "empty", "the ATR is empty (no card answer)")
        return Atr(raw=raw, findings=findings)
    ts: Literal["direct", "inverse"] | None = None
    if raw[0] == TS_DIRECT:
        ts = "direct"
    elif raw[0] == TS_INVERSE:
        ts = "inverse"
    elif raw[0] == 0x03:
        note("error", "bad-ts", "TS is 03: an inverse-convention 3F read with the wrong convention")
    else:
        note("error", "bad-ts", f"TS {raw[0]:02X} is neither 3B (direct) nor 3F (inverse)")
    if len(raw) > MAX_ATR_LENGTH:
        note(
            "warning",
            "too-long",
            f"the ATR has {len(raw)} bytes, more than the {MAX_ATR_LENGTH} allowed",
        )
    if len(raw) < 2:
        note("error", "missing-t0", "the ATR ends after TS: format byte T0 missing")
        return Atr(raw=raw, ts=ts, findings=findings)

    t0 = raw[1]
    groups, pos, truncated = _read_interface_bytes(raw)
    if truncated:
        note(
            "error",
            "truncated-interface",
            f"the ATR ends at byte {len(raw)} inside the interface bytes of group {len(groups)}",
        )
    announced = [g.protocol for g in groups if g.protocol is not None]
    protocols = sorted({t for t in announced if t != 15}) or [0]
    if groups and groups[0].protocol == 15:
        note("warning", "t15-in-td1", "TD1 announces T=15, which only TD2 onwards may")
    tck_required = any(t != 0 for t in announced)

    k = t0 & 0x0F
    historical_bytes = raw[pos : pos + k]
    pos += len(historical_bytes)
    tck: int | None = None
    tck_valid: bool | None = None
    if not truncated:
        if len(historical_bytes) < k:
            note(
                "error",
                "missing-historical",
                f"T0 announces {k} historical bytes, only {len(historical_bytes)} present",
            )
        rest = raw[pos:]
        tck, tck_valid = _check_tck(raw, pos, rest, tck_required, note)

    values = _GlobalValues.decode(groups, note)
    # Truncated historical bytes are already an error; their decoding problems
    # would only repeat it.
    historical_note = note if len(historical_bytes) == k else _ignore
    historical = _decode_historical(historical_bytes, historical_note) if historical_bytes else None
    return Atr(
        raw=raw,
        ts=ts,
        t0=t0,
        interface_bytes=groups,
        protocols=protocols,
        fi=values.fi,
        di=values.di,
        f_max=values.f_max,
        extra_guard_time=values.extra_guard_time,
        work_waiting_integer=values.work_waiting_integer,
        specific_mode_protocol=values.specific_mode_protocol,
        clock_stop=values.clock_stop,
        class_indicator=values.class_indicator,
        t1_ifsc=values.t1_ifsc,
        t1_cwi=values.t1_cwi,
        t1_bwi=values.t1_bwi,
        t1_error_detection=values.t1_error_detection,
        historical_bytes=historical_bytes,
        historical=historical,
        tck=tck,
        tck_valid=tck_valid,
        findings=findings,
    )


def _read_interface_bytes(raw: bytes) -> tuple[list[InterfaceGroup], int, bool]:
    """Walk the Y/TD chain from T0; return (groups, position after them, truncated)."""
    groups: list[InterfaceGroup] = []
    pos = 2
    presence = raw[1] >> 4
    applies_to: int | None = None
    index = 1
    while True:
        present: dict[str, int | None] = {"ta": None, "tb": None, "tc": None, "td": None}
        for bit, name in ((0x1, "ta"), (0x2, "tb"), (0x4, "tc"), (0x8, "td")):
            if presence & bit:
                if pos >= len(raw):
                    groups.append(InterfaceGroup(index, applies_to=applies_to, **present))
                    return groups, pos, True
                present[name] = raw[pos]
                pos += 1
        group = InterfaceGroup(index, applies_to=applies_to, **present)
        groups.append(group)
        if group.td is None:
            return groups, pos, False
        presence = group.td >> 4
        applies_to = group.td & 0x0F
        index += 1


def _check_tck(
    raw: bytes, pos: int, rest: bytes, required: bool, note: _Note
) -> tuple[int | None, bool | None]:
    """Check TCK (XOR of T0..TCK is 0) and what follows it."""
    if required:
        if not rest:
            note("error", "missing-tck", "a protocol other than T=0 is offered but TCK is missing")
            return None, None
        tck = rest[0]
        valid = _xor(raw[1 : pos + 1]) == 0
        if not valid:
            expected = _xor(raw[1:pos])
            note("error", "wrong-tck", f"TCK is {tck:02X}, the XOR of T0..TCK needs {expected:02X}")
        if len(rest) > 1:
            note("warning", "extra-bytes", f"{len(rest) - 1} bytes follow TCK")
        return tck, valid
    if not rest:
        return None, None
    if len(rest) == 1 and _xor(raw[1 : pos + 1]) == 0:
        note(
            "warning",
            "tck-not-allowed",
            "only T=0 is offered, yet a TCK follows the historical bytes",
        )
        return rest[0], True
    note("warning", "extra-bytes", f"{len(rest)} bytes follow the historical bytes")
    return None, None


def _ignore(severity: Severity, code: str, message: str) -> None:
    """A finding callback that drops findings."""


def _xor(data: Iterable[int]) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


@dataclass
class _GlobalValues:
    """Values derived from the interface bytes, defaults filled in."""

    fi: int | None = DEFAULT_FI
    di: int | None = DEFAULT_DI
    f_max: float | None = DEFAULT_F_MAX
    extra_guard_time: int = 0
    work_waiting_integer: int = DEFAULT_WORK_WAITING_INTEGER
    specific_mode_protocol: int | None = None
    clock_stop: str | None = None
    class_indicator: list[str] | None = None
    t1_ifsc: int | None = None
    t1_cwi: int | None = None
    t1_bwi: int | None = None
    t1_error_detection: Literal["LRC", "CRC"] | None = None

    @classmethod
    def decode(cls, groups: list[InterfaceGroup], note: _Note) -> _GlobalValues:
        values = cls()
        first = groups[0] if groups else InterfaceGroup(1)
        if first.ta is not None:
            fi_entry = FI_TABLE.get(first.ta >> 4)
            di = DI_TABLE.get(first.ta & 0x0F)
            if fi_entry is None or di is None:
                note("warning", "rfu-ta1", f"TA1 {first.ta:02X} holds an RFU Fi or Di value")
            values.fi, values.f_max = fi_entry if fi_entry is not None else (None, None)
            values.di = di
        if first.tb not in (None, 0):
            note("info", "deprecated-tb1", "TB1 (programming voltage) is deprecated")
        if first.tc is not None:
            values.extra_guard_time = first.tc
            if first.tc == 0xFF:
                note(
                    "info",
                    "minimum-guard-time",
                    "TC1 FF: minimum guard time (12 etu for T=0, 11 etu for T=1)",
                )
        if len(groups) > 1:
            second = groups[1]
            if second.ta is not None:
                values.specific_mode_protocol = second.ta & 0x0F
            if second.tc is not None:
                if second.tc == 0:
                    note("warning", "reserved-tc2", "TC2 00 is reserved (WI must be 1-255)")
                values.work_waiting_integer = second.tc
        values._decode_specific(groups[2:], note)
        return values

    def _decode_specific(self, groups: list[InterfaceGroup], note: _Note) -> None:
        """T=1 and T=15 bytes: the first TA/TB/TC (i > 2) after a TD naming that T."""
        t1 = [g for g in groups if g.applies_to == 1]
        ta1 = next((g.ta for g in t1 if g.ta is not None), None)
        tb1 = next((g.tb for g in t1 if g.tb is not None), None)
        tc1 = next((g.tc for g in t1 if g.tc is not None), None)
        if t1:
            self.t1_ifsc = DEFAULT_IFSC if ta1 is None else ta1
            if ta1 in (0x00, 0xFF):
                note("warning", "bad-ifsc", f"T=1 IFSC {ta1:02X} is not allowed")
            self.t1_bwi = DEFAULT_BWI if tb1 is None else tb1 >> 4
            self.t1_cwi = DEFAULT_CWI if tb1 is None else tb1 & 0x0F
            self.t1_error_detection = "CRC" if tc1 is not None and tc1 & 0x01 else "LRC"
        ta15 = next((g.ta for g in groups if g.applies_to == 15 and g.ta is not None), None)
        if ta15 is not None:
            self.clock_stop = CLOCK_STOP[ta15 >> 6]
            self.class_indicator = [
                name for bit, name in ((0x01, "A"), (0x02, "B"), (0x04, "C")) if ta15 & bit
            ]


def _decode_historical(data: bytes, note: _Note) -> HistoricalBytes:
    category = data[0]
    body = data[1:]
    try:
        if category == 0x00:
            if len(body) < 3:
                note(
                    "warning",
                    "historical-malformed",
                    "category 00 historical bytes lack the 3-byte status indicator",
                )
                return HistoricalBytes(category, proprietary=body)
            return HistoricalBytes(
                category, _named(parse_compact_tlv(body[:-3])), status_indicator=body[-3:]
            )
        if category == 0x80:
            objects = _named(parse_compact_tlv(body))
            status = objects[-1].value if objects and objects[-1].tag == 0x8 else None
            return HistoricalBytes(category, objects, status_indicator=status)
        if category == 0x10:
            if len(body) != 1:
                note(
                    "warning",
                    "historical-malformed",
                    f"category 10 needs one DIR data reference byte, found {len(body)}",
                )
                return HistoricalBytes(category, proprietary=body)
            return HistoricalBytes(category, dir_data_reference=body[0])
    except ParseError as exc:
        note("warning", "historical-malformed", f"historical bytes: {exc}")
        return HistoricalBytes(category, proprietary=body)
    if 0x81 <= category <= 0x8F:
        note("info", "historical-rfu", f"historical category {category:02X} is RFU")
    return HistoricalBytes(category, proprietary=body)


def _named(objects: list[Tlv]) -> list[HistoricalObject]:
    return [HistoricalObject(o.tag, o.value, COMPACT_TAG_NAMES.get(o.tag, "RFU")) for o in objects]


# --- card names from pcsc-tools -------------------------------------------

DEFAULT_SMARTCARD_LIST = Path("/usr/share/pcsc/smartcard_list.txt")
#: Where a user keeps a newer list: simtool's user configuration directory,
#: then where pcsc-tools' ``update-smartcard-list`` downloads one.
USER_LIST_NAME = "smartcard_list.txt"


def atr_list_candidates() -> list[Path]:
    """ATR lists in order of precedence: the user's (newer) before the system's."""
    import platformdirs

    return [
        Path(platformdirs.user_config_dir("simtool")) / USER_LIST_NAME,
        Path.home() / ".cache" / USER_LIST_NAME,
        DEFAULT_SMARTCARD_LIST,
    ]


#: How many leading bytes of a pattern key the bucket it is filed under.
INDEX_DEPTH = 4
# A byte counts as literal while it is two hex digits followed by a space or the
# end of the pattern, so that no class, group or quantifier touches it.
_LITERAL_BYTES = re.compile(rf"(?:[0-9A-Fa-f]{{2}}(?: |$)){{0,{INDEX_DEPTH}}}")


def _literal_prefix(pattern: str) -> str:
    """The bytes (up to :data:`INDEX_DEPTH`) that start every ATR ``pattern`` can match.

    "" when there are none; an alternation anywhere lets the pattern match
    other starts, so it gets "" as well.
    """
    if "|" in pattern:
        return ""
    match = _LITERAL_BYTES.match(pattern)
    return match.group().rstrip().upper() if match else ""


def _compile(pattern: str) -> re.Pattern[str] | None:
    """The pattern as ATR_analysis uses it (case-insensitive); None if ``re`` refuses it."""
    try:
        with warnings.catch_warnings():
            # Perl-style classes like [3B|3F] trigger FutureWarnings, not errors.
            warnings.simplefilter("ignore")
            return re.compile(pattern, re.IGNORECASE)
    except re.error:
        return None


@dataclass(frozen=True, slots=True)
class AtrNameEntry:
    """One ATR pattern of the list and the description lines under it."""

    pattern: str
    regex: re.Pattern[str]
    names: tuple[str, ...]


class AtrNameList:
    """Card descriptions by ATR, from pcsc-tools' ``smartcard_list.txt``.

    Each non-indented line is a regular expression matched against the whole
    ATR written as upper-case hex bytes separated by spaces (case-insensitive,
    as ATR_analysis does); the tab-indented lines below it describe the card.

    Reading the list compiles nothing: pattern lines are filed by their
    literal first bytes (up to :data:`INDEX_DEPTH`), and a lookup compiles
    only the patterns filed under the ATR's own first bytes (plus those with
    no literal start), keeping them for the next lookup. Compiling all ~4,000
    patterns of the installed list takes most of a second; a lookup needs a
    few hundred at most.
    """

    def __init__(self, patterns: Iterable[tuple[str, Iterable[str]]] = ()) -> None:
        self._patterns = [(pattern, tuple(names)) for pattern, names in patterns]
        # Bucket key -> positions in the file, in file order.
        self._buckets: dict[str, list[int]] = {}
        for position, (pattern, _) in enumerate(self._patterns):
            self._buckets.setdefault(_literal_prefix(pattern), []).append(position)
        self._regexes: dict[int, re.Pattern[str] | None] = {}

    def __len__(self) -> int:
        """The number of usable patterns (compiles every pattern not compiled yet)."""
        return len(self.entries)

    @property
    def pattern_count(self) -> int:
        """The number of pattern lines read, usable or not (compiles nothing)."""
        return len(self._patterns)

    @property
    def compiled_count(self) -> int:
        """How many patterns have been compiled so far."""
        return len(self._regexes)

    @property
    def entries(self) -> list[AtrNameEntry]:
        """Every usable pattern in file order (compiles every pattern not compiled yet)."""
        out: list[AtrNameEntry] = []
        for position, (pattern, names) in enumerate(self._patterns):
            regex = self._regex(position)
            if regex is not None:
                out.append(AtrNameEntry(pattern, regex, names))
        return out

    @property
    def skipped(self) -> int:
        """Patterns Python's ``re`` cannot compile (compiles every pattern not compiled yet)."""
        return self.pattern_count - len(self.entries)

    def _regex(self, position: int) -> re.Pattern[str] | None:
        if position not in self._regexes:
            self._regexes[position] = _compile(self._patterns[position][0])
        return self._regexes[position]

    @classmethod
    def from_text(cls, text: str) -> AtrNameList:
        """Read the list's text; patterns Python's ``re`` cannot compile never match (they
        are counted in ``skipped``), they are not fatal."""
        patterns: list[tuple[str, list[str]]] = []
        names: list[str] = []
        for line in text.splitlines():
            first = line[:1]
            if first == "#":
                continue
            if first == "\t":
                if patterns:
                    names.append(line.strip())
                continue
            pattern = line.rstrip()
            if pattern:
                names = []
                patterns.append((pattern, names))
        return cls(patterns)

    @classmethod
    def load(cls, path: Path | str = DEFAULT_SMARTCARD_LIST) -> AtrNameList:
        """Load (and cache per path and modification time) a list; a missing or unreadable
        file gives an empty list."""
        path = Path(path)
        try:
            stat = path.stat()
        except OSError:
            return cls()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        cached = _CACHE.get(key)
        if cached is None:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return cls()
            cached = cls.from_text(text)
            _CACHE[key] = cached
        return cached

    @classmethod
    def newest(cls, explicit: Path | str | None = None) -> AtrNameList:
        """The list to name cards by: ``explicit`` (must exist), else the first of
        :func:`atr_list_candidates` that exists (a user's list before the system's)."""
        if explicit is not None:
            path = Path(explicit)
            if not path.is_file():
                raise UsageError(f"ATR list {path} does not exist or is not a file")
            return cls.load(path)
        for candidate in atr_list_candidates():
            if candidate.is_file():
                return cls.load(candidate)
        return cls()

    def names(self, atr: bytes) -> list[str]:
        """Descriptions of every entry whose pattern matches ``atr``, in file order."""
        text = " ".join(f"{b:02X}" for b in atr)
        # The buckets of every start the ATR has: "", its first byte, its first two, ...
        keys = {
            " ".join(text.split(" ")[:depth]) for depth in range(min(len(atr), INDEX_DEPTH) + 1)
        }
        candidates = sorted(position for key in keys for position in self._buckets.get(key, ()))
        out: list[str] = []
        for position in candidates:
            regex = self._regex(position)
            if regex is not None and regex.fullmatch(text):
                out.extend(self._patterns[position][1])
        return out

    def timed_names(self, atr: bytes) -> tuple[list[str], float]:
        """:meth:`names` and the seconds the lookup took (for benchmarks)."""
        start = time.perf_counter()
        found = self.names(atr)
        return found, time.perf_counter() - start


_CACHE: dict[tuple[str, int, int], AtrNameList] = {}
