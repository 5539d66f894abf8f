"""The AT channel: one command in flight, answers framed, unsolicited lines kept apart.

A reader thread owns the port's input. It splits the byte stream into lines
(CR or LF end a line; V.250 frames answers as ``<CR><LF>text<CR><LF>`` and an
echo ends with the ``<CR>`` that was typed) and sorts each line:

1. bytes that are not text (control characters, invalid UTF-8): garbage;
2. the echo of the command in flight (echo may be on, whatever ``ATE0`` said);
3. a final result code (``OK``, ``ERROR``, ``+CME ERROR:`` as number or text,
   ``+CMS ERROR:``, ``NO CARRIER``, ...): the command is done;
4. a restart marker (``RDY``): the modem rebooted, the command is lost;
5. a line with the command's answer prefix (``+CGDCONT:`` for
   ``AT+CGDCONT?``), except the unsolicited form of a registration report;
6. a known unsolicited prefix: queued apart;
7. any other text: part of the answer when the command answers in free text
   (``AT+CGSN``), else queued apart as an unknown unsolicited line.

Unsolicited lines go to a queue and to subscribed callbacks whenever they
arrive, between commands or in the middle of an answer. Every command has a
deadline (long ones for network commands such as ``AT+COPS=?``); nothing here
sleeps for a fixed time: every wait is on data, bounded by a deadline.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import serial

from modem.codes import FinalResult, classify_final
from modem.dialects import ALL_URC_PREFIXES, REBOOT_MARKERS_ALL
from modem.errors import (
    AtCommandError,
    AtParseError,
    AtTimeoutError,
    ModemGarbageError,
    ModemPortError,
    ModemRebootedError,
)
from modem.parsers import is_solicited_registration, prefix_of, registration_prefix
from modem.trace import AtTracer

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
# Maximum response times of the slow commands, from the Quectel EC2x/BG96 AT
# manuals (AT+COPS 180 s, AT+CGATT 140 s, AT+CGACT 150 s, AT+CFUN 15 s); other
# vendors document the same order of magnitude.
LONG_DEADLINES: tuple[tuple[str, float], ...] = (
    ("AT+COPS=?", 180.0),
    ("AT+COPS=", 180.0),
    ("AT+CGATT=", 140.0),
    ("AT+CGACT=", 150.0),
    ("AT+CFUN=", 15.0),
    ("AT+CSIM=", 10.0),
    ("AT+CRSM=", 10.0),
    ("AT+CPIN=", 10.0),
)
READ_CHUNK_TIMEOUT = 0.05
URC_QUEUE_SIZE = 1000
# A "line" longer than this without CR or LF is noise (or a modem stuck
# streaming binary): it is dropped as garbage instead of growing the buffer.
MAX_LINE = 16384


def deadline_for(command: str, default: float = DEFAULT_TIMEOUT) -> float:
    """The deadline of ``command``: a long one for network commands, else ``default``."""
    upper = command.strip().upper()
    for prefix, seconds in LONG_DEADLINES:
        if upper.startswith(prefix):
            return max(seconds, default)
    return default


@dataclass(frozen=True, slots=True)
class AtCommand:
    """One command line and what its answer looks like.

    ``text`` is sent as is (followed by CR). ``shown`` is the form safe to log
    and to put in errors (a PIN or a password masked). ``prefix`` is the
    information-line prefix of the answer; ``free_text`` accepts unprefixed
    lines (``AT+CGSN``). ``secret_answer`` keeps the answer lines out of traces
    and errors (a read-back that includes a password). ``also`` lists more
    answer prefixes, for several commands chained on one line (V.250 clause
    5.2.1: ``AT+CPIN?;+CGDCONT?``).
    """

    text: str
    shown: str
    prefix: str | None
    free_text: bool = False
    timeout: float | None = None
    secret_answer: bool = False
    also: tuple[str, ...] = ()

    def expects(self, upper: str) -> bool:
        """True when ``upper`` (an upper-cased line) starts with one of the answer prefixes."""
        if self.prefix is not None and upper.startswith(self.prefix):
            return True
        return any(upper.startswith(prefix) for prefix in self.also)


def at(
    text: str,
    *,
    shown: str | None = None,
    prefix: str | bool | None = None,
    free_text: bool = False,
    timeout: float | None = None,
    secret_answer: bool = False,
    also: tuple[str, ...] = (),
) -> AtCommand:
    """Build an :class:`AtCommand`.

    ``prefix=None`` derives the prefix for read (``?``), test (``=?``) and
    parameterless commands; set commands (``=...``) get none unless given.
    ``prefix=False`` means the answer has no prefixed lines.
    """
    resolved: str | None
    if prefix is None:
        body = text.strip()
        is_set = "=" in body and not body.endswith("=?")
        resolved = None if is_set else prefix_of(body)
    elif prefix is False:
        resolved = None
    elif prefix is True:
        resolved = prefix_of(text)
    else:
        resolved = prefix
    return AtCommand(
        text=text,
        shown=shown if shown is not None else text,
        prefix=resolved,
        free_text=free_text,
        timeout=timeout,
        secret_answer=secret_answer,
        also=tuple(p.upper() for p in also),
    )


@dataclass(frozen=True, slots=True)
class AtResponse:
    """A command's answer: information lines and the final result."""

    command: str
    lines: tuple[str, ...]
    final: FinalResult
    seconds: float
    echoed: bool = False


@dataclass(frozen=True, slots=True)
class Unsolicited:
    """One unsolicited line, with the monotonic time it arrived."""

    line: str
    time: float
    known: bool

    @property
    def name(self) -> str:
        """``+CEREG``, ``RDY``, ``^MODE``...: the part before the colon."""
        return self.line.split(":", 1)[0].strip()


@dataclass(slots=True)
class ChannelStats:
    """What the channel has done since it was opened."""

    commands: int = 0
    seconds: float = 0.0
    unsolicited: int = 0
    garbage_lines: int = 0
    timeouts: int = 0
    stale_lines: int = 0
    reboots: int = 0


@dataclass(slots=True)
class _Pending:
    command: AtCommand
    started: float
    lines: list[str] = field(default_factory=list)
    garbage: list[bytes] = field(default_factory=list)
    final: FinalResult | None = None
    rebooted: str | None = None
    echoed: bool = False
    port_error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


class AtChannel:
    """A line-oriented AT conversation over an open pyserial port.

    Use as a context manager or call :meth:`close`. Thread-safe: commands from
    several threads are serialized (one in flight).
    """

    def __init__(
        self,
        port: serial.SerialBase,
        *,
        name: str = "",
        default_timeout: float = DEFAULT_TIMEOUT,
        tracer: AtTracer | None = None,
        reboot_markers: Iterable[str] = REBOOT_MARKERS_ALL,
        urc_prefixes: Iterable[str] = ALL_URC_PREFIXES,
    ) -> None:
        self.port = port
        # Short reads let the reader notice close() without a cancel primitive.
        self.port.timeout = READ_CHUNK_TIMEOUT
        self.name = name or str(port.port)
        self.default_timeout = default_timeout
        self.tracer = tracer
        self.stats = ChannelStats()
        self._reboot_markers = frozenset(m.upper() for m in reboot_markers)
        self._urc_prefixes = tuple(p.upper() for p in urc_prefixes)
        self._lock = threading.Lock()
        self._command_lock = threading.Lock()
        self._current: _Pending | None = None
        self._activity = threading.Condition(self._lock)
        self._last_rx = time.monotonic()
        self._buffer = bytearray()
        self._urcs: deque[Unsolicited] = deque(maxlen=URC_QUEUE_SIZE)
        self._urc_ready = threading.Condition(threading.Lock())
        self._listeners: list[Callable[[Unsolicited], None]] = []
        self._broken: str | None = None
        self._closed = False
        self._needs_resync = False
        self._reader = threading.Thread(target=self._read_loop, name=f"at-{self.name}", daemon=True)
        self._reader.start()

    # -- configuration ----------------------------------------------------------
    def add_hints(
        self, *, reboot_markers: Iterable[str] = (), urc_prefixes: Iterable[str] = ()
    ) -> None:
        """Learn a dialect's restart markers and unsolicited prefixes."""
        with self._lock:
            self._reboot_markers = self._reboot_markers | {m.upper() for m in reboot_markers}
            extra = tuple(p.upper() for p in urc_prefixes if p.upper() not in self._urc_prefixes)
            self._urc_prefixes = self._urc_prefixes + extra

    @property
    def reboots(self) -> int:
        """How many restart markers were seen since the channel opened."""
        return self.stats.reboots

    # -- commands ---------------------------------------------------------------
    def execute(self, command: AtCommand | str) -> AtResponse:
        """Send one command and wait for its final result.

        Raises :class:`AtCommandError` for a failure result,
        :class:`AtTimeoutError` past the deadline, :class:`ModemRebootedError`
        when the modem restarts meanwhile, :class:`ModemGarbageError` when
        non-text bytes came with an otherwise successful answer, and
        :class:`ModemPortError` when the port fails.
        """
        cmd = at(command) if isinstance(command, str) else command
        if not cmd.text.isascii() or any(c in cmd.text for c in "\r\n\x1a\x1b"):
            # A CR would end the line early and run the rest as another command.
            raise AtParseError(
                "an AT command must be one line of ASCII text", line=cmd.shown, command=cmd.shown
            )
        limit = (
            cmd.timeout if cmd.timeout is not None else deadline_for(cmd.text, self.default_timeout)
        )
        with self._command_lock:
            self._check_usable()
            if self._needs_resync:
                self._resync()
            pending = _Pending(cmd, time.monotonic())
            with self._lock:
                self._current = pending
                if self._broken is not None:  # the reader died just now
                    pending.port_error = self._broken
                    pending.done.set()
            try:
                if pending.port_error is None:
                    self._write((cmd.text + "\r").encode("ascii"))
                answered = pending.done.wait(limit)
            finally:
                with self._lock:
                    self._current = None
            seconds = time.monotonic() - pending.started
            self.stats.commands += 1
            self.stats.seconds += seconds
            return self._conclude(cmd, pending, answered, limit, seconds)

    def _conclude(
        self, cmd: AtCommand, pending: _Pending, answered: bool, limit: float, seconds: float
    ) -> AtResponse:
        lines = tuple(pending.lines)
        shown_lines: tuple[str, ...] = () if cmd.secret_answer else lines
        final = pending.final
        if self.tracer is not None:
            self.tracer.command(
                self.name,
                cmd.shown,
                None if cmd.secret_answer else lines,
                final.line if final else None,
                seconds,
            )
        log.debug(
            "%s -> %s %s (%.3f s)",
            cmd.shown,
            "masked" if cmd.secret_answer else list(lines),
            final.line if final else None,
            seconds,
        )
        if pending.port_error is not None:
            raise ModemPortError(
                f"{self.name}: {pending.port_error} during {cmd.shown}", port=self.name
            )
        if pending.rebooted is not None:
            raise ModemRebootedError(cmd.shown, pending.rebooted, shown_lines)
        if not answered or final is None:
            self.stats.timeouts += 1
            self._needs_resync = True
            raise AtTimeoutError(cmd.shown, shown_lines, limit)
        if not final.ok:
            if final.kind == "cme":
                raise AtCommandError(
                    cmd.shown, shown_lines, final.line, cme_code=final.code, cme_text=final.text
                )
            if final.kind == "cms":
                raise AtCommandError(
                    cmd.shown, shown_lines, final.line, cms_code=final.code, cms_text=final.text
                )
            raise AtCommandError(cmd.shown, shown_lines, final.line)
        if pending.garbage:
            raise ModemGarbageError(cmd.shown, pending.garbage, shown_lines, final.line)
        return AtResponse(cmd.shown, lines, final, seconds, pending.echoed)

    def _check_usable(self) -> None:
        if self._closed:
            raise ModemPortError(f"{self.name} is closed", port=self.name)
        if self._broken is None and not self._reader.is_alive():
            # Nothing should stop the reader but close() or a port failure; if
            # something did, no answer can ever arrive: fail now, not at a deadline.
            self._broken = "the reader thread stopped"
        if self._broken is not None:
            raise ModemPortError(f"{self.name}: {self._broken}", port=self.name)

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError) as error:
            self._broken = f"write failed: {error}"
            raise ModemPortError(f"{self.name}: write failed: {error}", port=self.name) from error

    def _resync(self, quiet: float = 0.2, limit: float = 2.0) -> None:
        """After a deadline: let a late answer arrive, then prove the modem listens.

        Waits (on data, bounded by ``limit``) until the line has been quiet for
        ``quiet`` seconds, so a late answer to the timed-out command is taken as
        stale instead of as the next command's; then sends ``AT``.
        """
        self.wait_quiet(quiet, limit)
        self._needs_resync = False
        probe = at("AT", prefix=False, timeout=min(self.default_timeout, 2.0))
        pending = _Pending(probe, time.monotonic())
        with self._lock:
            self._current = pending
        try:
            self._write(b"AT\r")
            answered = pending.done.wait(probe.timeout)
        finally:
            with self._lock:
                self._current = None
        if not answered or pending.final is None or not pending.final.ok:
            self._needs_resync = True
            raise AtTimeoutError(
                "AT (resynchronising after a missed answer)", pending.lines, probe.timeout or 0.0
            )

    # -- unsolicited lines --------------------------------------------------------
    def subscribe(self, callback: Callable[[Unsolicited], None]) -> Callable[[], None]:
        """Call ``callback`` (in the reader thread) for every unsolicited line.

        Returns a function that unsubscribes. A callback must be quick and must
        not send commands; its exceptions are logged and ignored.
        """
        with self._lock:
            self._listeners.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return unsubscribe

    def next_unsolicited(self, timeout: float = 0.0) -> Unsolicited | None:
        """The oldest queued unsolicited line, waiting up to ``timeout`` for one."""
        end = time.monotonic() + timeout
        with self._urc_ready:
            while not self._urcs:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return None
                self._urc_ready.wait(remaining)
            return self._urcs.popleft()

    def drain_unsolicited(self) -> list[Unsolicited]:
        """Every queued unsolicited line, oldest first; the queue is emptied."""
        with self._urc_ready:
            items = list(self._urcs)
            self._urcs.clear()
        return items

    def wait_quiet(self, quiet: float, limit: float) -> None:
        """Wait until nothing arrived for ``quiet`` s (at most ``limit`` s)."""
        end = time.monotonic() + limit
        with self._activity:
            while True:
                now = time.monotonic()
                wait = min(self._last_rx + quiet - now, end - now)
                if wait <= 0:
                    return
                self._activity.wait(wait)

    # -- the reader thread ----------------------------------------------------------
    def _read_loop(self) -> None:
        reason = "the reader thread stopped"
        try:
            while not self._closed:
                try:
                    # in_waiting lives on the concrete port classes, not on SerialBase.
                    waiting = int(getattr(self.port, "in_waiting", 0))
                    data = self.port.read(waiting if waiting > 0 else 1)
                except (serial.SerialException, OSError, TypeError, AttributeError) as error:
                    reason = f"read failed: {error}"
                    return
                if data:
                    try:
                        self._receive(data)
                    except Exception:
                        # Whatever a modem sends must not stop the reader: the
                        # line is lost (and logged), the channel goes on.
                        log.exception("%s: could not sort received bytes %r", self.name, data[:64])
                        with self._lock:
                            self._buffer.clear()
                            self.stats.garbage_lines += 1
        except Exception as error:  # a bug below the channel: tell the waiting command
            reason = f"the reader thread stopped: {error!r}"
            log.exception("%s: the reader thread stopped", self.name)
        finally:
            if not self._closed:
                self._fail(reason)

    def _fail(self, reason: str) -> None:
        with self._lock:
            self._broken = reason
            pending = self._current
            if pending is not None:
                pending.port_error = reason
                pending.done.set()
            self._activity.notify_all()

    def _receive(self, data: bytes) -> None:
        urcs: list[Unsolicited] = []
        with self._lock:
            self._last_rx = time.monotonic()
            self._buffer += data
            while True:
                cut = _line_end(self._buffer)
                if cut < 0:
                    if len(self._buffer) > MAX_LINE:
                        self._sort_line(b"\x00" + bytes(self._buffer[:64]))  # counted as garbage
                        self._buffer.clear()
                    break
                raw = bytes(self._buffer[:cut])
                del self._buffer[: cut + 1]
                if raw.strip(b" \t"):
                    urc = self._sort_line(raw)
                    if urc is not None:
                        urcs.append(urc)
            self._activity.notify_all()
            listeners = list(self._listeners)
        if urcs:
            # Listeners first: whoever takes a line from the queue then sees
            # the state the listeners derived from it.
            for urc in urcs:
                self.stats.unsolicited += 1
                if self.tracer is not None:
                    self.tracer.unsolicited(self.name, urc.line)
                for listener in listeners:
                    try:
                        listener(urc)
                    except Exception:  # a listener's bug must not stop the reader
                        log.exception("unsolicited-line listener failed on %r", urc.line)
            with self._urc_ready:
                self._urcs.extend(urcs)
                self._urc_ready.notify_all()

    def _sort_line(self, raw: bytes) -> Unsolicited | None:
        """Place one line (called with the lock held); returns it if unsolicited."""
        text = _decode(raw)
        pending = self._current
        if text is None:
            self.stats.garbage_lines += 1
            if self.tracer is not None:
                self.tracer.garbage(self.name, raw)
            if pending is not None and not pending.done.is_set():
                pending.garbage.append(raw)
            return None
        line = text.strip()
        upper = line.upper()
        if pending is None or pending.done.is_set():
            if classify_final(line) is not None:
                self.stats.stale_lines += 1
                log.debug("stale final result %r with no command in flight", line)
                return None
            if upper in self._reboot_markers:
                self.stats.reboots += 1
            return Unsolicited(line, time.monotonic(), self._is_known(upper))
        command = pending.command
        if not pending.echoed and upper == command.text.strip().upper():
            pending.echoed = True
            return None
        final = classify_final(line)
        if final is not None:
            pending.final = final
            pending.done.set()
            return None
        if upper in self._reboot_markers:
            self.stats.reboots += 1
            pending.rebooted = line
            pending.done.set()
            return Unsolicited(line, time.monotonic(), True)
        if command.expects(upper) and (
            registration_prefix(line) is None or is_solicited_registration(line)
        ):
            pending.lines.append(line)
            return None
        if self._is_known(upper):
            return Unsolicited(line, time.monotonic(), True)
        if command.free_text and not _looks_extended(line):
            pending.lines.append(line)
            return None
        return Unsolicited(line, time.monotonic(), False)

    def _is_known(self, upper: str) -> bool:
        return any(upper.startswith(prefix) for prefix in self._urc_prefixes)

    # -- closing ---------------------------------------------------------------
    def close(self) -> None:
        """Stop the reader and close the port (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            cancel = getattr(self.port, "cancel_read", None)
            if callable(cancel):
                cancel()
        except (serial.SerialException, OSError):
            pass
        self._reader.join(timeout=1.0)
        with contextlib.suppress(serial.SerialException, OSError):
            self.port.close()
        if self.tracer is not None:
            self.tracer.close()

    def __enter__(self) -> AtChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _line_end(buffer: bytearray) -> int:
    cr = buffer.find(b"\r")
    lf = buffer.find(b"\n")
    if cr < 0:
        return lf
    if lf < 0:
        return cr
    return min(cr, lf)


_EXTENDED = re.compile(r"[+^$#%*][A-Za-z][A-Za-z0-9_]*:")


def _looks_extended(line: str) -> bool:
    """``+NAME:`` / ``^NAME:`` lines are result codes of some command, never free text."""
    return _EXTENDED.match(line) is not None


def _decode(raw: bytes) -> str | None:
    """Text of a line, or ``None`` when it holds control bytes or invalid UTF-8."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any((ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F for char in text):
        return None
    return text
