"""The high-level modem: identity, SIM, network, PDP contexts, in any dialect.

:class:`Modem` turns questions ("what ICCID?", "which APN on context 1?")
into the dialect's AT commands through an :class:`~modem.channel.AtChannel`
and parses the answers. Reads are idempotent, so a read that met garbage, a
missed deadline or a restart is asked again (a bounded number of times);
writes are never repeated behind the caller's back.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType

from apdu.files import luhn_valid
from apdu.status import NOT_A_UICC, SW_AUTH_METHOD_BLOCKED, SW_OK, SW_RETRIES, SW_RETRIES_MASK
from modem.channel import (
    DEFAULT_TIMEOUT,
    AtChannel,
    AtCommand,
    AtResponse,
    Unsolicited,
    at,
    deadline_for,
)
from modem.codes import FinalResult
from modem.dialects import (
    QUECTEL_CONTEXT_TYPES,
    STRING_FIELDS,
    Auth,
    Dialect,
    detect_dialect,
    get_dialect,
)
from modem.errors import (
    AtCommandError,
    AtParseError,
    AtTimeoutError,
    ModemError,
    ModemGarbageError,
    ModemPinError,
    ModemRebootedError,
    SimStateRefusalError,
)
from modem.parsers import (
    AuthReading,
    IccidReading,
    NetworkOperator,
    Operator,
    PdpContext,
    PinRetries,
    Registration,
    Signal,
    SimStatus,
    find_line,
    iccid_from_file,
    parse_auth_readback,
    parse_cesq,
    parse_cgact,
    parse_cgdcont,
    parse_cops,
    parse_cops_list,
    parse_cpin,
    parse_crsm,
    parse_csim,
    parse_csq,
    parse_hcsq,
    parse_iccid,
    parse_imei,
    parse_imsi,
    parse_registration,
    parse_retries,
    parse_sim_status,
    parse_text_answer,
    payload_of,
)
from modem.ports import open_port
from modem.profiles import ApnProfile
from modem.trace import AtTracer

log = logging.getLogger(__name__)

# TS 27.007 clause 8.18: AT+CRSM command 176 is READ BINARY; EF.ICCID is 2FE2
# under the MF (TS 102 221 clause 13.2), 10 bytes.
CRSM_READ_BINARY = 176
EF_ICCID_FID = 0x2FE2
READ_ATTEMPTS = 3
# ICCID commands of other firmware, tried when the dialect's own and AT+CRSM
# fail: AT+CCID (u-blox, Fibocom, many others), AT+ICCID (SIMCom, Neoway),
# AT+QCCID (Quectel), AT^ICCID? (Huawei).
ICCID_FALLBACKS: tuple[tuple[str, str], ...] = (
    ("AT+CCID", "+CCID:"),
    ("AT+ICCID", "+ICCID:"),
    ("AT+QCCID", "+QCCID:"),
    ("AT^ICCID?", "^ICCID:"),
)
MASK = "****"


# Modems that refused commands chained on one line, by "dialect:<name>" or
# (before the dialect is known) "port:<path>": they get one command per line
# from then on, for the life of the process.
_UNCHAINED: set[str] = set()

BatchResult = AtResponse | AtCommandError


def chaining_refused(key: str) -> bool:
    """True when the modem behind ``key`` refused a chained command line."""
    return key in _UNCHAINED


def forget_chaining_refusals() -> None:
    """Forget every remembered refusal (a new batch of modems, or a test)."""
    _UNCHAINED.clear()


def chain_command(channel: AtChannel, commands: Sequence[AtCommand]) -> AtCommand:
    """One V.250 command line running ``commands`` in order (``AT+CGMI;+CGMM``).

    Its answer prefixes are all the commands' prefixes, its deadline the sum of
    theirs; it is secret when one of them is.
    """
    bodies = [c.text.strip()[2:] for c in commands]
    shown = [c.shown.strip()[2:] for c in commands]
    prefixes = [c.prefix for c in commands if c.prefix is not None]
    return at(
        "AT" + ";".join(bodies),
        shown="AT" + ";".join(shown),
        prefix=prefixes[0] if prefixes else False,
        also=tuple(prefixes[1:]),
        free_text=any(c.free_text for c in commands),
        timeout=sum(
            c.timeout if c.timeout is not None else deadline_for(c.text, channel.default_timeout)
            for c in commands
        ),
        secret_answer=any(c.secret_answer for c in commands),
    )


def split_answer(commands: Sequence[AtCommand], lines: Sequence[str]) -> list[list[str]] | None:
    """Give each chained command its answer lines; ``None`` when that cannot be told.

    A prefixed line goes to the command with that prefix. Lines without a
    known prefix go, in order, one each, to the free-text commands that got
    no line (``AT+CGMI;+CGMM`` answer one bare line each); any other count
    is ambiguous.
    """
    buckets: list[list[str]] = [[] for _ in commands]
    unassigned: list[str] = []
    for line in lines:
        upper = line.upper()
        for index, command in enumerate(commands):
            if command.prefix is not None and upper.startswith(command.prefix):
                buckets[index].append(line)
                break
        else:
            unassigned.append(line)
    if unassigned:
        targets = [i for i, c in enumerate(commands) if c.free_text and not buckets[i]]
        if len(targets) != len(unassigned):
            return None
        for index, line in zip(targets, unassigned, strict=True):
            buckets[index].append(line)
    return buckets


def run_batch(
    channel: AtChannel,
    commands: Sequence[AtCommand],
    run_one: Callable[[AtCommand], AtResponse | None],
    *,
    key: str,
    note: Callable[[str], None],
    stop_at_error: bool = False,
) -> list[BatchResult]:
    """Run ``commands`` chained on one line, or one by one when that cannot be.

    ``run_one`` runs a single command (with the caller's retry rules; ``None``
    means "done, nothing to read", a write whose OK came with garbage). A
    failure result of the chained line does not say which command failed
    (V.250: execution stops at the first error), so the commands are then run
    one by one; when every one of them succeeds alone, the modem refused the
    chaining itself, which is remembered under ``key``. Each result is the
    command's response or its :class:`AtCommandError`; with
    ``stop_at_error`` (writes) nothing runs after a failed command and the
    list ends there. Other errors (deadline, restart, port) propagate.
    """

    def one(command: AtCommand) -> BatchResult:
        try:
            response = run_one(command)
        except AtCommandError as error:
            return error
        return response or AtResponse(command.shown, (), FinalResult("OK", "ok"), 0.0)

    def singly() -> list[BatchResult]:
        results: list[BatchResult] = []
        for command in commands:
            results.append(one(command))
            if stop_at_error and isinstance(results[-1], AtCommandError):
                break
        return results

    if len(commands) <= 1 or key in _UNCHAINED:
        return singly()
    line = chain_command(channel, commands)
    try:
        response = run_one(line)
    except AtCommandError:
        results = singly()
        if len(results) == len(commands) and not any(
            isinstance(r, AtCommandError) for r in results
        ):
            _UNCHAINED.add(key)
            note(
                "the modem refused commands chained on one line; they are sent one "
                f"by one from now on ({key})"
            )
        return results
    lines = split_answer(commands, response.lines if response else ())
    if response is None or lines is None:
        return singly()
    share = response.seconds / len(commands)
    return [
        AtResponse(command.shown, tuple(part), response.final, share, response.echoed)
        for command, part in zip(commands, lines, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class ModemIdentity:
    """What the modem says it is (``+CGMI``, ``+CGMM``, ``+CGMR``, ``+CGSN``)."""

    manufacturer: str
    model: str
    revision: str
    imei: str
    imei_luhn_ok: bool


@dataclass(frozen=True, slots=True)
class SimInfo:
    """The SIM as seen through the modem."""

    pin_state: str | None
    iccid: str | None
    iccid_luhn_ok: bool | None
    iccid_source: str | None
    imsi: str | None
    retries: PinRetries | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ContextInfo:
    """One PDP context as read back; the password is never carried, only
    whether one is readable and set."""

    cid: int
    pdp_type: str
    apn: str
    active: bool | None
    auth: str | None
    user: str | None
    password_set: bool | None


@dataclass(frozen=True, slots=True)
class NetworkInfo:
    """Registration, operator and signal."""

    registrations: tuple[Registration, ...]
    operator: Operator | None
    signal: Signal | None
    quality: Signal | None


@dataclass(frozen=True, slots=True)
class PinEntryResult:
    """What ``enter_pin`` did, with the PIN1 counter around it."""

    state_before: str
    state_after: str
    sent: bool
    retries_before: int | None
    retries_after: int | None
    message: str


@dataclass(slots=True)
class Events:
    """What happened on the way that the operator should hear about."""

    notes: list[str] = field(default_factory=list)

    def add(self, note: str) -> None:
        """Record one note (duplicates kept once)."""
        if note not in self.notes:
            self.notes.append(note)


class Modem:
    """A modem behind an AT channel, speaking one dialect."""

    def __init__(
        self, channel: AtChannel, dialect: Dialect, identity: ModemIdentity, *, port: str = ""
    ) -> None:
        self.channel = channel
        self.dialect = dialect
        self.identity = identity
        self.port = port or channel.name
        self.events = Events()
        self.channel.add_hints(
            reboot_markers=dialect.reboot_markers, urc_prefixes=dialect.urc_prefixes
        )
        self.last_registration: dict[str, Registration] = {}
        # The latest SIM-status line any vendor sent (#QSS, ^SIMST, +QSIMSTAT...).
        self.last_sim_status: SimStatus | None = None
        self._unsubscribe = channel.subscribe(self._on_unsolicited)

    # -- opening ------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        port: str,
        *,
        dialect: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        tracer: AtTracer | None = None,
    ) -> Modem:
        """Open ``port``, set the channel up (echo off, numeric errors), identify.

        The dialect is detected from ``+CGMI``/``+CGMM`` unless ``dialect``
        names one.
        """
        chosen = get_dialect(dialect) if dialect else None
        channel = AtChannel(open_port(port), name=port, default_timeout=timeout, tracer=tracer)
        try:
            identity = open_and_identify(channel, key=f"port:{port}")
        except BaseException:
            channel.close()
            raise
        resolved = chosen or detect_dialect(identity.manufacturer, identity.model)
        if f"port:{port}" in _UNCHAINED:
            _UNCHAINED.add(f"dialect:{resolved.name}")  # the same modem: no second try
        return cls(channel, resolved, identity, port=port)

    def close(self) -> None:
        """Close the channel (idempotent)."""
        self._unsubscribe()
        self.channel.close()

    def __enter__(self) -> Modem:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _on_unsolicited(self, urc: Unsolicited) -> None:
        status = parse_sim_status(urc.line)
        if status is not None:
            self.last_sim_status = status
            return
        try:
            report = parse_registration(urc.line, solicited=False)
        except AtParseError:
            return
        self.last_registration[report.kind] = report

    # -- command helpers ------------------------------------------------------------
    def query(self, command: AtCommand | str, *, attempts: int = READ_ATTEMPTS) -> AtResponse:
        """Run a read-only command, asking again after garbage, a deadline or a restart."""
        cmd = at(command) if isinstance(command, str) else command
        for attempt in range(1, attempts + 1):
            try:
                return self.channel.execute(cmd)
            except ModemGarbageError:
                self.events.add(f"garbage on the port during {cmd.shown}; asked again")
                if attempt == attempts:
                    raise
            except AtTimeoutError:
                self.events.add(f"no answer to {cmd.shown} in time; asked again")
                if attempt == attempts:
                    raise
            except ModemRebootedError as error:
                self.events.add(f"modem restarted ({error.marker}) during {cmd.shown}")
                if attempt == attempts:
                    raise
                self.recover_after_reboot()
        raise AssertionError("unreachable")

    def batch(self, commands: Sequence[AtCommand], *, write: bool = False) -> list[BatchResult]:
        """Run ``commands`` on one line where the modem allows (see :func:`run_batch`).

        Reads are asked again after garbage, a deadline or a restart (as
        :meth:`query`); writes (``write=True``) run once each and stop at the
        first failure.
        """
        return run_batch(
            self.channel,
            commands,
            self.write if write else self.query,
            key=f"dialect:{self.dialect.name}",
            note=self.events.add,
            stop_at_error=write,
        )

    def write(self, command: AtCommand) -> AtResponse | None:
        """Run a command that changes the modem, once.

        Garbage next to an ``OK`` does not undo the write: it is noted and the
        caller's read-back decides. Returns ``None`` in that case.
        """
        try:
            return self.channel.execute(command)
        except ModemGarbageError as error:
            if error.final is not None and error.final.strip().upper() == "OK":
                self.events.add(
                    f"garbage on the port during {command.shown}; the modem "
                    "said OK, the read-back will tell"
                )
                return None
            raise

    def recover_after_reboot(self, limit: float = 30.0) -> None:
        """Wait for a restarted modem to answer, then set the channel up again."""
        self.channel.wait_quiet(0.3, 5.0)
        end = time.monotonic() + limit
        while True:
            try:
                prepare_channel(self.channel)
                return
            except (AtTimeoutError, ModemRebootedError, ModemGarbageError):
                if time.monotonic() >= end:
                    raise

    # -- identity and SIM ------------------------------------------------------------
    def pin_state(self) -> str:
        """``+CPIN?``: READY, SIM PIN, SIM PUK, ..."""
        return parse_cpin(self.query("AT+CPIN?").lines)

    def iccid(self) -> tuple[IccidReading, str]:
        """The SIM's ICCID and the command that gave it.

        The dialect's own command first; when it is missing or fails, EF.ICCID
        through ``AT+CRSM`` (READ BINARY, 10 bytes); when the modem refuses
        that too, the ICCID commands other firmware has (``AT+CCID``,
        ``AT+ICCID``, ``AT+QCCID``, ``AT^ICCID?``), each tried once.
        """
        spec = self.dialect.iccid
        failures: list[str] = []
        if spec is not None:
            try:
                answer = self.query(at(spec.command, prefix=spec.prefix.upper(), free_text=True))
                return parse_iccid(answer.lines, spec.prefix), spec.command
            except (AtCommandError, AtParseError) as error:
                failures.append(f"{spec.command} did not give an ICCID ({error})")
        command = f"AT+CRSM={CRSM_READ_BINARY},{EF_ICCID_FID},0,0,10"
        try:
            response = parse_crsm(self.query(at(command, prefix="+CRSM:")).lines)
            if response.sw != SW_OK:
                raise AtParseError(f"{command} answered status {response.sw:04X}", command=command)
            reading = iccid_from_file(response.data)
            if failures:
                self.events.add(f"{failures[0]}; read EF.ICCID with AT+CRSM")
            return reading, "AT+CRSM"
        except (AtCommandError, AtParseError) as error:
            failures.append(f"AT+CRSM: {error}")
        tried = {spec.command.upper()} if spec is not None else set()
        for fallback, prefix in ICCID_FALLBACKS:
            if fallback.upper() in tried:
                continue
            try:
                answer = self.query(at(fallback, prefix=prefix, free_text=True))
                reading = parse_iccid(answer.lines, prefix)
            except (AtCommandError, AtParseError) as error:
                failures.append(f"{fallback}: {error}")
                continue
            self.events.add(f"ICCID read with {fallback} ({'; '.join(failures)})")
            return reading, fallback
        raise AtParseError("no ICCID: " + "; ".join(failures))

    def imsi(self) -> str:
        """``AT+CIMI``: the IMSI (needs the SIM unlocked)."""
        return parse_imsi(self.query(at("AT+CIMI", prefix="+CIMI:", free_text=True)).lines)

    def pin_retries(self, pin_state: str | None = None) -> PinRetries:
        """PIN/PUK counters without spending an attempt.

        The dialect's vendor command when it has one and it answers; else an
        empty VERIFY (and an empty UNBLOCK for the PUK) through ``AT+CSIM``,
        which a UICC answers with ``63Cx`` (x attempts left, TS 102 221 clause
        11.1.9).
        """
        spec = self.dialect.retries
        if spec is not None:
            try:
                lines: list[str] = []
                for command in spec.commands:
                    lines += self.query(at(command, prefix=spec.prefix.upper())).lines
                state = pin_state
                if spec.kind == "pct" and state is None:
                    state = self.pin_state()
                retries = parse_retries(spec.kind, lines, spec.prefix, pin_state=state)
                if retries.pin1 is not None:
                    return retries
            except (AtCommandError, AtParseError) as error:
                self.events.add(
                    f"{', '.join(spec.commands)} gave no counter ({error}); "
                    "used an empty VERIFY through AT+CSIM"
                )
        return PinRetries(
            pin1=self._csim_counter(0x20), puk1=self._csim_counter(0x2C), source="AT+CSIM"
        )

    def _csim_counter(self, ins: int) -> int | None:
        for cla in (0x00, 0xA0):
            response = self.csim(bytes((cla, ins, 0x00, 0x01)))
            sw = int.from_bytes(response[-2:], "big")
            if sw in NOT_A_UICC and cla == 0x00:
                continue  # a GSM SIM wants class A0
            if sw & SW_RETRIES_MASK == SW_RETRIES:
                return sw & 0x0F
            if sw == SW_AUTH_METHOD_BLOCKED:
                return 0
            return None
        return None

    def csim(self, apdu: bytes, timeout: float | None = None) -> bytes:
        """Send one APDU with ``AT+CSIM``; returns data + SW (TS 27.007 clause 8.17)."""
        hexed = apdu.hex().upper()
        shown = hexed
        if len(apdu) > 5 and apdu[1] in (0x20, 0x24, 0x26, 0x28, 0x2C):
            shown = hexed[:10] + "*" * (len(hexed) - 10)  # a PIN or PUK in the data
        command = at(
            f'AT+CSIM={len(hexed)},"{hexed}"',
            shown=f'AT+CSIM={len(hexed)},"{shown}"',
            prefix="+CSIM:",
            timeout=timeout,
        )
        return parse_csim(self.channel.execute(command).lines)

    def enter_pin(
        self, pin: str, *, force: bool = False, confirm: Callable[[str], bool] | None = None
    ) -> PinEntryResult:
        """Enter PIN1 through ``AT+CPIN`` under the station's PIN policy.

        The counter is read before the attempt and the policy
        (:func:`apdu.pin.check_attempt`) decides; nothing is retried. A SIM
        that wants its PUK is refused here: unblocking is a card operation.
        """
        policy = importlib.import_module("apdu.pin")
        validate: Callable[[str, str], None] = policy.validate_pin
        check: Callable[..., None] = policy.check_attempt
        validate(pin, "PIN")
        state = self.pin_state()
        if state == "READY":
            return PinEntryResult(
                state,
                state,
                False,
                None,
                None,
                "the SIM needs no PIN (already verified or disabled)",
            )
        if state != "SIM PIN":
            raise SimStateRefusalError(
                f"the SIM is in state {state!r}; only SIM PIN can be "
                "entered here; nothing was sent",
                state=state,
                retries_before=None,
                retries_after=None,
            )
        before = self.pin_retries(state).pin1
        check("pin1", before, force=force, confirm=confirm)
        command = at(f'AT+CPIN="{pin}"', shown=f'AT+CPIN="{MASK}"', prefix=False)
        try:
            self.write(command)
        except AtCommandError as error:
            after = self._retries_after()
            raise ModemPinError(
                f"the SIM refused the PIN ({error.cme_text or error.final}); "
                f"{'unknown' if after is None else after} attempt(s) left; nothing was retried",
                state=state,
                retries_before=before,
                retries_after=after,
            ) from error
        state_after = self.pin_state()
        return PinEntryResult(
            state, state_after, True, before, self._retries_after(), "PIN accepted"
        )

    def _retries_after(self) -> int | None:
        try:
            return self.pin_retries().pin1
        except ModemError:
            return None

    def sim_info(self) -> SimInfo:
        """PIN state, ICCID, IMSI and counters; each missing piece is a note."""
        notes: list[str] = []
        state: str | None = None
        try:
            state = self.pin_state()
        except ModemError as error:
            notes.append(f"PIN state unknown: {error}")
        iccid: IccidReading | None = None
        source: str | None = None
        try:
            iccid, source = self.iccid()
        except ModemError as error:
            notes.append(f"ICCID unreadable: {error}")
        imsi: str | None = None
        try:
            imsi = self.imsi()
        except ModemError as error:
            notes.append(f"IMSI unreadable: {error}")
        retries: PinRetries | None = None
        try:
            retries = self.pin_retries(state)
        except ModemError as error:
            notes.append(f"PIN counters unreadable: {error}")
        return SimInfo(
            state,
            iccid.iccid if iccid else None,
            iccid.luhn_ok if iccid else None,
            source,
            imsi,
            retries,
            tuple(notes),
        )

    # -- network ---------------------------------------------------------------------
    def registrations(self) -> tuple[Registration, ...]:
        """Solicited ``+CREG/+CGREG/+CEREG/+C5GREG`` reports the modem supports."""
        reports: list[Registration] = []
        for kind in ("CREG", "CGREG", "CEREG", "C5GREG"):
            try:
                answer = self.query(f"AT+{kind}?")
            except AtCommandError:
                continue  # not supported (an LTE-only modem has no +C5GREG)
            for line in answer.lines:
                reports.append(parse_registration(line, solicited=True))
        return tuple(reports)

    def signal(self) -> Signal:
        """``+CSQ``."""
        return parse_csq(self.query("AT+CSQ").lines)

    def quality(self) -> Signal | None:
        """``+CESQ``; Huawei's ``^HCSQ?`` where ``+CESQ`` is refused (``None``: neither)."""
        try:
            return parse_cesq(self.query("AT+CESQ").lines)
        except AtCommandError:
            return self._vendor_quality()

    def scan_operators(self) -> list[NetworkOperator]:
        """``AT+COPS=?``: the networks in reach (can take minutes; 180 s deadline).

        Names come in the character set of ``+CSCS``; UCS2 names are decoded
        when the modem says it uses UCS2.
        """
        ucs2: bool | None = None
        try:
            line = find_line(self.query("AT+CSCS?").lines, "+CSCS:")
            ucs2 = payload_of(line, "+CSCS:").strip('"').strip().upper() == "UCS2"
        except (AtCommandError, AtParseError):
            ucs2 = None  # unknown: decode names that read as UCS2
        return parse_cops_list(self.query(at("AT+COPS=?", prefix="+COPS:")).lines, ucs2=ucs2)

    def operator(self) -> Operator:
        """``+COPS?``."""
        return parse_cops(self.query("AT+COPS?").lines)

    def network_info(self) -> NetworkInfo:
        """Registration, operator and signal: ``AT+COPS?;+CSQ;+CESQ;+CREG?;+CGREG?;+CEREG?``.

        One line where the modem allows (then ``+C5GREG?`` alone, which most
        LTE modems refuse); each failing part is treated as when asked alone:
        no operator, no quality figures, a registration kind not supported.
        """
        kinds = ("CREG", "CGREG", "CEREG")
        answers = self.batch(
            [at("AT+COPS?"), at("AT+CSQ"), at("AT+CESQ")] + [at(f"AT+{k}?") for k in kinds]
        )
        cops, csq, cesq = answers[0], answers[1], answers[2]
        operator = None if isinstance(cops, AtCommandError) else parse_cops(cops.lines)
        if isinstance(csq, AtCommandError):
            raise csq
        quality: Signal | None
        if isinstance(cesq, AtCommandError):
            quality = self._vendor_quality()
        else:
            quality = parse_cesq(cesq.lines)
        reports: list[Registration] = []
        for answer in answers[3:]:
            if isinstance(answer, AtResponse):
                reports += [parse_registration(line, solicited=True) for line in answer.lines]
        # Not supported by an LTE-only modem: then there is simply no +C5GREG report.
        with contextlib.suppress(AtCommandError):
            answer = self.query("AT+C5GREG?")
            reports += [parse_registration(line, solicited=True) for line in answer.lines]
        return NetworkInfo(tuple(reports), operator, parse_csq(csq.lines), quality)

    def _vendor_quality(self) -> Signal | None:
        if self.dialect.name != "huawei":
            return None
        try:
            return parse_hcsq(self.query(at("AT^HCSQ?", prefix="^HCSQ:")).lines)
        except AtCommandError:
            return None

    # -- PDP contexts ------------------------------------------------------------------
    def pdp_contexts(self) -> list[PdpContext]:
        """``+CGDCONT?``: every defined context."""
        return parse_cgdcont(self.query("AT+CGDCONT?").lines)

    def active_contexts(self) -> dict[int, bool]:
        """``+CGACT?``: {cid: active}; empty when the modem refuses the query."""
        try:
            return parse_cgact(self.query("AT+CGACT?").lines)
        except AtCommandError:
            return {}

    def read_auth(self, cid: int) -> AuthReading | None:
        """The dialect's credential read-back for ``cid`` (``None``: nothing set)."""
        return parse_auth_readback(self.dialect.auth, self.query(self._auth_read(cid)).lines, cid)

    def _auth_read(self, cid: int) -> AtCommand:
        spec = self.dialect.auth
        return at(
            spec.read_command.format(cid=cid),
            prefix=spec.read_prefix.upper(),
            secret_answer="password" in spec.read_order,
        )

    def contexts(self) -> list[ContextInfo]:
        """Contexts with their credentials as read back (passwords reduced to 'set').

        ``AT+CGACT?;+CGDCONT?;<credential read>`` on one line where the modem
        allows; a per-context credential read (Quectel) is asked per context.
        """
        spec = self.dialect.auth
        per_context = "{cid}" in spec.read_command
        commands = [at("AT+CGACT?"), at("AT+CGDCONT?")]
        if not per_context:
            commands.append(self._auth_read(0))
        answers = self.batch(commands)
        active = {} if isinstance(answers[0], AtCommandError) else parse_cgact(answers[0].lines)
        if isinstance(answers[1], AtCommandError):
            raise answers[1]
        infos: list[ContextInfo] = []
        for context in parse_cgdcont(answers[1].lines):
            reading: AuthReading | None = None
            try:
                if per_context:
                    reading = self.read_auth(context.cid)
                elif isinstance(answers[2], AtResponse):
                    reading = parse_auth_readback(spec, answers[2].lines, context.cid)
            except (AtCommandError, AtParseError):
                reading = None
            infos.append(
                ContextInfo(
                    cid=context.cid,
                    pdp_type=context.pdp_type,
                    apn=context.apn,
                    active=active.get(context.cid),
                    auth=None if reading is None or reading.auth is None else reading.auth.value,
                    user=None if reading is None else reading.user,
                    password_set=None
                    if reading is None or reading.password is None
                    else bool(reading.password),
                )
            )
        return infos

    def context_command(self, cid: int, pdp_type: str, apn: str) -> AtCommand:
        """``AT+CGDCONT=<cid>,"<type>","<apn>"``."""
        return at(f'AT+CGDCONT={cid},"{pdp_type}","{apn}"', prefix=False)

    def auth_command(self, cid: int, profile: ApnProfile) -> AtCommand:
        """The dialect's credential command for ``profile`` (password masked in ``shown``)."""
        return credential_command(self.dialect, cid, profile)

    # -- applying settings ---------------------------------------------------------------
    def cfun_cycle(self) -> None:
        """``AT+CFUN=0`` then ``AT+CFUN=1``: the radio restarts and re-attaches."""
        self.write(at("AT+CFUN=0", prefix=False))
        self.write(at("AT+CFUN=1", prefix=False))

    def detach_attach(self) -> None:
        """``AT+CGATT=0`` then ``AT+CGATT=1``: a new attach uses the new context."""
        self.write(at("AT+CGATT=0", prefix=False))
        self.write(at("AT+CGATT=1", prefix=False))

    def attached(self) -> bool | None:
        """``+CGATT?``: packet-domain attach state (``None`` if the modem will not say)."""
        try:
            line = find_line(self.query("AT+CGATT?").lines, "+CGATT:")
        except (AtCommandError, AtParseError):
            return None
        return payload_of(line, "+CGATT:").strip() == "1"

    def deactivate(self, cid: int) -> None:
        """``AT+CGACT=0,<cid>``."""
        self.write(at(f"AT+CGACT=0,{cid}", prefix=False))


def credential_command(dialect: Dialect, cid: int, profile: ApnProfile) -> AtCommand:
    """``dialect``'s credential command for ``profile`` on ``cid``, in the vendor's order.

    ``shown`` masks the password; the profile was checked before (no quotes or
    backslashes can reach the command line).
    """
    spec = dialect.auth
    values: dict[str, str | int] = {
        "cid": cid,
        "auth": spec.code_for(profile.auth),
        "user": profile.user,
        "password": profile.password,
        "apn": profile.apn,
        "plmn": "",
        "ctx_type": QUECTEL_CONTEXT_TYPES.get(profile.pdp_type, 1),
    }
    sent: list[str] = []
    shown: list[str] = []
    for name in spec.write_order:
        value = values[name]
        text = f'"{value}"' if name in STRING_FIELDS else str(value)
        sent.append(text)
        shown.append(f'"{MASK}"' if name == "password" and value else text)
    return at(
        f"AT{spec.command}={','.join(sent)}",
        shown=f"AT{spec.command}={','.join(shown)}",
        prefix=False,
    )


def prepare_channel(channel: AtChannel, *, probe: bool = True) -> None:
    """Prove the modem answers, then echo off and numeric ``+CME ERROR``.

    Echo and the error format are volatile (a restart brings back the
    defaults); the channel copes with either, this only makes answers shorter.
    These commands only set modes, so garbage next to their ``OK`` is harmless.
    """
    if probe:
        first = at("AT", prefix=False, timeout=min(channel.default_timeout, 3.0))
        try:
            _set_mode(channel, first)
        except AtTimeoutError:
            _set_mode(channel, first)
    _set_mode(channel, at("ATE0", prefix=False))
    try:
        _set_mode(channel, at("AT+CMEE=1", prefix=False))
    except AtCommandError:
        log.debug("%s does not take AT+CMEE=1; errors may be plain ERROR", channel.name)


def _set_mode(channel: AtChannel, command: AtCommand) -> None:
    try:
        channel.execute(command)
    except ModemGarbageError as error:
        if error.final is None or error.final.strip().upper() != "OK":
            raise


IDENTITY_COMMANDS = (
    ("AT+CGMI", "+CGMI:"),
    ("AT+CGMM", "+CGMM:"),
    ("AT+CGMR", "+CGMR:"),
    ("AT+CGSN", "+CGSN:"),
)


def open_and_identify(channel: AtChannel, *, key: str) -> ModemIdentity:
    """Echo off, numeric errors and the identity in one command line.

    ``ATE0;+CMEE=1;+CGMI;+CGMM;+CGMR;+CGSN`` is one round trip instead of
    seven. A modem that refuses it, does not answer it in time, or answers in
    a way that cannot be split gets the one-command-per-line sequence
    (:func:`prepare_channel` then :func:`read_identity`); a refusal is
    remembered under ``key``.
    """
    if key not in _UNCHAINED:
        commands = [at("ATE0", prefix=False), at("AT+CMEE=1", prefix=False)] + [
            at(command, prefix=prefix, free_text=True) for command, prefix in IDENTITY_COMMANDS
        ]
        line = chain_command(channel, commands)
        # The first line also proves the modem listens: a short deadline, as
        # for a lone AT, so a modem that lost it is asked again soon.
        line = replace(line, timeout=min(channel.default_timeout, 3.0))
        try:
            response = channel.execute(line)
        except AtCommandError:
            _UNCHAINED.add(key)
            log.debug("%s refused a chained line; one command per line", channel.name)
            # It answered: no need to prove it listens with a lone AT first.
            prepare_channel(channel, probe=False)
            return read_identity(channel)
        except (AtTimeoutError, ModemGarbageError, ModemRebootedError) as error:
            log.debug("%s: chained identification failed (%s)", channel.name, error)
        else:
            parts = split_answer(commands, response.lines)
            if parts is not None:
                try:
                    return _identity(parts[2], parts[3], parts[4], parts[5])
                except AtParseError as error:
                    log.debug("%s: chained identity does not parse (%s)", channel.name, error)
    prepare_channel(channel)
    return read_identity(channel)


def _identity(
    manufacturer: Sequence[str], model: Sequence[str], revision: Sequence[str], imei: Sequence[str]
) -> ModemIdentity:
    number = parse_imei(imei)
    return ModemIdentity(
        parse_text_answer(manufacturer),
        parse_text_answer(model),
        parse_text_answer(revision),
        number,
        luhn_valid(number[:15]),
    )


def read_identity(channel: AtChannel) -> ModemIdentity:
    """Manufacturer, model, revision and IMEI, each asked again once on garbage."""

    def ask(command: str, prefix: str) -> list[str]:
        cmd = at(command, prefix=prefix, free_text=True)
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                return list(channel.execute(cmd).lines)
            except (ModemGarbageError, AtTimeoutError):
                if attempt == READ_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    answers = [ask(command, prefix) for command, prefix in IDENTITY_COMMANDS]
    return _identity(*answers)


def auth_label(dialect: Dialect, auth: Auth) -> str:
    """How ``auth`` is carried by ``dialect`` in words (PAP-or-CHAP may become CHAP)."""
    if auth is Auth.PAP_OR_CHAP and Auth.PAP_OR_CHAP not in dialect.auth.codes:
        return "chap (pap-or-chap is sent as CHAP: the dialect has no 'either' value)"
    return auth.value


def enter_pin_on_port(
    port: str,
    pin: str,
    *,
    dialect: str | None = None,
    force: bool = False,
    confirm: Callable[[str], bool] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    tracer: AtTracer | None = None,
) -> PinEntryResult:
    """Open ``port`` and enter PIN1 under the PIN policy (see :meth:`Modem.enter_pin`)."""
    with Modem.open(port, dialect=dialect, timeout=timeout, tracer=tracer) as modem:
        return modem.enter_pin(pin, force=force, confirm=confirm)
