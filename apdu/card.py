"""Talking to a SIM: a UICC (CLA 00, ETSI TS 102 221) or a classic SIM (CLA A0, TS 51.011).

:class:`Card` hides the transmission-protocol chores that nothing else in the
PC/SC chain does (GET RESPONSE after 61xx/9Fxx, re-send after 6Cxx) and offers
SELECT, READ BINARY/RECORD and the PIN primitives. :func:`read_card` reads a
card's identity with as few APDUs as the standards allow:

UICC: EF.ICCID by short file id (1 APDU), EF.DIR by short file id (2 + one per
further record), ADF.USIM with its FCP (2, the FCP carries the PIN status
template), EF.IMSI and EF.AD by short file id (1-2 each), EF.SPN and EF.MSISDN
(2-3 each, they have no short file id), then one empty VERIFY/UNBLOCK per
counter (4), which answers 63Cx without spending an attempt.

The PIN operations here are raw: every caller goes through
:mod:`apdu.pin`, the station's safety policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeVar

from apdu import files
from apdu.command import CommandApdu, ResponseApdu
from apdu.errors import (
    CardError,
    FileNotFoundOnCardError,
    ParseError,
    SecurityStatusError,
    StatusWordError,
)
from apdu.status import (
    GSM_SW_ACCESS_CONDITION,
    GSM_SW_FILE_NOT_FOUND,
    GSM_SW_OUT_OF_RANGE,
    NOT_A_UICC,
    SW_AUTH_METHOD_BLOCKED,
    SW_CLA_NOT_SUPPORTED,
    SW_RECORD_NOT_FOUND,
    SW_RETRIES,
    SW_RETRIES_MASK,
    check_response,
    describe_sw,
    exact_length,
    more_data_available,
)
from apdu.tlv import ber_spans, find_ber_value
from apdu.transport.base import CardTransport

if TYPE_CHECKING:
    # apdu.fcp (seven dataclasses) is imported where an FCP is decoded, not
    # here: a card read needs only the PIN status template, decoded below.
    from apdu.fcp import Fcp, PinStatusTemplate

CLA_UICC = 0x00
# Tags of apdu.fcp, for the PIN status template decoded here (TS 102 221 §11.1.1.4.10).
_TAG_FCP_TEMPLATE = 0x62
_TAG_PIN_STATUS = 0xC6
_TAG_PS_DO = 0x90
_TAG_USAGE_QUALIFIER = 0x95
_TAG_KEY_REFERENCE = 0x83
CLA_SIM = 0xA0

INS_SELECT = 0xA4
INS_STATUS = 0xF2
INS_READ_BINARY = 0xB0
INS_UPDATE_BINARY = 0xD6
INS_READ_RECORD = 0xB2
INS_UPDATE_RECORD = 0xDC
INS_GET_RESPONSE = 0xC0
INS_VERIFY = 0x20
INS_CHANGE_PIN = 0x24
INS_DISABLE_PIN = 0x26
INS_ENABLE_PIN = 0x28
INS_UNBLOCK_PIN = 0x2C

# Key references (TS 102 221 §9.5.1): PIN1 = Application PIN 1, PIN2 = the
# application's second-level key, ADM1 = the first administrative key.
KEY_REFERENCES: dict[str, int] = {"pin1": 0x01, "pin2": 0x81, "adm1": 0x0A}
# Classic SIM (TS 51.011 §9.2.9): CHV1 / CHV2 are referenced by P2 = 1 / 2.
SIM_KEY_REFERENCES: dict[str, int] = {"pin1": 0x01, "pin2": 0x02}

# The GET RESPONSE / re-send loop is bounded so a misbehaving card that keeps
# answering 61xx cannot keep the station busy forever.
MAX_CHAINED_RESPONSES = 64
# Commands without secret data that reads send again and again (SELECT, READ
# BINARY/RECORD, GET RESPONSE, the empty VERIFY/UNBLOCK queries), built and
# encoded once per process: a read then spends nothing on building its
# commands. Never a command with a PIN: its data must not outlive the call.
_COMMANDS: dict[tuple[int, int, int, int, bytes, int | None], CommandApdu] = {}
# A bound on the cache, which only a program walking many files could reach.
_MAX_CACHED_COMMANDS = 1024
# The empty VERIFY/UNBLOCK of each counter by (card type, counter name).
_PIN_QUERIES: dict[tuple[str | None, str], CommandApdu] = {}
# SW1 of the answers that need a GET RESPONSE (61xx, 9Fxx) or a re-send (6Cxx).
_CHAINING_SW1 = frozenset({0x61, 0x6C, 0x9F})
_SW_OK = b"\x90\x00"

#: What a counter is reset to by a successful presentation (TS 102 221 §9.5;
#: docs/domain.md: new stock has 3 PIN and 10 PUK attempts).
MAX_RETRIES: dict[str, int] = {"pin1": 3, "pin2": 3, "puk1": 10, "puk2": 10}

CardType = Literal["uicc", "sim"]
PinName = Literal["pin1", "pin2", "puk1", "puk2"]


def _command(
    cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
) -> CommandApdu:
    """The command with these fields, from the cache (see ``_COMMANDS``); no secrets."""
    key = (cla, ins, p1, p2, data, le)
    command = _COMMANDS.get(key)
    if command is None:
        if len(_COMMANDS) >= _MAX_CACHED_COMMANDS:
            _COMMANDS.clear()
        command = _COMMANDS[key] = CommandApdu(cla, ins, p1, p2, data, le)
    return command


def _sfi(ref: files.FileRef) -> int:
    if ref.sfi is None:
        raise ValueError(f"{ref.name} has no short file id")
    return ref.sfi


def pin_block(pin: str) -> bytes:
    """A PIN as the 8-byte field of TS 102 221 §9.5.3: ASCII digits padded with FF."""
    raw = pin.encode("ascii")
    if len(raw) > 8:
        raise ParseError("a PIN field holds at most 8 characters")
    return raw + b"\xff" * (8 - len(raw))


@dataclass(frozen=True, slots=True)
class PinStatus:
    """One PIN or PUK counter as read from the card without spending an attempt.

    ``retries`` is None when the card did not reveal it (an empty VERIFY that
    answers 9000 on a disabled PIN); a PIN verified in this session reports
    the maximum its counter was reset to. ``enabled`` is None for PUKs and
    when the card does not say.
    """

    retries: int | None
    enabled: bool | None
    verified: bool | None
    blocked: bool

    @property
    def state(self) -> str:
        """One word for people: blocked, disabled, verified, enabled, ok (a PUK) or unknown."""
        if self.blocked:
            return "blocked"
        if self.enabled is None and self.verified is None:
            return "unknown" if self.retries is None else "ok"
        if self.enabled is False:
            return "disabled"
        if self.verified:
            return "verified"
        if self.enabled:
            return "enabled"
        return "unknown" if self.retries is None else "enabled"


@dataclass(frozen=True, slots=True)
class FileProblem:
    """A file the card would not give during a read: which, its status word, the meaning.

    ``sw`` is None when the card answered but the content does not decode.
    """

    file: str
    sw: int | None
    meaning: str

    def __str__(self) -> str:
        word = f" (SW {self.sw:04X})" if self.sw is not None else ""
        return f"{self.file}: {self.meaning}{word}"


@dataclass(frozen=True, slots=True)
class CardIdentity:
    """What :func:`read_card` found on a card."""

    iccid: str
    iccid_luhn_ok: bool
    imsi: str | None
    imsi_protected: bool
    msisdn: str | None
    spn: str | None
    mnc_length: int | None
    card_type: CardType
    applications: list[files.Application]
    pins: dict[str, PinStatus]
    atr: bytes
    apdu_count: int
    dead: bool = False
    notes: list[str] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        """True when some file could not be read (see ``problems``)."""
        return bool(self.problems)

    @property
    def mcc(self) -> str | None:
        """Mobile country code from the IMSI."""
        return self.imsi[:3] if self.imsi else None

    @property
    def mnc(self) -> str | None:
        """Mobile network code from the IMSI (length from EF.AD, else 2)."""
        if not self.imsi:
            return None
        return self.imsi[3 : 3 + (self.mnc_length or 2)]


class Card:
    """A SIM or UICC behind a transport.

    ``cla`` is fixed by :meth:`detect` (or by the caller); every command after
    that uses it. T=0 chores happen in :meth:`send`, so callers see complete
    responses whatever the protocol.
    """

    def __init__(self, transport: CardTransport, *, card_type: CardType | None = None) -> None:
        self.transport = transport
        self.card_type: CardType | None = card_type
        self.current_df: str = "MF"
        self.application_selected = False

    @property
    def cla(self) -> int:
        """The class byte for this card's dialect."""
        return CLA_SIM if self.card_type == "sim" else CLA_UICC

    @property
    def apdu_count(self) -> int:
        """APDUs exchanged on the transport so far."""
        return self.transport.stats.apdus

    # -- exchange -------------------------------------------------------------
    def send(self, command: CommandApdu) -> ResponseApdu:
        """Send a command, completing 61xx/9Fxx (GET RESPONSE) and 6Cxx (re-send).

        Returns the final response whatever its status word; see
        :meth:`exchange` for a checked variant.
        """
        raw = self.transport.transmit_bytes(command.raw)
        response = ResponseApdu(raw[:-2], raw[-2], raw[-1])
        if raw[-2] not in _CHAINING_SW1:
            return response  # the fast path: nothing to complete
        return self._complete(command, response)

    def _complete(
        self, command: CommandApdu, response: ResponseApdu, chained: int = 0
    ) -> ResponseApdu:
        """The T=0 chores after a 61xx/9Fxx/6Cxx answer to ``command``.

        ``chained`` is the number of exchanges already made for them.
        """
        while chained < MAX_CHAINED_RESPONSES:
            exact = exact_length(response.sw)
            if exact is not None and command.le is not None:
                command = (
                    command.with_le(exact)
                    if command.data or command.extended
                    else _command(command.cla, command.ins, command.p1, command.p2, le=exact)
                )
                response = self.transport.transmit(command)
                chained += 1
                continue
            available = more_data_available(response.sw)
            if available is None:
                return response
            data = response.data
            response = self.transport.transmit(
                _command(command.cla, INS_GET_RESPONSE, 0, 0, le=available)
            )
            if more_data_available(response.sw) is not None or response.ok:
                response = ResponseApdu(data + response.data, response.sw1, response.sw2)
            chained += 1
        raise CardError(f"card kept asking for GET RESPONSE after {chained} exchanges")

    def exchange(self, command: CommandApdu) -> ResponseApdu:
        """:meth:`send`, then raise the project error for any failure word."""
        # send() inline: one call less per APDU on the path every read takes.
        raw = self.transport.transmit_bytes(command.raw)
        if raw.endswith(_SW_OK):
            return ResponseApdu(raw[:-2], 0x90, 0x00)  # by far the most common answer
        return self._finish(command, raw)

    def _data(self, command: CommandApdu) -> bytes:
        """``exchange(command).data``: what the reads use, with no response object for 9000."""
        transport = self.transport
        raw = transport.transmit_bytes(command.raw)
        if raw.endswith(_SW_OK):
            return raw[:-2]
        if raw[-2] == 0x61:
            # T=0: the data waits for a GET RESPONSE (an ADF's FCP on every
            # read). The common answer, 9000, is taken here; any other is
            # handed on to _complete as its loop would have left it.
            get = _command(command.cla, INS_GET_RESPONSE, 0, 0, le=raw[-1] or 256)
            more = transport.transmit_bytes(get.raw)
            if more.endswith(_SW_OK):
                return raw[:-2] + more[:-2]
            response = ResponseApdu(more[:-2], more[-2], more[-1])
            if more_data_available(response.sw) is not None or response.ok:
                response = ResponseApdu(raw[:-2] + more[:-2], more[-2], more[-1])
            return check_response(self._complete(command, response, 1), command).data
        return self._finish(command, raw).data

    def _finish(self, command: CommandApdu, raw: bytes) -> ResponseApdu:
        """The checked response to ``command`` whose first answer was ``raw`` (not 9000)."""
        response = ResponseApdu(raw[:-2], raw[-2], raw[-1])
        if raw[-2] in _CHAINING_SW1:
            response = self._complete(command, response)
        return check_response(response, command)

    # -- detection ------------------------------------------------------------
    def detect(self) -> CardType:
        """Decide UICC or classic SIM with one SELECT MF in the UICC dialect."""
        response = self.send(CommandApdu(CLA_UICC, INS_SELECT, 0x00, 0x0C, b"\x3f\x00"))
        # 6E00 (class not supported) and 6D00 (instruction not supported) are
        # what a SIM that only speaks TS 51.011 answers to CLA 00.
        self.card_type = "sim" if response.sw in NOT_A_UICC else "uicc"
        return self.card_type

    # -- selection ------------------------------------------------------------
    def select(self, fid: int, *, fcp: bool = False) -> Fcp | None:
        """SELECT by file id (from the current DF), optionally returning its FCP."""
        return self._select(0x00, fid.to_bytes(2, "big"), fcp)

    def select_path(self, path: list[int], *, fcp: bool = False) -> Fcp | None:
        """SELECT by path from the MF (file ids without 3F00)."""
        if self.card_type == "sim":
            # TS 51.011 has no path selection: walk from the MF.
            result = self.select(0x3F00, fcp=fcp and not path)
            for i, fid in enumerate(path):
                result = self.select(fid, fcp=fcp and i == len(path) - 1)
            return result
        data = b"".join(f.to_bytes(2, "big") for f in path)
        return self._select(0x08, data, fcp)

    def select_aid(self, aid: bytes, *, fcp: bool = True) -> Fcp | None:
        """SELECT an application by (possibly partial) AID."""
        result = self._select(0x04, aid, fcp)
        self.application_selected = True
        return result

    def select_application(self, aid: bytes) -> PinStatusTemplate | None:
        """SELECT an application by (partial) AID; only its PIN status template (C6).

        A read needs nothing else of the ADF's FCP, and decoding all of it
        costs more than the exchange on a fast reader.
        """
        data = self._data(_command(CLA_UICC, INS_SELECT, 0x04, 0x04, bytes(aid), 256))
        self.application_selected = True
        return pin_status_of_fcp(data)

    def select_application_pins(self, aid: bytes) -> dict[int, bool] | None:
        """:meth:`select_application`, giving key reference -> enabled (what a read needs)."""
        data = self._data(_command(CLA_UICC, INS_SELECT, 0x04, 0x04, bytes(aid), 256))
        self.application_selected = True
        try:
            template = find_ber_value(data, _TAG_FCP_TEMPLATE)
            found = None if template is None else find_ber_value(template, _TAG_PIN_STATUS)
            return None if found is None else pin_enabled_flags(found)
        except ParseError:
            return None

    def ensure_application(self) -> None:
        """Make ADF.USIM current once, so local key references (PIN2 = 81) resolve."""
        if self.card_type == "uicc" and not self.application_selected:
            self.select_aid(files.USIM_AID_PREFIX, fcp=False)

    def _select(self, p1: int, data: bytes, fcp: bool) -> Fcp | None:
        if self.card_type == "sim":
            # A SIM always answers 9Fxx; fetch the response only when wanted.
            response = self.transport.transmit(CommandApdu(CLA_SIM, INS_SELECT, 0, 0, data))
            if more_data_available(response.sw) is None:
                check_response(response, CommandApdu(CLA_SIM, INS_SELECT, 0, 0, data))
                return None
            if not fcp:
                return None
            count = more_data_available(response.sw) or 256
            get = CommandApdu(CLA_SIM, INS_GET_RESPONSE, 0, 0, le=count)
            from apdu.fcp import parse_gsm_response  # see TYPE_CHECKING above

            return parse_gsm_response(self.exchange(get).data)
        if not fcp:
            self._data(_command(CLA_UICC, INS_SELECT, p1, 0x0C, data))
            return None
        from apdu.fcp import parse_fcp  # see TYPE_CHECKING above

        return parse_fcp(self._data(_command(CLA_UICC, INS_SELECT, p1, 0x04, data, 256)))

    # -- reading --------------------------------------------------------------
    def read_binary(
        self, length: int | None = None, *, offset: int = 0, sfi: int | None = None
    ) -> bytes:
        """READ BINARY of the current EF (or the EF with short file id ``sfi``).

        ``length`` None reads what the card offers in one exchange (the 6Cxx
        answer gives the exact size on T=0).
        """
        if length is not None and 0 < length <= 256 and offset == 0:
            # One exchange, the case of every file a read reads.
            p1 = 0 if sfi is None else 0x80 | sfi
            return self._data(_command(self.cla, INS_READ_BINARY, p1, 0, le=length))
        out = bytearray()
        remaining = length
        first = True
        while remaining is None or remaining > 0:
            chunk = 256 if remaining is None else min(remaining, 256)
            if sfi is not None and first:
                if offset > 0xFF:
                    raise ParseError("READ BINARY with a short file id reaches offset 255 at most")
                p1, p2 = 0x80 | sfi, offset
            else:
                p1, p2 = (offset >> 8) & 0x7F, offset & 0xFF
            data = self._data(_command(self.cla, INS_READ_BINARY, p1, p2, le=chunk))
            out += data
            offset += len(data)
            first = False
            if remaining is None or not data:
                break
            remaining -= len(data)
        return bytes(out)

    def read_record(
        self, number: int, length: int | None = None, *, sfi: int | None = None
    ) -> bytes:
        """READ RECORD ``number`` (absolute mode) of the current EF or of ``sfi``."""
        p2 = 0x04 if sfi is None else (sfi << 3) | 0x04
        return self._data(_command(self.cla, INS_READ_RECORD, number, p2, le=length or 256))

    def read_records(self, *, sfi: int | None = None, limit: int = 254) -> list[bytes]:
        """All records of a linear fixed EF, stopping at 6A83 (record not found).

        The first record's exact length (from 6Cxx) is reused for the rest so
        each further record costs one exchange.
        """
        records: list[bytes] = []
        length: int | None = None
        for number in range(1, limit + 1):
            try:
                data = self.read_record(number, length, sfi=sfi)
            except StatusWordError as error:
                if error.sw in (SW_RECORD_NOT_FOUND, GSM_SW_OUT_OF_RANGE) and records:
                    break
                raise
            if data and data.count(0xFF) == len(data):
                # An erased record ends the used part of the file: the rest
                # are unused too on every card seen, so stop reading.
                break
            records.append(data)
            length = len(data)
        return records

    # -- PIN primitives (use apdu.pin, never these directly) --------------------
    def _pin_reference(self, which: str) -> int:
        table = SIM_KEY_REFERENCES if self.card_type == "sim" else KEY_REFERENCES
        try:
            return table[which]
        except KeyError:
            raise ParseError(f"unknown PIN {which!r}; choose from {', '.join(table)}") from None

    def pin_query(self, which: str) -> ResponseApdu:
        """Empty VERIFY (or UNBLOCK for ``puk1``/``puk2``): the counter, no attempt spent."""
        self.ensure_application()
        # The four queries are the same commands on every card: built once.
        command = _PIN_QUERIES.get((self.card_type, which))
        if command is None:
            if which.startswith("puk"):
                ins, reference = INS_UNBLOCK_PIN, self._pin_reference("pin" + which[3:])
            else:
                ins, reference = INS_VERIFY, self._pin_reference(which)
            command = _command(self.cla, ins, 0x00, reference)
            _PIN_QUERIES[(self.card_type, which)] = command
        return self.send(command)

    def verify_pin(self, which: str, pin: str) -> ResponseApdu:
        """VERIFY: spends an attempt when wrong."""
        self.ensure_application()
        return self.send(
            CommandApdu(self.cla, INS_VERIFY, 0x00, self._pin_reference(which), pin_block(pin))
        )

    def change_pin(self, which: str, old: str, new: str) -> ResponseApdu:
        """CHANGE REFERENCE DATA (CHANGE CHV on a SIM)."""
        self.ensure_application()
        return self.send(
            CommandApdu(
                self.cla,
                INS_CHANGE_PIN,
                0x00,
                self._pin_reference(which),
                pin_block(old) + pin_block(new),
            )
        )

    def disable_pin(self, which: str, pin: str) -> ResponseApdu:
        """DISABLE VERIFICATION REQUIREMENT."""
        self.ensure_application()
        return self.send(
            CommandApdu(self.cla, INS_DISABLE_PIN, 0x00, self._pin_reference(which), pin_block(pin))
        )

    def enable_pin(self, which: str, pin: str) -> ResponseApdu:
        """ENABLE VERIFICATION REQUIREMENT."""
        self.ensure_application()
        return self.send(
            CommandApdu(self.cla, INS_ENABLE_PIN, 0x00, self._pin_reference(which), pin_block(pin))
        )

    def unblock_pin(self, which: str, puk: str, new_pin: str) -> ResponseApdu:
        """UNBLOCK PIN with the PUK, setting ``new_pin``."""
        self.ensure_application()
        reference = self._pin_reference(which)
        if self.card_type == "sim" and which == "pin1":
            reference = 0x00  # TS 51.011 §9.2.14: UNBLOCK CHV names CHV1 as 00
        return self.send(
            CommandApdu(
                self.cla, INS_UNBLOCK_PIN, 0x00, reference, pin_block(puk) + pin_block(new_pin)
            )
        )

    def pin_counter(self, which: str) -> tuple[int | None, bool]:
        """(retries, blocked) of ``pin1``/``pin2``/``puk1``/``puk2``, spending nothing.

        A UICC answers an empty VERIFY/UNBLOCK; a classic SIM has no such
        command (6700) and reports its counters in DF.GSM's SELECT response.
        """
        if self.card_type == "sim":
            self.select(0x3F00)
            status = _sim_pins(self.select(files.DF_GSM.fid, fcp=True))[which]
            return status.retries, status.blocked
        return counter_from_response(self.pin_query(which))


def pin_status_of_fcp(data: bytes) -> PinStatusTemplate | None:
    """The PIN status template (C6) of an FCP, None when the FCP has none or is not one."""
    from apdu.fcp import PinStatusTemplate  # see TYPE_CHECKING above

    try:
        template = find_ber_value(data, _TAG_FCP_TEMPLATE)
        if template is None:
            return None
        found = find_ber_value(template, _TAG_PIN_STATUS)
        return None if found is None else PinStatusTemplate.from_value(found)
    except ParseError:
        return None


def pin_enabled_flags(value: bytes) -> dict[int, bool]:
    """Key reference -> enabled, from the value of a PIN status template (C6).

    :meth:`apdu.fcp.PinStatusTemplate.from_value` without its objects (same
    checks, same errors), so that a card read does without :mod:`apdu.fcp`;
    ``tests/apdu/test_card_speed.py`` holds the two together. A key
    reference listed twice is enabled when any of its entries says so.
    """
    value = bytes(value)
    spans = ber_spans(value)
    if not spans or spans[0][0] != _TAG_PS_DO or spans[0][1] == spans[0][2]:
        raise ParseError("PIN status template does not start with a PS_DO (90)", data=value)
    _tag, start, end = spans[0]
    bitmap = int.from_bytes(value[start:end], "big")
    bits = (end - start) * 8
    flags: dict[int, bool] = {}
    count = 0
    qualifier: int | None = None
    for tag, start, end in spans[1:]:
        if tag == _TAG_USAGE_QUALIFIER and end - start == 1:
            qualifier = value[start]
        elif tag == _TAG_KEY_REFERENCE and end - start == 1:
            if count >= bits:
                raise ParseError(
                    f"PS_DO of {bits} bits cannot cover key reference number {count + 1}",
                    data=value,
                )
            reference = value[start]
            flags[reference] = flags.get(reference, False) or bool(bitmap >> (bits - 1 - count) & 1)
            count += 1
            qualifier = None
        else:
            raise ParseError(
                f"unexpected object {tag:02X} of {end - start} bytes in PIN status template",
                data=value,
            )
    if qualifier is not None:
        raise ParseError(
            "usage qualifier without a key reference in PIN status template", data=value
        )
    return flags


def counter_from_response(response: ResponseApdu) -> tuple[int | None, bool]:
    """(retries, blocked) from an empty VERIFY/UNBLOCK answer.

    63Cx gives the retries; 6983 means blocked (0 retries); 9000 means
    verification not required: the counter is not revealed.
    """
    sw = response.sw
    if sw & SW_RETRIES_MASK == SW_RETRIES:
        return sw & 0x0F, (sw & 0x0F) == 0
    if sw == SW_AUTH_METHOD_BLOCKED:
        return 0, True
    if response.ok:
        return None, False
    raise StatusWordError(f"the card did not report the counter (SW {sw:04X})", sw=sw)


def read_uicc_pins(
    card: Card,
    enabled: dict[int, bool],
    *,
    on_error: Callable[[str, StatusWordError], None] | None = None,
) -> dict[str, PinStatus]:
    """All four counters of a UICC, with the enabled flags from the PIN status template.

    With ``on_error`` a counter the card will not tell is reported there (by
    name and error) and comes back unknown; without, the error is raised.
    """
    out: dict[str, PinStatus] = {}
    for which in ("pin1", "pin2", "puk1", "puk2"):
        try:
            retries, blocked = counter_from_response(card.pin_query(which))
        except StatusWordError as error:
            if on_error is None:
                raise
            on_error(which.upper(), error)
            out[which] = PinStatus(None, None, None, False)
            continue
        if which.startswith("pin"):
            flag = enabled.get(KEY_REFERENCES[which])
            verified = None if flag is None else (retries is None and flag)
            if verified:
                # A successful verification reset the counter to its maximum;
                # the card only hides it.
                retries = MAX_RETRIES[which]
            out[which] = PinStatus(retries, flag, verified, blocked)
        else:
            out[which] = PinStatus(retries, None, None, blocked)
    return out


class _Session:
    """One identity read: the card, and the files it would not give so far."""

    def __init__(self, card: Card) -> None:
        self.card = card
        # The transport's APDU count when the read began.
        self.start = card.transport.stats.apdus
        self.problems: list[FileProblem] = []
        self.notes: list[str] = []
        # Set once a read by short file id was refused and SELECT worked:
        # the rest of this card's files are selected too.
        self.sfi_refused = False

    def failed(self, file: str, error: StatusWordError, how: str = "") -> None:
        meaning = describe_sw(error.sw) + (f" ({how})" if how else "")
        self.problems.append(FileProblem(file, error.sw, meaning))

    def read_transparent(
        self, ref: files.FileRef, length: int | None, *, optional: bool = False
    ) -> tuple[bytes | None, bool]:
        """(content, protected) of an EF of the current DF; a failure becomes a problem.

        By short file id when the file has one (one APDU), else, or when the
        card refuses the short file id, SELECT then READ BINARY.
        """
        card = self.card
        if ref.sfi is not None and not self.sfi_refused:
            try:
                return card.read_binary(length, sfi=ref.sfi), False
            except SecurityStatusError:
                return None, True
            except StatusWordError:
                pass  # refused by short file id: try by file id below
        try:
            card.select(ref.fid)
            data = card.read_binary(length)
        except SecurityStatusError:
            return None, True
        except FileNotFoundOnCardError as error:
            if not optional:
                self.failed(ref.name, error)
            return None, False
        except StatusWordError as error:
            self.failed(ref.name, error)
            return None, False
        if ref.sfi is not None:
            self.sfi_refused = True
        return data, False


def _iccid_in(raw: bytes) -> str | None:
    """The ICCID of EF.ICCID contents, None for what SFI 02 is elsewhere (EF.LI in ADF.USIM).

    Every ICCID starts with the telecom industry identifier 89 (ITU-T E.118),
    stored nibble-swapped as 98; EF.LI starts with a letter or FF.
    """
    if len(raw) != files.ICCID_FILE_SIZE or raw[0] != 0x98:
        return None
    try:
        return files.decode_iccid(raw)
    except ParseError:
        return None


def read_card(transport: CardTransport, *, applications: bool = False) -> CardIdentity:
    """Read a card's identity and PIN counters without spending any attempt.

    EF.DIR is read only with ``applications``: the USIM is found by its
    partial AID otherwise. A file the card refuses does not end the read: it
    becomes a :class:`FileProblem` and the identity keeps what was read
    (``identity.partial``). Only a card whose ICCID cannot be read raises.
    """
    with transport.transaction():
        return _read_card_locked(transport, applications)


def _read_card_locked(transport: CardTransport, applications: bool) -> CardIdentity:
    transport.connect()
    card = Card(transport)
    session = _Session(card)
    # EF.ICCID by short file id: one APDU when the MF is current (after a
    # reset, and after every simtool command). Elsewhere SFI 02 is another
    # file (EF.LI in ADF.USIM), which the content check tells apart; then
    # SELECT by path from the MF, which is right wherever the card stands.
    first = card.send(_READ_ICCID_BY_SFI)
    iccid = _iccid_in(first.data) if first.ok else None
    if first.sw == SW_CLA_NOT_SUPPORTED:
        card.card_type = "sim"
    elif iccid is not None:
        card.card_type = "uicc"
    else:
        command = CommandApdu(
            CLA_UICC, INS_SELECT, 0x08, 0x0C, files.EF_ICCID.fid.to_bytes(2, "big")
        )
        selected = card.send(command)
        if selected.sw in NOT_A_UICC:
            card.card_type = "sim"
        else:
            card.card_type = "uicc"
            try:
                check_response(selected, command)
                iccid_raw = card.read_binary(files.ICCID_FILE_SIZE)
            except StatusWordError as error:
                # The UICC view refuses EF.ICCID: the classic view may not.
                session.failed("EF.ICCID", error, "UICC view")
                card.card_type = "sim"
            else:
                iccid = files.decode_iccid(iccid_raw)
    if card.card_type == "sim":
        return _read_classic_sim(card, session)
    assert iccid is not None
    return _read_uicc(card, iccid, session, applications)


def read_iccid(transport: CardTransport) -> str:
    """Only the ICCID: SELECT EF.ICCID by path from the MF, READ BINARY (2 APDUs on a UICC).

    SELECT by path (not a short file id read) because it is right whatever
    the card's current directory is, so the count never varies.
    """
    with transport.transaction():
        return _read_iccid_locked(transport)


def _read_iccid_locked(transport: CardTransport) -> str:
    transport.connect()
    card = Card(transport)
    command = CommandApdu(CLA_UICC, INS_SELECT, 0x08, 0x0C, files.EF_ICCID.fid.to_bytes(2, "big"))
    first = card.send(command)
    if first.sw in NOT_A_UICC:
        card.card_type = "sim"
        card.select(0x3F00)
        card.select(files.EF_ICCID.fid)
    else:
        check_response(first, command)
    return files.decode_iccid(card.read_binary(files.ICCID_FILE_SIZE))


def read_imsi(transport: CardTransport) -> str | None:
    """Only the IMSI (after PIN1 was verified, for a PIN-protected EF.IMSI).

    UICC: SELECT ADF.USIM without FCP, READ BINARY by short file id (2 APDUs).
    None when the file is still protected or absent.
    """
    with transport.transaction():
        return _read_imsi_locked(transport)


def _read_imsi_locked(transport: CardTransport) -> str | None:
    transport.connect()
    card = Card(transport, card_type="uicc")
    try:
        command = CommandApdu(CLA_UICC, INS_SELECT, 0x04, 0x0C, files.USIM_AID_PREFIX)
        first = card.send(command)
        if first.sw in NOT_A_UICC:
            card.card_type = "sim"
            card.select(0x3F00)
            card.select(files.DF_GSM.fid)
            card.select(files.EF_IMSI.fid)
            return files.decode_imsi(card.read_binary(files.IMSI_FILE_SIZE))
        check_response(first, command)
        return files.decode_imsi(card.read_binary(files.IMSI_FILE_SIZE, sfi=_sfi(files.EF_IMSI)))
    except (SecurityStatusError, FileNotFoundOnCardError):
        return None
    except StatusWordError as error:
        if error.sw == GSM_SW_ACCESS_CONDITION:
            return None
        raise


# The first command of a read: EF.ICCID by its short file id.
_READ_ICCID_BY_SFI = CommandApdu(
    CLA_UICC, INS_READ_BINARY, 0x80 | _sfi(files.EF_ICCID), 0, le=files.ICCID_FILE_SIZE
)
_UNKNOWN_PINS = {name: PinStatus(None, None, None, False) for name in MAX_RETRIES}
# READ RECORD of EF.MSISDN on T=0: the record length is not known before the
# card says it (6Cxx costs a re-send). X+14 with a 14-byte alpha identifier is
# what most operators burn; a wrong guess costs what Le=00 would have cost.
_MSISDN_RECORD_GUESS = 28


def _read_uicc(card: Card, iccid: str, session: _Session, applications: bool) -> CardIdentity:
    apps: list[files.Application] = []
    if applications:
        try:
            records = card.read_records(sfi=_sfi(files.EF_DIR))
        except FileNotFoundOnCardError:
            records = []
        except StatusWordError as error:
            session.failed("EF.DIR", error)
            session.notes.append("EF.DIR unusable: USIM selected by its partial AID")
            records = []
        apps = [a for a in (files.decode_dir_record(r) for r in records) if a is not None]
    usim = next((a for a in apps if a.kind == "usim"), None)
    flags: dict[int, bool] | None = None
    selected = False
    for aid in dict.fromkeys([usim.aid if usim else files.USIM_AID_PREFIX, files.USIM_AID_PREFIX]):
        try:
            flags = card.select_application_pins(aid)
            selected = True
            break
        except FileNotFoundOnCardError:
            continue
        except StatusWordError as error:
            session.failed("ADF.USIM", error)
            break
    if not selected:
        if not session.problems:
            session.notes.append("no USIM application")
        # The UICC view of the application is refused: most UICCs also
        # answer as a classic SIM (TS 51.011), which has the same facts.
        card.card_type = "sim"
        try:
            classic = _read_classic_sim(card, session, iccid=iccid)
        except StatusWordError:
            card.card_type = "uicc"
            return _identity(iccid, "uicc", session, apps=apps, pins=dict(_UNKNOWN_PINS))
        session.notes.append("read through the classic SIM view (TS 51.011)")
        return CardIdentity(
            **{
                **{f: getattr(classic, f) for f in classic.__dataclass_fields__},
                "card_type": "uicc",
                "applications": apps,
                "notes": session.notes,
                "problems": session.problems,
            }
        )
    enabled = flags or {}
    raw, imsi_protected = session.read_transparent(files.EF_IMSI, files.IMSI_FILE_SIZE)
    imsi = _decode(session, "EF.IMSI", files.decode_imsi, raw)
    # EF.AD is 4 bytes on cards that carry the MNC length; a shorter or longer
    # file costs one 6Cxx re-send.
    raw, _ = session.read_transparent(files.EF_AD, 4, optional=True)
    ad = _decode(session, "EF.AD", files.decode_ad, raw)
    mnc_length = ad.mnc_length if ad is not None else None
    spn = _read_spn(session)
    msisdn, msisdn_protected = _read_msisdn(session)
    if msisdn_protected:
        session.notes.append("EF.MSISDN is protected by PIN1")
    pins = read_uicc_pins(card, enabled, on_error=session.failed)
    return _identity(
        iccid,
        "uicc",
        session,
        apps=apps,
        pins=pins,
        imsi=imsi,
        imsi_protected=imsi_protected,
        mnc_length=mnc_length,
        spn=spn,
        msisdn=msisdn,
    )


def _identity(
    iccid: str,
    card_type: CardType,
    session: _Session,
    *,
    apps: list[files.Application],
    pins: dict[str, PinStatus],
    imsi: str | None = None,
    imsi_protected: bool = False,
    mnc_length: int | None = None,
    spn: str | None = None,
    msisdn: str | None = None,
) -> CardIdentity:
    return CardIdentity(
        iccid=iccid,
        iccid_luhn_ok=files.luhn_valid(iccid),
        imsi=imsi,
        imsi_protected=imsi_protected,
        msisdn=msisdn,
        spn=spn,
        mnc_length=mnc_length,
        card_type=card_type,
        applications=apps,
        pins=pins,
        # Built once the read's last APDU is answered: the count is final.
        atr=session.card.transport.atr,
        apdu_count=session.card.transport.stats.apdus - session.start,
        dead=pins["puk1"].blocked,
        notes=session.notes,
        problems=session.problems,
    )


T = TypeVar("T")


def _decode(
    session: _Session, name: str, decode: Callable[[bytes], T], raw: bytes | None
) -> T | None:
    """Decode a file's bytes; undecodable content is a problem, not a crash."""
    if raw is None:
        return None
    try:
        return decode(raw)
    except ParseError as error:
        session.problems.append(FileProblem(name, None, f"content does not decode: {error}"))
        return None


def _read_spn(session: _Session) -> str | None:
    raw, _ = session.read_transparent(files.EF_SPN, files.SPN_FILE_SIZE, optional=True)
    spn = _decode(session, "EF.SPN", files.decode_spn, raw)
    return spn.name if spn and spn.name else None


def _read_msisdn(session: _Session) -> tuple[str | None, bool]:
    """(number, protected): the first EF.MSISDN record."""
    card = session.card
    guess = _MSISDN_RECORD_GUESS if card.transport.protocol != "T=1" else None
    try:
        card.select(files.EF_MSISDN.fid)
        record = card.read_record(1, guess)
    except FileNotFoundOnCardError:
        return None, False
    except SecurityStatusError:
        return None, True
    except StatusWordError as error:
        if error.sw != SW_RECORD_NOT_FOUND:
            session.failed("EF.MSISDN", error)
        return None, False
    decoded = _decode(session, "EF.MSISDN", files.decode_msisdn, record)
    return (decoded.number if decoded and decoded.number else None), False


def _read_classic_sim(card: Card, session: _Session, *, iccid: str | None = None) -> CardIdentity:
    """TS 51.011: no short file ids; CHV counters come in the DF's SELECT response.

    Raises :class:`StatusWordError` only when DF.GSM itself is refused (the
    card has no classic view); every other file that fails is a problem.
    """
    if iccid is None:
        card.select(0x3F00)
        card.select(files.EF_ICCID.fid)
        iccid = files.decode_iccid(card.read_binary(files.ICCID_FILE_SIZE))
    else:
        card.select(0x3F00)
    gsm = card.select(files.DF_GSM.fid, fcp=True)
    pins = _sim_pins(gsm)
    imsi: str | None = None
    imsi_protected = False
    try:
        card.select(files.EF_IMSI.fid)
        imsi = _decode(session, "EF.IMSI", files.decode_imsi, card.read_binary(9))
    except SecurityStatusError:
        imsi_protected = True
    except StatusWordError as error:
        # 9804: access condition not fulfilled, TS 51.011's word for 6982.
        if error.sw == GSM_SW_ACCESS_CONDITION:
            imsi_protected = True
        else:
            session.failed("EF.IMSI", error, "classic view")
    mnc_length: int | None = None
    try:
        ef = card.select(files.EF_AD.fid, fcp=True)
        if ef is not None and ef.file_size:
            ad = _decode(session, "EF.AD", files.decode_ad, card.read_binary(ef.file_size))
            mnc_length = ad.mnc_length if ad is not None else None
    except FileNotFoundOnCardError:
        pass
    except StatusWordError as error:
        session.failed("EF.AD", error, "classic view")
    spn = None
    try:
        ef = card.select(files.EF_SPN.fid, fcp=True)
        if ef is not None and ef.file_size:
            decoded = _decode(session, "EF.SPN", files.decode_spn, card.read_binary(ef.file_size))
            spn = decoded.name if decoded and decoded.name else None
    except FileNotFoundOnCardError:
        pass
    except StatusWordError as error:
        if error.sw != GSM_SW_FILE_NOT_FOUND:
            session.failed("EF.SPN", error, "classic view")
    msisdn = None
    try:
        card.select(files.DF_TELECOM.fid)
        ef = card.select(files.EF_MSISDN.fid, fcp=True)
        if ef is not None and ef.record_length:
            decoded_msisdn = _decode(
                session,
                "EF.MSISDN",
                files.decode_msisdn,
                card.read_record(1, ef.record_length),
            )
            msisdn = decoded_msisdn.number if decoded_msisdn else None
    except FileNotFoundOnCardError:
        pass
    except StatusWordError as error:
        if error.sw not in (GSM_SW_FILE_NOT_FOUND, GSM_SW_ACCESS_CONDITION):
            session.failed("EF.MSISDN", error, "classic view")
    return _identity(
        iccid,
        "sim",
        session,
        apps=[],
        pins=pins,
        imsi=imsi,
        imsi_protected=imsi_protected,
        mnc_length=mnc_length,
        spn=spn,
        msisdn=msisdn,
    )


def _sim_pins(gsm: Fcp | None) -> dict[str, PinStatus]:
    """Counters from the GSM SELECT response (TS 51.011 §9.2.1 bytes 19-22)."""
    info = gsm.gsm if gsm is not None else None
    codes = (
        {"pin1": info.chv1, "puk1": info.unblock_chv1, "pin2": info.chv2, "puk2": info.unblock_chv2}
        if info is not None
        else {}
    )
    out: dict[str, PinStatus] = {}
    for which in ("pin1", "pin2", "puk1", "puk2"):
        code = codes.get(which)
        retries = code.retries if code is not None and code.initialised else None
        enabled: bool | None = None
        if which == "pin1" and info is not None:
            enabled = info.chv1_enabled
        elif which == "pin2":
            enabled = True if code is not None and code.initialised else None
        out[which] = PinStatus(retries, enabled, None, retries == 0)
    return out
