"""Command and response APDUs (ISO/IEC 7816-3 and 7816-4).

A :class:`CommandApdu` knows its case (1 to 4) from whether it carries data and
expects data, and encodes itself in short or extended form. A
:class:`ResponseApdu` is the card's answer: data then the two status bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apdu.errors import ParseError

SHORT_MAX_LC = 255
SHORT_MAX_LE = 256
EXTENDED_MAX_LC = 65535
EXTENDED_MAX_LE = 65536


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """One command to a card.

    ``le`` is the number of response bytes expected: ``None`` for none (cases 1
    and 3), 1..256 short or 1..65536 extended, where 256 (short) and 65536
    (extended) encode as ``00``/``0000`` ("as many as available").
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False
    #: The command as sent, encoded (and checked) once when the command is
    #: built: a transport sends it as is, so a command the card layer keeps
    #: (the fixed commands of a read) costs no encoding and no check per use.
    raw: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # One chained comparison first: this runs for every APDU sent.
        if not (
            0 <= self.cla <= 0xFF
            and 0 <= self.ins <= 0xFF
            and 0 <= self.p1 <= 0xFF
            and 0 <= self.p2 <= 0xFF
        ):
            for name in ("cla", "ins", "p1", "p2"):
                value = getattr(self, name)
                if not 0 <= value <= 0xFF:
                    raise ParseError(f"APDU {name.upper()} {value} is not a byte")
        if len(self.data) > EXTENDED_MAX_LC:
            raise ParseError(f"APDU data of {len(self.data)} bytes exceeds {EXTENDED_MAX_LC}")
        if len(self.data) > SHORT_MAX_LC:
            object.__setattr__(self, "extended", True)
        if self.le is not None:
            max_le = EXTENDED_MAX_LE if self.extended else SHORT_MAX_LE
            if not 0 < self.le <= EXTENDED_MAX_LE:
                raise ParseError(f"APDU Le {self.le} out of range")
            if self.le > max_le:
                object.__setattr__(self, "extended", True)
        object.__setattr__(self, "raw", self._encode())

    @property
    def case(self) -> int:
        """ISO 7816-3 case: 1 (no data), 2 (Le only), 3 (Lc only), 4 (both)."""
        if self.data:
            return 4 if self.le is not None else 3
        return 2 if self.le is not None else 1

    @property
    def header(self) -> bytes:
        """CLA INS P1 P2: safe to log, unlike the data field."""
        return bytes((self.cla, self.ins, self.p1, self.p2))

    def to_bytes(self) -> bytes:
        """Encode in short or extended form as ``extended`` says."""
        return self.raw

    def _encode(self) -> bytes:
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        if not self.extended:
            le = b"" if self.le is None else bytes((self.le & 0xFF,))  # 256 encodes as 00
            if self.data:
                return header + bytes((len(self.data),)) + self.data + le
            return header + le
        out = bytearray(header)
        if self.data:
            out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                out += (0 if self.le == EXTENDED_MAX_LE else self.le).to_bytes(2, "big")
        elif self.le is not None:
            out += b"\x00" + (0 if self.le == EXTENDED_MAX_LE else self.le).to_bytes(2, "big")
        return bytes(out)

    def __bytes__(self) -> bytes:
        return self.raw

    def with_le(self, le: int | None) -> CommandApdu:
        """The same command with another Le (used for the 6Cxx re-send)."""
        return CommandApdu(self.cla, self.ins, self.p1, self.p2, self.data, le, self.extended)

    @classmethod
    def from_bytes(cls, raw: bytes) -> CommandApdu:
        """Decode any case, short or extended; malformed input raises ParseError."""
        if len(raw) < 4:
            raise ParseError(
                f"command APDU of {len(raw)} bytes is shorter than a header", data=bytes(raw)
            )
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0] or SHORT_MAX_LE)
        if body[0] != 0 or len(body) in (2,):
            lc = body[0]
            if lc == 0:
                raise ParseError("short APDU with Lc=0", data=bytes(raw), offset=4)
            if len(body) == 1 + lc:
                return cls(cla, ins, p1, p2, bytes(body[1:]))
            if len(body) == 2 + lc:
                return cls(cla, ins, p1, p2, bytes(body[1:-1]), body[-1] or SHORT_MAX_LE)
            raise ParseError(
                f"short APDU body of {len(body)} bytes does not match Lc={lc}",
                data=bytes(raw),
                offset=4,
            )
        # Extended form: a 00 byte then two-byte lengths.
        if len(body) == 3:
            le = int.from_bytes(body[1:3], "big") or EXTENDED_MAX_LE
            return cls(cla, ins, p1, p2, le=le, extended=True)
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise ParseError("extended APDU with Lc=0", data=bytes(raw), offset=5)
        rest = body[3:]
        if len(rest) == lc:
            return cls(cla, ins, p1, p2, bytes(rest), extended=True)
        if len(rest) == lc + 2:
            le = int.from_bytes(rest[-2:], "big") or EXTENDED_MAX_LE
            return cls(cla, ins, p1, p2, bytes(rest[:-2]), le, extended=True)
        raise ParseError(f"extended APDU body does not match Lc={lc}", data=bytes(raw), offset=5)


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """The card's answer: response data and the status word SW1 SW2."""

    data: bytes
    sw1: int
    sw2: int

    @property
    def sw(self) -> int:
        """The status word as one 16-bit number, e.g. 0x9000."""
        return (self.sw1 << 8) | self.sw2

    @property
    def ok(self) -> bool:
        """True for 9000 and the classic-SIM 'normal ending' words 91xx and 920x.

        9240 (memory problem) shares SW1 92 but is a failure (TS 51.011 §9.4.1).
        """
        return self.sw == 0x9000 or self.sw1 == 0x91 or (self.sw1 == 0x92 and self.sw2 < 0x10)

    def to_bytes(self) -> bytes:
        """Data followed by SW1 SW2, as on the wire."""
        return self.data + bytes((self.sw1, self.sw2))

    @classmethod
    def from_bytes(cls, raw: bytes) -> ResponseApdu:
        """Split a wire response; fewer than two bytes is a truncated response."""
        if len(raw) < 2:
            raise ParseError(f"response of {len(raw)} bytes has no status word", data=bytes(raw))
        return cls(bytes(raw[:-2]), raw[-2], raw[-1])

    @classmethod
    def from_sw(cls, sw: int, data: bytes = b"") -> ResponseApdu:
        """Build a response from a 16-bit status word (handy in card models)."""
        return cls(data, sw >> 8, sw & 0xFF)
