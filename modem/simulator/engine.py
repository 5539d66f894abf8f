"""The simulated modem: bytes from the computer in, timed bytes back out.

:class:`SimulatedModem` is transport-free. A front end (the pty server, the
``simmodem://`` pyserial handler, a unit test) feeds it what the computer
wrote with :meth:`~SimulatedModem.feed` and collects what is due with
:meth:`~SimulatedModem.take_due`; every output carries the time it becomes
visible, which is how latency, slow answers and late unsolicited lines are
modelled without any thread sleeping.

State kept: echo and ``+CMEE`` (volatile), ``+CFUN``, registration report
modes, the PDP contexts and credentials (kept across restarts, like a
modem's NV memory), attach state. The SIM is a card model (the virtual UICC
of :mod:`apdu.virtual`) behind the in-process card backend
(:class:`apdu.transport.inprocess.InProcessTransport`), read with the
station's own card layer (:mod:`apdu.card`): ICCID, IMSI, PIN counters,
``+CPIN``, ``+CRSM`` go through :class:`apdu.card.Card`, ``+CSIM`` passes
the APDU through the transport as a modem does. The dialect's commands and read-back layouts
come from :data:`modem.dialects.DIALECTS`, so the simulator and the client
share one table.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from apdu import files
from apdu.card import Card, read_iccid, read_imsi
from apdu.command import CommandApdu
from apdu.errors import SimtoolError, StatusWordError, UsageError
from apdu.status import SW_OK, SW_RETRIES, SW_RETRIES_MASK, SW_TECHNICAL_PROBLEM
from apdu.transport.inprocess import InProcessTransport
from modem.codes import EMM_CAUSES, ESM_CAUSES, cme_text
from modem.dialects import (
    QUECTEL_CONTEXT_TYPES,
    STRING_FIELDS,
    Auth,
    AuthSpec,
    Dialect,
    get_dialect,
)
from modem.errors import AtParseError
from modem.parsers import Field, split_fields
from modem.simulator.faults import DEFAULT_TARGET, Faults
from modem.simulator.vendors import VENDORS, Vendor

log = logging.getLogger(__name__)

Form = Literal["exec", "read", "test", "set"]
GARBAGE = b"\x00\xfe\xff\x1b\x13\x8a\x7f\r\n"
OPERATOR_LONG = {"44010": "NTT DOCOMO", "44020": "SoftBank", "44051": "KDDI"}
PIN1, PIN2 = 0x01, 0x81
PIN_INITIAL, PUK_INITIAL = 3, 10
_CONTEXT_TYPE_NAMES = {number: name for name, number in QUECTEL_CONTEXT_TYPES.items()}
# The simulated network's APNs and the credentials each accepts (the ijmio
# profile of the station); an empty APN gets the network's default APN.
NETWORK_APNS = {"ijmio.jp": ("mio@ij", "ij")}
# The network's name servers (addresses are handed out from RFC 1918 space).
DNS_SERVERS = ("10.45.0.53", "10.45.0.54")


class CardModel(Protocol):
    """A SIM the simulator can power and talk to (the virtual UICC is one)."""

    def power_on(self) -> bytes:
        """Power the card; return its ATR."""

    def power_off(self) -> None:
        """Remove power."""

    def process(self, command: bytes) -> bytes:
        """Answer one command APDU with data + SW."""


class CmeError(Exception):
    """A command failed with a TS 27.007 error number."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class PlainError(Exception):
    """A command the modem does not know: plain ``ERROR`` whatever ``+CMEE`` says."""


class PdpRejectedError(Exception):
    """The network refused a PDP activation with an ESM cause (TS 24.301 9.9.4.4)."""

    def __init__(self, cause: int) -> None:
        super().__init__(cause)
        self.cause = cause


@dataclass(slots=True)
class NvState:
    """What survives a restart: contexts and credentials."""

    contexts: dict[int, tuple[str, str]] = field(default_factory=lambda: {1: ("IPV4V6", "")})
    auth: dict[int, tuple[int, str, str]] = field(default_factory=dict)

    def copy(self) -> NvState:
        """A snapshot (the settings in effect until the next CFUN cycle)."""
        return NvState(dict(self.contexts), dict(self.auth))


@dataclass(slots=True)
class Volatile:
    """What a restart resets to defaults (V.250: echo on; TS 27.007: CMEE 0)."""

    echo: bool = True
    cmee: int = 0
    cfun: int = 1
    reg_modes: dict[str, int] = field(default_factory=lambda: {"CREG": 0, "CGREG": 0, "CEREG": 0})
    cops_format: int = 0
    charset: str = "IRA"
    detached: bool = False
    deactivated: set[int] = field(default_factory=set)
    activated: set[int] = field(default_factory=set)
    last_cause: int | None = None


@dataclass(slots=True)
class _SimCache:
    """What the modem learnt from the SIM since it was powered (as real basebands
    read the card once at start-up instead of disturbing its current file)."""

    iccid: str | None = None
    imsi: str | None = None
    classic: bool = False
    verified: bool = False
    pin1_enabled: bool = True
    code: str | None = None
    code_known: bool = False


def default_card(profile: str | None = None) -> CardModel:
    """A fresh virtual UICC: ``None`` or ``lab:N`` for stock card N as the lab generates
    it (``lab_profile(N)``, not the card now in lab slot N), else a named or JSON profile."""
    from apdu.virtual import VirtualUicc, lab_profile, load_profile

    if profile is None or profile.startswith("lab:") or profile == "lab":
        number = profile.split(":", 1)[1] if profile and ":" in profile else "0"
        if not number.strip().isdigit():
            raise UsageError(f"card profile {profile!r}: lab:N wants a card number N (lab:0)")
        return VirtualUicc(lab_profile(int(number)))
    return VirtualUicc(load_profile(profile))


def _sw(response: bytes) -> int:
    return int.from_bytes(response[-2:], "big") if len(response) >= 2 else SW_TECHNICAL_PROBLEM


class SimulatedModem:
    """An AT modem of one dialect, with a card and optional faults."""

    def __init__(
        self,
        dialect: str | Dialect = "generic",
        *,
        card: CardModel | None = None,
        latency: float = 0.0,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
        boot_delay: float | None = None,
    ) -> None:
        self.dialect = dialect if isinstance(dialect, Dialect) else get_dialect(dialect)
        self.vendor: Vendor = VENDORS[self.dialect.name]
        self.card: CardModel = card if card is not None else default_card()
        # The modem's SIM interface: the station's in-process card backend,
        # driven through the station's card layer.
        self.reader = InProcessTransport(self.card, name="simulated modem SIM")
        self.sim_card = Card(self.reader)
        self.latency = latency
        self.faults = faults or Faults()
        self.clock = clock
        self.boot_delay = boot_delay if boot_delay is not None else max(0.05, 5 * latency)
        self.nv = NvState()
        self.applied = self.nv.copy()
        self.state = Volatile()
        self.commands = 0
        self.answers = 0
        # Command lines received, oldest first (tests check what reached the modem).
        self.history: deque[str] = deque(maxlen=2000)
        self._out: list[tuple[float, int, bytes]] = []
        self._seq = itertools.count()
        self._inbuf = bytearray()
        self._busy_until = 0.0
        self._booting_until = 0.0
        self._powered = False
        self._sim = _SimCache()
        self._noanswer_done = False
        self._reboot_done = False
        self._registered_before = False
        # The SIM tray: pulled out, or wedged (never answers AT+CSIM).
        self._sim_out = False
        self._sim_stalled = False
        self._power_card(True)
        self._registered_before = self._registered()

    # -- I/O ------------------------------------------------------------------------
    def feed(self, data: bytes, now: float | None = None) -> None:
        """Take bytes written by the computer; complete lines are executed."""
        moment = self.clock() if now is None else now
        for byte in data:
            if byte == 0x0D:
                line = bytes(self._inbuf).decode("latin-1")
                self._inbuf.clear()
                self._line(line, moment)
            elif byte == 0x0A:
                continue
            elif byte in (0x08, 0x7F):
                del self._inbuf[-1:]
            elif len(self._inbuf) < 4096:
                self._inbuf.append(byte)

    def take_due(self, now: float | None = None) -> bytes:
        """Everything whose time has come, in order."""
        moment = self.clock() if now is None else now
        parts: list[bytes] = []
        while self._out and self._out[0][0] <= moment:
            parts.append(heapq.heappop(self._out)[2])
        return b"".join(parts)

    def due_size(self, now: float | None = None) -> int:
        """How many bytes are visible now (for ``in_waiting``)."""
        moment = self.clock() if now is None else now
        return sum(len(item[2]) for item in self._out if item[0] <= moment)

    def feed_back(self, data: bytes) -> None:
        """Put back bytes a reader took but could not use; they come out first."""
        if data:
            heapq.heappush(self._out, (float("-inf"), next(self._seq), data))

    def next_due(self) -> float | None:
        """When the next output becomes visible (``None``: nothing pending)."""
        return self._out[0][0] if self._out else None

    def _emit(self, at: float, data: bytes) -> None:
        heapq.heappush(self._out, (at, next(self._seq), data))

    # -- command lines ------------------------------------------------------------------
    def _line(self, line: str, now: float) -> None:
        if now < self._booting_until:
            return  # a restarting modem hears nothing
        text = line.strip()
        if not text:
            return
        if self.state.echo or self.faults.echo:
            self._emit(now, line.encode("latin-1") + b"\r")
        self.commands += 1
        upper = text.upper()
        # The history is for tests; a PIN or PUK never goes into it.
        self.history.append('AT+CPIN="****"' if upper.startswith("AT+CPIN=") else text)
        if not upper.startswith("AT"):
            self._answer(now, [], "ERROR")
            return
        if self._fires("reboot", upper):
            self._reboot_done = True
            self._restart(now)
            return
        if self._fires("noanswer", upper):
            self._noanswer_done = True
            log.info("simulated modem swallows a command (%s)", upper.split("=")[0])
            return
        if self.faults.mute is not None and self._matches(self.faults.mute, upper):
            return
        if self._sim_stalled and upper.startswith("AT+CSIM="):
            return
        if self.faults.nochain and len(_split_commands(text[2:])) > 1:
            self._answer(now, [], "ERROR")
            return
        if self.faults.cme_odd is not None and self._matches(self.faults.cme_odd, upper):
            self._answer(now, [], "+CME ERROR: \u00b2")
            return
        if any(self._matches(target, upper) for target in self.faults.refuse):
            self._answer(now, [], self._cme(4))
            return
        lines, final = self._run_line(text[2:])
        if self.faults.spaces:
            lines = [_blank_after_commas(line) for line in lines]
        self._answer(now, lines, final)

    def _fires(self, fault: str, upper: str) -> bool:
        target = self.faults.reboot if fault == "reboot" else self.faults.noanswer
        done = self._reboot_done if fault == "reboot" else self._noanswer_done
        return target is not None and not done and self._matches(target, upper)

    def _matches(self, target: str, upper: str) -> bool:
        # A target matches any command of a chained line (AT+CGDCONT=...;+QICSGP=...).
        parts = ["AT" + part for part in _split_commands(upper[2:])] if upper[:2] == "AT" else []
        if target == DEFAULT_TARGET:
            command = f"AT{self.dialect.auth.command}=".upper()
            return any(part.startswith(command) and "," in part for part in parts)
        wanted = target if target.startswith("AT") else "AT" + target
        return any(part.startswith(wanted) for part in parts)

    def _run_line(self, body: str) -> tuple[list[str], str]:
        lines: list[str] = []
        for part in _split_commands(body):
            try:
                lines += self._run(part)
            except CmeError as error:
                return lines, self._cme(error.code)
            except PlainError:
                return lines, "ERROR"
            except PdpRejectedError as rejected:
                return lines, self._pdp_reject_final(rejected.cause)
            except AtParseError:
                return lines, self._cme(50)
        return lines, "OK"

    def _pdp_reject_final(self, cause: int) -> str:
        style = self.vendor.pdp_reject
        if style == "plain":
            return "ERROR"
        if style == "gprs":
            return self._cme(149 if cause == 29 else 148)
        return self._cme(100 + cause if 26 <= cause <= 34 else 148)

    def _cme(self, code: int) -> str:
        if self.faults.cmee_text or self.state.cmee == 2:
            return f"+CME ERROR: {cme_text(code)}"
        if self.state.cmee == 1:
            return f"+CME ERROR: {code}"
        return "ERROR"

    def _answer(self, now: float, lines: list[str], final: str) -> None:
        start = max(now, self._busy_until)
        due = start + self.latency + self.faults.slow
        self._busy_until = due
        self.answers += 1
        blob = bytearray()
        if self.faults.garbage_every and self.answers % self.faults.garbage_every == 0:
            blob += GARBAGE
        chatter = self._chatter() if self.faults.urc else None
        where = self.answers % 3
        if chatter and where == 0:
            blob += _frame(chatter)
        for index, line in enumerate(lines):
            blob += _frame(line)
            if chatter and where == 1 and index == 0:
                blob += _frame(chatter)
        if chatter and where == 1 and not lines:
            blob += _frame(chatter)
        blob += _frame(final)
        self._emit(due, bytes(blob))
        if chatter and where == 2:
            self._emit(due + self.latency / 2, _frame(chatter))
        self._network_changed(due)

    def _chatter(self) -> str:
        choices = [*self.vendor.chatter, self._registration_urc("CEREG")]
        return choices[self.answers % len(choices)]

    # -- restart and power ------------------------------------------------------------------
    def _restart(self, now: float) -> None:
        """Lose the command, come back after ``boot_delay`` with defaults and boot URCs."""
        log.info("simulated modem restarts")
        self._booting_until = now + self.boot_delay
        self._busy_until = self._booting_until
        self.state = Volatile()
        self._power_card(False)
        self._power_card(True)
        self.applied = self.nv.copy()
        cpin = self._cpin_code_or_none() or "NOT READY"
        blob = b"".join(_frame(urc.replace("{cpin}", cpin)) for urc in self.vendor.boot_urcs)
        self._emit(self._booting_until, blob)
        self._registered_before = self._registered()

    # -- the SIM tray (the pty server's control input drives it) ----------------------
    def pull_sim(self) -> None:
        """Take the SIM out: it loses power; SIM commands answer ``+CME ERROR: 10``."""
        self._sim_out = True
        self._power_card(False)

    def insert_sim(self) -> None:
        """Put the SIM back (powered again, answering)."""
        self._sim_out = False
        self._sim_stalled = False
        self._power_card(True)

    def stall_sim(self) -> None:
        """The SIM stops answering: ``AT+CSIM`` gets no answer at all, as on a modem
        waiting for a wedged card."""
        self._sim_stalled = True

    def _power_card(self, on: bool) -> None:
        if on and self._sim_out:
            return
        if on and not self._powered:
            self.reader.connect()
            self._powered = True
            self._sim = _SimCache()
            self.sim_card = Card(self.reader)
            try:
                self._sim.classic = self.sim_card.detect() == "sim"
            except SimtoolError:
                log.info("the simulated SIM does not answer SELECT MF")
            self._read_iccid()
            if not self._sim.classic:
                self._sim.pin1_enabled = self._pin1_enabled()
        elif not on and self._powered:
            self.reader.disconnect()
            self._powered = False
            self._sim = _SimCache()

    # -- network ---------------------------------------------------------------------------
    def _registered(self) -> bool:
        return self._may_attach() and self.faults.reg_denied is None

    def _may_attach(self) -> bool:
        """Radio on and the SIM ready: the modem asks the network to attach."""
        return self.state.cfun == 1 and self._powered and self._cpin_code_or_none() == "READY"

    def _attached(self) -> bool:
        return self._registered() and not self.state.detached

    def _active(self, cid: int) -> bool:
        if not self._attached() or cid not in self.nv.contexts or cid in self.state.deactivated:
            return False
        if cid in self.state.activated:
            return True
        # Context 1 is the LTE default bearer: up after the attach when the
        # network accepted the settings in force at that attach.
        return cid == 1 and self._verdict(cid, self.applied) is None

    def _verdict(self, cid: int, view: NvState) -> int | None:
        """The network's answer to activating ``cid`` with ``view``: None or an ESM cause."""
        _, apn = view.contexts.get(cid, ("IP", ""))
        code, user, password = view.auth.get(cid, (0, "", ""))
        if not apn:
            return None  # the network's default APN, no authentication
        wanted = NETWORK_APNS.get(apn.lower())
        if wanted is None:
            return 27  # missing or unknown APN
        auth = self.dialect.auth.auth_for(code)
        allowed = {Auth.PAP, Auth.CHAP, Auth.PAP_OR_CHAP}
        if self.faults.net_auth == "pap":
            allowed = {Auth.PAP, Auth.PAP_OR_CHAP}
        elif self.faults.net_auth == "chap":
            allowed = {Auth.CHAP, Auth.PAP_OR_CHAP}
        if auth not in allowed or (user, password) != wanted:
            return 29  # user authentication failed
        return None

    def _address(self, cid: int) -> str:
        return f"10.45.{cid}.7"

    def _network_changed(self, at: float) -> None:
        now_registered = self._registered()
        if now_registered == self._registered_before:
            return
        self._registered_before = now_registered
        blob = bytearray()
        for kind, mode in self.state.reg_modes.items():
            if mode >= 1:
                blob += _frame(self._registration_urc(kind))
        if blob:
            self._emit(at + self.latency, bytes(blob))

    def _reg_stat(self) -> int:
        if self._registered():
            return 1
        if self.faults.reg_denied is not None and self._may_attach():
            return 3  # registration denied (TS 27.007 clause 7.2)
        return 2 if self.state.cfun == 1 and self._powered else 0

    def _registration_urc(self, kind: str) -> str:
        stat = self._reg_stat()
        if stat == 1 and self.state.reg_modes.get(kind, 0) >= 2:
            return f'+{kind}: {stat},"1A2B","01A2B3C4",7'
        return f"+{kind}: {stat}"

    def _plmn(self) -> str | None:
        imsi = self._imsi_or_none()
        if imsi is None:
            return None
        return imsi[:5]

    # -- the SIM through the card layer ---------------------------------------------------------
    def _read_iccid(self) -> str | None:
        try:
            self._sim.iccid = read_iccid(self.reader)
        except (SimtoolError, ValueError):
            return None
        return self._sim.iccid

    def _imsi_or_none(self) -> str | None:
        if self._sim.imsi is not None:
            return self._sim.imsi
        if not self._powered:
            return None
        try:
            self._sim.imsi = read_imsi(self.reader)
        except (SimtoolError, ValueError):
            return None
        return self._sim.imsi

    def _counters(self) -> tuple[int, int, int, int]:
        """(PIN1, PUK1, PIN2, PUK2) attempts left, spending nothing (``Card.pin_counter``).

        TS 102 221 clause 11.1.9: a VERIFY without data reads the counter and
        spends nothing. Many UICCs answer 9000 instead once the PIN is verified
        (or disabled): the counter is then not revealed, and is not 0. A GSM SIM
        has no such query; its counters are in DF.GSM's SELECT response.
        """
        values: list[int] = []
        for which, reference, puk in (
            ("pin1", PIN1, False),
            ("puk1", PIN1, True),
            ("pin2", PIN2, False),
            ("puk2", PIN2, True),
        ):
            try:
                retries, _ = self.sim_card.pin_counter(which)
            except SimtoolError:
                values.append(0)
                continue
            values.append(
                retries if retries is not None else self._counter_not_revealed(reference, puk)
            )
        return values[0], values[1], values[2], values[3]

    def _counter_not_revealed(self, reference: int, puk: bool) -> int:
        """The counter behind a 9000 to an empty VERIFY/UNBLOCK.

        The card model's inspection when it has one; otherwise the initial
        value, which is where a successful verification leaves the counter
        (TS 102 221 clause 11.1.9.1.1: 3 for a PIN; 10 for its PUK, clause
        11.1.13.1.1), as the baseband that verified it knows.
        """
        inspect = getattr(self.card, "pin_state", None)
        if callable(inspect):
            retries, _, puk_retries = inspect(reference)
            return int(puk_retries if puk else retries)
        return PUK_INITIAL if puk else PIN_INITIAL

    def _pin1_enabled(self) -> bool:
        """PIN1 enabled, from the PIN status template in the USIM's FCP."""
        try:
            fcp = self.sim_card.select_aid(files.USIM_AID_PREFIX, fcp=True)
        except SimtoolError:
            return True
        status = None if fcp is None else fcp.pin_status
        return True if status is None else status.enabled(PIN1)

    def _cpin_code_or_none(self) -> str | None:
        """The ``+CPIN`` code (``None``: no usable SIM), cached until a PIN changes."""
        if not self._powered:
            return None
        if not self._sim.code_known:
            self._sim.code = self._read_cpin_code()
            self._sim.code_known = True
        return self._sim.code

    def _read_cpin_code(self) -> str | None:
        if self._sim.classic:
            # TS 51.011 clause 9.2.1: DF.GSM's SELECT response holds CHV1's
            # state and counters.
            try:
                self.sim_card.select(0x3F00)
                gsm = self.sim_card.select(files.DF_GSM.fid, fcp=True)
            except SimtoolError:
                return None
            info = None if gsm is None else gsm.gsm
            if info is None or info.chv1 is None:
                return "READY"
            puk = info.unblock_chv1.retries if info.unblock_chv1 is not None else 0
            if info.chv1.retries == 0:
                return "SIM PUK" if puk else None
            enabled = info.chv1_enabled is not False
            return "SIM PIN" if enabled and not self._sim.verified else "READY"
        pin1, puk1, _, _ = self._counters()
        if pin1 == 0:
            return "SIM PUK" if puk1 else None
        # The modem knows whether it verified PIN1 itself; the card's empty
        # VERIFY only tells the counter (TS 102 221 clause 11.1.9).
        if self._sim.verified or not self._sim.pin1_enabled:
            return "READY"
        return "SIM PIN"

    def _pin_changed(self) -> None:
        self._sim.code_known = False
        self._sim.imsi = None

    def _require_sim_ready(self) -> None:
        if self._sim_out:
            raise CmeError(10)
        if not self._powered:
            raise CmeError(13)
        code = self._cpin_code_or_none()
        if code == "SIM PIN":
            raise CmeError(11)
        if code == "SIM PUK":
            raise CmeError(12)
        if code != "READY":
            raise CmeError(13)

    # -- dispatch ------------------------------------------------------------------------------
    def _run(self, part: str) -> list[str]:
        upper = part.upper()
        if not upper or upper[0] not in "+^$#!%*":
            return self._basic(upper)
        name, form, args = _parse_extended(part)
        dialect = self.dialect
        spec = dialect.auth
        if name == spec.command.upper():
            return self._auth(form, args)
        if dialect.iccid is not None and name == _name_of(dialect.iccid.command):
            if form in ("exec", "read"):
                return self._vendor_iccid()
            raise PlainError()
        if dialect.retries is not None and name == _name_of(dialect.retries.commands[0]):
            return self._vendor_retries(dialect, form, args)
        handler = self._handlers().get(name)
        if handler is None:
            raise PlainError()
        return handler(form, args)

    def _handlers(self) -> dict[str, Callable[[Form, list[Field]], list[str]]]:
        vendor = self.vendor
        identity = {
            "+CGMI": vendor.manufacturer,
            "+GMI": vendor.manufacturer,
            "+CGMM": vendor.model,
            "+GMM": vendor.model,
            "+CGMR": vendor.revision,
            "+GMR": vendor.revision,
            "+CGSN": vendor.imei,
            "+GSN": vendor.imei,
        }
        table: dict[str, Callable[[Form, list[Field]], list[str]]] = {
            "+CMEE": self._cmd_cmee,
            "+CIMI": self._cmd_cimi,
            "+CPIN": self._cmd_cpin,
            "+CFUN": self._cmd_cfun,
            "+C5GREG": self._cmd_unsupported,
            "+CSQ": self._cmd_csq,
            "+CESQ": self._cmd_cesq,
            "+COPS": self._cmd_cops,
            "+CGATT": self._cmd_cgatt,
            "+CGACT": self._cmd_cgact,
            "+CGDCONT": self._cmd_cgdcont,
            "+CSIM": self._cmd_csim,
            "+CRSM": self._cmd_crsm,
            "+CPINR": self._cmd_cpinr,
            "+CGCONTRDP": self._cmd_cgcontrdp,
            "+CGPADDR": self._cmd_cgpaddr,
            "+CEER": self._cmd_ceer,
            "+CSCS": self._cmd_cscs,
        }
        if self.dialect.name == "huawei":
            table["^HCSQ"] = self._cmd_hcsq
        ccid = self._cmd_ccid
        table["+CCID"] = lambda form, args: [f"+CCID: {line}" for line in ccid(form, args)]
        table["+ICCID"] = lambda form, args: [f"+ICCID: {line}" for line in ccid(form, args)]
        for name, text in identity.items():
            table[name] = _fixed_answer(text)
        for kind in ("CREG", "CGREG", "CEREG"):
            table[f"+{kind}"] = _registration_handler(self, kind)
        return table

    def _basic(self, upper: str) -> list[str]:
        if upper == "":
            return []
        if upper in ("E0", "E1", "E"):
            self.state.echo = upper == "E1"
            return []
        if upper in ("I", "I0"):
            return [
                self.vendor.manufacturer,
                self.vendor.model,
                f"Revision: {self.vendor.revision}",
            ]
        if upper in ("Z", "Z0", "&F", "&F0"):
            self.state.echo, self.state.cmee = True, 0
            return []
        if upper in ("V1", "Q0", "&C1", "&D2", "&W"):
            return []
        raise PlainError()

    # -- generic commands ----------------------------------------------------------------------
    def _cmd_unsupported(self, form: Form, args: list[Field]) -> list[str]:
        raise CmeError(4)

    def _cmd_cmee(self, form: Form, args: list[Field]) -> list[str]:
        if form == "read":
            return [f"+CMEE: {self.state.cmee}"]
        if form == "test":
            return ["+CMEE: (0-2)"]
        value = _int_arg(args, 0)
        if value not in (0, 1, 2):
            raise CmeError(50)
        self.state.cmee = value
        return []

    def _cmd_cimi(self, form: Form, args: list[Field]) -> list[str]:
        if form == "test":
            return []
        self._require_sim_ready()
        imsi = self._imsi_or_none()
        if imsi is None:
            raise CmeError(13)
        return [imsi]

    def _cmd_cpin(self, form: Form, args: list[Field]) -> list[str]:
        if form == "test":
            return []
        if form == "read":
            if not self._powered:
                raise CmeError(13)
            code = self._cpin_code_or_none()
            if code is None:
                raise CmeError(13)
            return [f"+CPIN: {code}"]
        if form != "set" or not args:
            raise CmeError(50)
        code = self._cpin_code_or_none()
        if code == "READY":
            raise CmeError(3)
        try:
            if code == "SIM PIN":
                sw = self.sim_card.verify_pin("pin1", args[0].text).sw
            elif code == "SIM PUK" and len(args) >= 2:
                sw = self.sim_card.unblock_pin("pin1", args[0].text, args[1].text).sw
            else:
                raise CmeError(13 if code is None else 50)
        except SimtoolError:
            # A PIN the card layer refuses to encode (not 4 to 8 digits) never
            # reaches the card: nothing was spent.
            raise CmeError(50) from None
        self._pin_changed()
        if sw == SW_OK:
            self._sim.verified = True
            return []
        if sw & SW_RETRIES_MASK == SW_RETRIES and sw & 0x0F:
            raise CmeError(16)
        raise CmeError(12 if code == "SIM PIN" else 13)

    def _cmd_cpinr(self, form: Form, args: list[Field]) -> list[str]:
        if form != "set":
            raise CmeError(50 if form != "test" else 4)
        pin1, puk1, pin2, puk2 = self._counters()
        table = {
            "SIM PIN": (pin1, 3),
            "SIM PUK": (puk1, 10),
            "SIM PIN2": (pin2, 3),
            "SIM PUK2": (puk2, 10),
        }
        wanted = args[0].text.upper() if args else ""
        if wanted not in table:
            raise CmeError(50)
        retries, default = table[wanted]
        return [f'+CPINR: "{wanted}",{retries},{default}']

    def _cmd_cfun(self, form: Form, args: list[Field]) -> list[str]:
        if form == "read":
            return [f"+CFUN: {self.state.cfun}"]
        if form == "test":
            return ["+CFUN: (0,1,4),(0-1)"]
        value = _int_arg(args, 0)
        if value not in (0, 1, 4):
            raise CmeError(50)
        before = self.state.cfun
        self.state.cfun = value
        if value == 0:
            self._power_card(False)
        else:
            self._power_card(True)
        if value == 1 and before != 1:
            self.applied = self.nv.copy()
            self.state.detached = False
            self.state.deactivated.clear()
            self.state.activated.clear()
        return []

    def _registration(self, kind: str, form: Form, args: list[Field]) -> list[str]:
        if form == "test":
            return [f"+{kind}: (0-2)"]
        if form == "set":
            mode = _int_arg(args, 0)
            if mode not in (0, 1, 2):
                raise CmeError(50)
            self.state.reg_modes[kind] = mode
            return []
        mode = self.state.reg_modes.get(kind, 0)
        stat = self._reg_stat()
        if mode >= 2 and stat == 1:
            return [f'+{kind}: {mode},{stat},"1A2B","01A2B3C4",7']
        return [f"+{kind}: {mode},{stat}"]

    def _cmd_csq(self, form: Form, args: list[Field]) -> list[str]:
        if form == "test":
            return ["+CSQ: (0-31,99),(0-7,99)"]
        return ["+CSQ: 20,99" if self._registered() else "+CSQ: 99,99"]

    def _cmd_cesq(self, form: Form, args: list[Field]) -> list[str]:
        if form == "test":
            return ["+CESQ: (0-63,99),(0-7,99),(0-96,255),(0-49,255),(0-34,255),(0-97,255)"]
        if self._registered():
            return ["+CESQ: 99,99,255,255,26,48"]
        return ["+CESQ: 99,99,255,255,255,255"]

    def _cmd_cops(self, form: Form, args: list[Field]) -> list[str]:
        plmn = self._plmn() if self._registered() else None
        long_name = OPERATOR_LONG.get(plmn or "", f"PLMN {plmn}")
        if form == "test":
            if plmn is None:
                return ["+COPS: ,,(0-4),(0-2)"]
            names = [long_name, long_name.split()[-1]]
            if self.state.charset == "UCS2":
                names = [name.encode("utf-16-be").hex().upper() for name in names]
            return [f'+COPS: (2,"{names[0]}","{names[1]}","{plmn}",7),,(0-4),(0-2)']
        if form == "set":
            mode = _int_arg(args, 0)
            if mode == 3:
                fmt = _int_arg(args, 1)
                if fmt not in (0, 1, 2):
                    raise CmeError(50)
                self.state.cops_format = fmt
                return []
            if mode in (0, 1, 4):
                return []
            if mode == 2:
                self.state.detached = True
                return []
            raise CmeError(50)
        if plmn is None:
            return ["+COPS: 0"]
        fmt = self.state.cops_format
        name = {0: long_name, 1: long_name.split()[-1], 2: plmn}[fmt]
        return [f'+COPS: 0,{fmt},"{name}",7']

    def _cmd_cgatt(self, form: Form, args: list[Field]) -> list[str]:
        if form == "read":
            return [f"+CGATT: {1 if self._attached() else 0}"]
        if form == "test":
            return ["+CGATT: (0-1)"]
        value = _int_arg(args, 0)
        if value == 0:
            self.state.detached = True
            return []
        if value == 1:
            if not self._registered():
                raise CmeError(30)
            self.state.detached = False
            self.state.deactivated.clear()
            self.state.activated.clear()
            if not self.faults.cfun_apply:
                self.applied = self.nv.copy()
            return []
        raise CmeError(50)

    def _cmd_cgact(self, form: Form, args: list[Field]) -> list[str]:
        if form == "read":
            return [
                f"+CGACT: {cid},{1 if self._active(cid) else 0}" for cid in sorted(self.nv.contexts)
            ]
        if form == "test":
            return ["+CGACT: (0-1)"]
        state = _int_arg(args, 0)
        cids = [_int_arg(args, i) for i in range(1, len(args))] or sorted(self.nv.contexts)
        for cid in cids:
            if cid not in self.nv.contexts:
                raise CmeError(50)
            if state == 0:
                self.state.deactivated.add(cid)
                self.state.activated.discard(cid)
            elif state == 1:
                if not self._attached():
                    raise CmeError(30)
                if self._active(cid):
                    continue
                view = self.applied if self.faults.cfun_apply else self.nv
                cause = self._verdict(cid, view)
                self.state.last_cause = cause
                if cause is not None:
                    raise PdpRejectedError(cause)
                self.state.deactivated.discard(cid)
                self.state.activated.add(cid)
            else:
                raise CmeError(50)
        return []

    def _cmd_cgcontrdp(self, form: Form, args: list[Field]) -> list[str]:
        """TS 27.007 clause 10.1.23: addresses and name servers of active contexts."""
        if form == "test":
            return ["+CGCONTRDP: (" + ",".join(str(c) for c in sorted(self.nv.contexts)) + ")"]
        wanted = [_int_arg(args, 0)] if args else sorted(self.nv.contexts)
        lines = []
        for cid in wanted:
            if not self._active(cid):
                continue
            _, apn = self.nv.contexts[cid]
            shown = self._with_operator_id(apn) if apn else "internet.default"
            address = self._address(cid)
            gateway = address.rsplit(".", 1)[0] + ".1"
            lines.append(
                f'+CGCONTRDP: {cid},{4 + cid},"{shown}","{address}.255.255.255.0",'
                f'"{gateway}","{DNS_SERVERS[0]}","{DNS_SERVERS[1]}"'
            )
        return lines

    def _cmd_cgpaddr(self, form: Form, args: list[Field]) -> list[str]:
        """TS 27.007 clause 10.1.14: the address of each context."""
        if form == "test":
            return ["+CGPADDR: (" + ",".join(str(c) for c in sorted(self.nv.contexts)) + ")"]
        wanted = [_int_arg(args, i) for i in range(len(args))] or sorted(self.nv.contexts)
        return [
            f'+CGPADDR: {cid},"{self._address(cid)}"' if self._active(cid) else f"+CGPADDR: {cid}"
            for cid in wanted
        ]

    def _cmd_ceer(self, form: Form, args: list[Field]) -> list[str]:
        """TS 27.007 clause 6.10, in the vendor's words: why the last activation failed."""
        if form == "test":
            return []
        cause = self.state.last_cause
        if cause is None and self._reg_stat() == 3 and self.faults.reg_denied is not None:
            # The attach reject: an EMM cause, in words every vendor here uses.
            denied = self.faults.reg_denied
            return [f"+CEER: EMM cause #{denied}, {EMM_CAUSES.get(denied, 'unknown cause')}"]
        if cause is None:
            return ["+CEER: No report available"]
        text = ESM_CAUSES.get(cause, f"cause {cause}")
        return [self.vendor.ceer.format(cause=cause, text=text)]

    def _cmd_cscs(self, form: Form, args: list[Field]) -> list[str]:
        """TS 27.007 clause 5.5: the character set of text in answers."""
        if form == "read":
            return [f'+CSCS: "{self.state.charset}"']
        if form == "test":
            return ['+CSCS: ("IRA","GSM","UCS2")']
        wanted = args[0].text.upper() if args else ""
        if wanted not in ("IRA", "GSM", "UCS2"):
            raise CmeError(50)
        self.state.charset = wanted
        return []

    def _cmd_hcsq(self, form: Form, args: list[Field]) -> list[str]:
        """Huawei ``^HCSQ?``: LTE rssi, rsrp, sinr, rsrq in the vendor's steps."""
        if form == "test":
            return ['^HCSQ: "NOSERVICE","GSM","WCDMA","LTE"']
        if not self._registered():
            return ['^HCSQ: "NOSERVICE"']
        return ['^HCSQ: "LTE",53,46,151,23']

    def _cmd_ccid(self, form: Form, args: list[Field]) -> list[str]:
        """``AT+CCID`` / ``AT+ICCID``, which many modems answer besides their own command."""
        if form == "test":
            return []
        if not self._powered:
            raise CmeError(13)
        iccid = self._sim.iccid or self._read_iccid()
        if iccid is None:
            raise CmeError(13)
        return [iccid]

    def _cmd_cgdcont(self, form: Form, args: list[Field]) -> list[str]:
        if form == "test":
            return [
                '+CGDCONT: (1-24),"IP",,,(0-2),(0-4)',
                '+CGDCONT: (1-24),"IPV6",,,(0-2),(0-4)',
                '+CGDCONT: (1-24),"IPV4V6",,,(0-2),(0-4)',
            ]
        view = self.applied if self.faults.cfun_apply else self.nv
        if form == "read":
            lines = []
            for cid, (pdp_type, apn) in sorted(view.contexts.items()):
                shown = apn
                if apn and self._active(cid) and self.vendor.apn_operator_suffix:
                    shown = self._with_operator_id(apn)
                lines.append(f'+CGDCONT: {cid},"{pdp_type}","{shown}","0.0.0.0",0,0')
            return lines
        cid = _int_arg(args, 0)
        if not 1 <= cid <= 24:
            raise CmeError(50)
        if len(args) == 1:
            self.nv.contexts.pop(cid, None)
            self.nv.auth.pop(cid, None)
            return []
        pdp_type = args[1].text.upper()
        if pdp_type not in QUECTEL_CONTEXT_TYPES:
            raise CmeError(50)
        apn = args[2].text if len(args) > 2 else ""
        self.nv.contexts[cid] = (pdp_type, apn)
        return []

    def _with_operator_id(self, apn: str) -> str:
        imsi = self._imsi_or_none()
        if imsi is None:
            return apn
        return f"{apn}.mnc{int(imsi[3:5]):03d}.mcc{imsi[:3]}.gprs"

    def _cmd_csim(self, form: Form, args: list[Field]) -> list[str]:
        if form == "test":
            return []
        if form != "set" or len(args) < 2:
            raise CmeError(50)
        length = _int_arg(args, 0)
        text = args[1].text
        if length != len(text) or len(text) % 2 or len(text) < 8:
            raise CmeError(50)
        try:
            command = bytes.fromhex(text)
        except ValueError:
            raise CmeError(50) from None
        if self._sim_out:
            raise CmeError(10)
        if not self._powered:
            raise CmeError(13)
        try:
            answer = self.reader.transmit(command).to_bytes()
        except SimtoolError:
            raise CmeError(13) from None
        self._watch_pin_apdu(command, answer)
        response = answer.hex().upper()
        return [f'+CSIM: {len(response)},"{response}"']

    def _watch_pin_apdu(self, command: bytes, answer: bytes) -> None:
        """Keep the modem's view of PIN1 right when the computer runs PIN APDUs itself."""
        if len(command) < 4 or command[1] not in (0x20, 0x24, 0x26, 0x28, 0x2C):
            return
        self._pin_changed()
        if command[3] != PIN1 or _sw(answer) != SW_OK or len(command) <= 5:
            return
        if command[1] in (0x20, 0x24, 0x2C):
            self._sim.verified = True
        elif command[1] == 0x26:
            self._sim.pin1_enabled = False
        else:
            self._sim.pin1_enabled = True
            self._sim.verified = True

    def _cmd_crsm(self, form: Form, args: list[Field]) -> list[str]:
        if form == "test":
            return []
        if form != "set" or len(args) < 2:
            raise CmeError(50)
        if not self._powered:
            raise CmeError(13)
        command = _int_arg(args, 0)
        fid = _int_arg(args, 1)
        p1, p2, p3 = (
            _int_arg(args, i) if len(args) > i and not args[i].empty else 0 for i in (2, 3, 4)
        )
        path = args[6].text.upper() if len(args) > 6 else ""
        if path.startswith("3F00"):
            path = path[4:]
        ins = {176: 0xB0, 178: 0xB2, 192: 0xC0, 242: 0xF2}.get(command)
        if ins is None:
            raise CmeError(4)
        card = self.sim_card
        try:
            route = [int(path[i : i + 4], 16) for i in range(0, len(path), 4)]
        except ValueError:
            raise CmeError(50) from None
        try:
            self._crsm_select(card, route, fid)
            if command == 192:
                # GET RESPONSE: the file's FCP (GSM response on a SIM), which a
                # SELECT asking for it returns (Card.send fetches 61xx/9Fxx).
                if card.card_type == "sim":
                    select = CommandApdu(card.cla, 0xA4, 0, 0, fid.to_bytes(2, "big"))
                else:
                    select = CommandApdu(card.cla, 0xA4, 0, 0x04, fid.to_bytes(2, "big"), le=256)
                answer = card.send(select)
            else:
                answer = card.send(CommandApdu(card.cla, ins, p1, p2, le=p3 or 256))
        except StatusWordError as error:
            return [f"+CRSM: {error.sw >> 8},{error.sw & 0xFF}"]
        except SimtoolError:
            raise CmeError(13) from None
        sw, text = answer.sw, answer.data.hex().upper()
        return [
            f'+CRSM: {sw >> 8},{sw & 0xFF},"{text}"' if text else f"+CRSM: {sw >> 8},{sw & 0xFF}"
        ]

    def _crsm_select(self, card: Card, route: list[int], fid: int) -> None:
        """Select the EF of an ``AT+CRSM`` (TS 27.007 clause 8.18) through the card layer.

        With a path, by path from the MF; an EF under DF.GSM/ADF.USIM (6Fxx)
        without one, in the USIM application (DF.GSM on a SIM); else from the MF.
        """
        if route:
            card.select_path([*route, fid])
        elif fid >> 8 == 0x6F and self._sim.classic:
            card.select_path([files.DF_GSM.fid, fid])
        elif fid >> 8 == 0x6F:
            card.select_aid(files.USIM_AID_PREFIX, fcp=False)
            card.select(fid)
        else:
            card.select_path([fid])

    # -- dialect-specific commands ------------------------------------------------------------
    def _vendor_iccid(self) -> list[str]:
        if not self._powered:
            raise CmeError(13)
        iccid = self._sim.iccid or self._read_iccid()
        if iccid is None:
            raise CmeError(13)
        assert self.dialect.iccid is not None
        shown = iccid + "F" if self.vendor.iccid_pad_f and len(iccid) == 19 else iccid
        return [f"{self.dialect.iccid.prefix} {shown}"]

    def _vendor_retries(self, dialect: Dialect, form: Form, args: list[Field]) -> list[str]:
        spec = dialect.retries
        assert spec is not None
        if not self._powered:
            raise CmeError(13)
        pin1, puk1, pin2, puk2 = self._counters()
        prefix = spec.prefix
        kind = spec.kind
        if kind == "qpinc":
            if form != "set" or not args or args[0].text.upper() != "SC":
                raise CmeError(50)
            return [f'{prefix} "SC",{pin1},{puk1}']
        if kind == "spic":
            return [f"{prefix} {pin1},{puk1},{pin2},{puk2}"]
        if kind in ("upincnt", "xpincnt"):
            return [f"{prefix} {pin1},{pin2},{puk1},{puk2}"]
        if kind == "pct":
            code = self._cpin_code_or_none()
            return [f"{prefix} {puk1 if code == 'SIM PUK' else pin1}"]
        if kind == "hcpin":
            code = self._cpin_code_or_none() or "SIM FAILURE"
            times = {"SIM PIN": str(pin1), "SIM PUK": str(puk1)}.get(code, "")
            return [f"{prefix} {code},{times},{puk1},{pin1},{puk2},{pin2}"]
        if kind == "cpinr":
            return self._cmd_cpinr(form, args)
        raise PlainError()

    def _auth(self, form: Form, args: list[Field]) -> list[str]:
        spec = self.dialect.auth
        per_context = "{cid}" in spec.read_command
        if form == "test":
            codes = sorted(spec.codes.values())
            return [f"{spec.read_prefix} (1-24),({codes[0]}-{codes[-1]})"]
        if form == "read" and not per_context:
            return self._auth_lines(spec, None)
        if form != "set" or not args:
            raise PlainError() if form == "read" else CmeError(50)
        cid = _int_arg(args, 0)
        if not 1 <= cid <= 24:
            raise CmeError(50)
        if per_context and len(args) == 1:
            return self._auth_lines(spec, cid)
        if len(args) == 1:
            self.nv.auth.pop(cid, None)
            return []
        if self.dialect.deactivate_before_auth and self._active(cid):
            raise CmeError(3)  # u-blox: not while the context is active
        values = dict(zip(spec.write_order, args, strict=False))
        for name, value in values.items():
            if (name in STRING_FIELDS) != value.quoted and not value.empty:
                raise CmeError(50)
        code = _int_arg([values["auth"]], 0) if "auth" in values else 0
        if code not in spec.codes.values():
            raise CmeError(50)
        user = values["user"].text if "user" in values else ""
        password = values["password"].text if "password" in values else ""
        if code == 0:
            user = password = ""
        self.nv.auth[cid] = (code, user, password)
        if "apn" in values:
            ctx_type = _int_arg([values["ctx_type"]], 0) if "ctx_type" in values else 1
            pdp_type = _CONTEXT_TYPE_NAMES.get(ctx_type)
            if pdp_type is None:
                raise CmeError(50)
            self.nv.contexts[cid] = (pdp_type, values["apn"].text)
        return []

    def _auth_lines(self, spec: AuthSpec, cid: int | None) -> list[str]:
        view = self.applied if self.faults.cfun_apply else self.nv
        cids = [cid] if cid is not None else sorted(set(view.contexts) | set(view.auth))
        lines = []
        for number in cids:
            code, user, password = view.auth.get(number, (0, "", ""))
            pdp_type, apn = view.contexts.get(number, ("IP", ""))
            values: dict[str, str | int] = {
                "cid": number,
                "auth": code,
                "user": user,
                "password": password,
                "apn": apn,
                "plmn": "",
                "ctx_type": QUECTEL_CONTEXT_TYPES.get(pdp_type, 1),
            }
            fields = [
                f'"{values[name]}"' if name in STRING_FIELDS else str(values[name])
                for name in spec.read_order
            ]
            lines.append(f"{spec.read_prefix} {','.join(fields)}")
        return lines


def _fixed_answer(text: str) -> Callable[[Form, list[Field]], list[str]]:
    def answer(form: Form, args: list[Field]) -> list[str]:
        if form == "set":
            raise CmeError(50)
        return [] if form == "test" else [text]

    return answer


def _registration_handler(
    modem: SimulatedModem, kind: str
) -> Callable[[Form, list[Field]], list[str]]:
    def answer(form: Form, args: list[Field]) -> list[str]:
        return modem._registration(kind, form, args)

    return answer


def _blank_after_commas(line: str) -> str:
    """``+CGDCONT: 1,"IP","x"`` as many modems write it: ``+CGDCONT: 1, "IP", "x"``."""
    out: list[str] = []
    quoted = False
    for char in line:
        out.append(char)
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            out.append(" ")
    return "".join(out)


def _frame(line: str) -> bytes:
    return b"\r\n" + line.encode("utf-8") + b"\r\n"


def _name_of(command: str) -> str:
    name, _, _ = _parse_extended(command[2:] if command.upper().startswith("AT") else command)
    return name


def _parse_extended(part: str) -> tuple[str, Form, list[Field]]:
    index = 1
    while index < len(part) and (part[index].isalnum() or part[index] == "_"):
        index += 1
    name = part[:index].upper()
    rest = part[index:].strip()
    if rest == "":
        return name, "exec", []
    if rest == "?":
        return name, "read", []
    if rest == "=?":
        return name, "test", []
    if rest.startswith("="):
        return name, "set", split_fields(rest[1:])
    raise AtParseError(f"cannot parse {part!r}", line=part)


def _split_commands(body: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in body:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts if len(parts) > 1 else [body.strip()]


def _int_arg(args: list[Field], index: int) -> int:
    if index >= len(args) or args[index].quoted or not args[index].text.strip().isdigit():
        raise CmeError(50)
    return int(args[index].text)
