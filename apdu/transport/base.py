"""The base class every card transport derives from.

The public :meth:`CardTransport.transmit` owns what must be the same on every
backend: validation of the command, the per-APDU deadline (a stalled card must
never hang the station), tracing, counting, and turning a transport failure
into a project error. A backend implements only the private primitives
``_connect``, ``_disconnect`` and ``_transmit``.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn

from apdu.command import CommandApdu, ResponseApdu
from apdu.errors import DeadlineError, NoCardError, ParseError, SimtoolError, TransportError

if TYPE_CHECKING:
    import logging

    # Only for annotations: a transport without a tracer never loads it.
    from apdu.transport.trace import Tracer


def _log() -> logging.Logger:
    """This module's logger; logging is imported only when something is logged."""
    import logging  # lazy: a card command's start-up does without it

    return logging.getLogger(__name__)


DEFAULT_TIMEOUT = 5.0

# Instructions that present a PIN, PUK or ADM value (VERIFY, CHANGE, DISABLE,
# ENABLE, UNBLOCK): once one has been sent with data, the card's security
# state may be "verified" and must not outlive this session.
_SECURITY_INS = frozenset({0x20, 0x24, 0x26, 0x28, 0x2C})


@dataclass(slots=True)
class TransportStats:
    """What a transport has done since it was opened (for reports and benchmarks)."""

    apdus: int = 0
    seconds: float = 0.0
    by_ins: dict[int, int] = field(default_factory=dict)

    def count(self, ins: int, seconds: float) -> None:
        """Add one exchange."""
        self.apdus += 1
        self.seconds += seconds
        self.by_ins[ins] = self.by_ins.get(ins, 0) + 1


class CardTransport(ABC):
    """A link to one card.

    ``timeout`` is the per-APDU deadline in seconds. Backends whose primitive
    can block forever (pyscard on a stalled card) set ``needs_watchdog`` so the
    base class runs the primitive under a watchdog; backends with their own
    deadline (a serial port read timeout) leave it off and honour ``timeout``.
    """

    needs_watchdog: bool = False

    def __init__(
        self, *, timeout: float = DEFAULT_TIMEOUT, tracer: Tracer | None = None, name: str = ""
    ) -> None:
        self.timeout = timeout
        self.tracer = tracer
        self.name = name
        self.stats = TransportStats()
        self._atr: bytes | None = None
        self._broken: str | None = None
        self._worker: _Worker | None = None
        self._transaction_depth = 0
        #: Set once a PIN-family command with data was sent: on disconnect the
        #: card is then reset so no PIN stays verified for the next user.
        self.security_state_changed = False
        #: Reset the card when this transport's work ends, even without a PIN
        #: command (``simtool read``: the next program finds the MF current):
        #: as the outermost transaction ends where the backend can (PC/SC),
        #: else on disconnect.
        self.reset_when_closed = False

    # -- backend primitives -------------------------------------------------
    @abstractmethod
    def _connect(self) -> bytes:
        """Open the link and power the card; return its ATR."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Close the link (idempotent)."""

    @abstractmethod
    def _transmit(self, command: bytes, timeout: float) -> bytes:
        """Send one command APDU, return the full response (data + SW)."""

    def _reset(self) -> bytes:
        """Warm-reset the card; backends without a reset reconnect."""
        self._disconnect()
        return self._connect()

    def _disconnect_and_reset(self) -> None:
        """Close the link leaving the card's volatile security state cleared.

        The default warm-resets, then closes. A backend that can do both in
        one step (PC/SC: ``SCardDisconnect(SCARD_RESET_CARD)``) or whose close
        already powers the card off (a card model in process) overrides it.
        """
        try:
            self._reset()
        finally:
            self._disconnect()

    @property
    def protocol(self) -> str:
        """The transmission protocol in use ("T=0", "T=1", or a backend's own)."""
        return "T=0"

    # -- public API -----------------------------------------------------------
    @property
    def atr(self) -> bytes:
        """The card's ATR (connects if needed)."""
        if self._atr is None:
            self.connect()
        assert self._atr is not None
        return self._atr

    @property
    def connected(self) -> bool:
        """True while the link is open."""
        return self._atr is not None

    def connect(self) -> bytes:
        """Open the link; returns the ATR."""
        if self._atr is None:
            self._atr = self._call(self._connect, None, self.timeout)
            self._broken = None
            if self.tracer is not None:
                # The ATR goes into the trace too, so that a replay answers
                # the power-up as the card did.
                self.tracer.connected(self._atr, self.name)
        return self._atr

    def disconnect(self) -> None:
        """Close the link; safe to call twice.

        After a command that presented a PIN (see :attr:`security_state_changed`)
        the card is reset on the way out, so a PIN verified here does not stay
        verified for whoever uses the reader next.
        """
        was_connected = self._atr is not None
        self._atr = None
        reset = (
            (self.security_state_changed or self.reset_when_closed)
            and was_connected
            and self._broken is None
        )
        self.security_state_changed = False
        try:
            if reset:
                try:
                    self._call(_as_bytes(self._disconnect_and_reset), None, self.timeout)
                except SimtoolError as error:
                    # The card went away (or stalled) on the way out: nothing
                    # is left to lock, but the link must still be closed.
                    _log().warning("%s: reset on disconnect failed: %s", self.name, error)
                    self._disconnect()
            else:
                self._disconnect()
        finally:
            if self._worker is not None:
                self._worker.stop()
                self._worker = None

    def reconnect(self) -> bytes:
        """Close and open again (after a card swap or a deadline)."""
        self.disconnect()
        return self.connect()

    def reset(self) -> bytes:
        """Warm-reset the card (volatile state such as a verified PIN is lost)."""
        self._atr = self._call(self._reset, None, self.timeout)
        self.security_state_changed = False
        return self._atr

    def transmit(
        self, command: CommandApdu | bytes, *, timeout: float | None = None
    ) -> ResponseApdu:
        """Send one APDU; returns the response as the card gave it.

        No status word handling happens here (61xx, 6Cxx are the card layer's
        business). Raises :class:`DeadlineError` when the card does not answer
        in time, :class:`TransportError` when the link fails, and
        :class:`ParseError` when the response is shorter than a status word.
        """
        if isinstance(command, CommandApdu):
            raw = command.raw  # encoded and checked when the command was built
        else:
            raw = bytes(command)
            if len(raw) < 4:
                raise ParseError(
                    f"command APDU of {len(raw)} bytes is shorter than a header", data=raw
                )
        response = self.transmit_bytes(raw, timeout)
        return ResponseApdu(response[:-2], response[-2], response[-1])

    def transmit_bytes(self, raw: bytes, timeout: float | None = None) -> bytes:
        """:meth:`transmit` on the wire form: a command's bytes in, data + SW out.

        ``raw`` must hold at least a header (a :attr:`CommandApdu.raw` does);
        the response holds at least the status word. The card layer calls
        this for every APDU, so it does the work every exchange needs
        (deadline, tracing, counting, the security-state flag) and no more.
        """
        if self._broken is not None or self._atr is None:
            self._make_usable()
        ins = raw[1]
        if ins in _SECURITY_INS and len(raw) > 5:
            self.security_state_changed = True
        limit = self.timeout if timeout is None else timeout
        # The fast path calls the backend directly (a backend with its own
        # deadline); only a backend that needs the watchdog goes through it.
        started = perf_counter()
        if self.needs_watchdog:
            response = self._call(self._transmit, raw, limit)
        else:
            try:
                response = self._transmit(raw, limit)
            except DeadlineError:
                self._broken = f"a {limit:g} s deadline"
                self._atr = None
                raise
        elapsed = perf_counter() - started
        stats = self.stats
        stats.apdus += 1
        stats.seconds += elapsed
        by_ins = stats.by_ins
        by_ins[ins] = by_ins.get(ins, 0) + 1
        if self.tracer is not None:
            self.tracer.record(raw, response, elapsed, self.name)
        if len(response) < 2:
            self._no_status_word(response)
        return response

    def _make_usable(self) -> None:
        """Refuse a link broken by a deadline; connect one that is not open yet."""
        if self._broken is not None:
            raise TransportError(
                f"{self.name or 'card link'} is unusable after {self._broken}; reconnect first"
            )
        self.connect()

    def _no_status_word(self, response: bytes) -> NoReturn:
        """Raise for a response shorter than a status word."""
        if not response:
            # pcscd answers "success" with no bytes when the card or its
            # reader went away mid-exchange. That is the link failing, not
            # a malformed answer: forget the connection so the next
            # operation finds the reader's real state.
            self._lost()
            raise NoCardError(
                f"{self.name or 'the card'}: the card stopped answering (removed?): "
                "the reader returned no bytes"
            )
        raise ParseError(f"response of {len(response)} bytes has no status word", data=response)

    def _lost(self) -> None:
        """Drop a link that stopped answering; the next ``connect`` starts afresh."""
        self._atr = None
        self.security_state_changed = False
        # The link is already gone: closing it is best effort.
        with contextlib.suppress(Exception):
            self._disconnect()

    def transaction(self) -> _Transaction:
        """Exclusive use of the card for a sequence of APDUs (a context manager).

        On a shared reader another program's APDUs could otherwise land between
        ours (a SELECT in the middle of our SELECT + READ reads the wrong file).
        Nested use is allowed; only the outermost level talks to the backend.
        """
        return _Transaction(self)

    def _enter_transaction(self) -> None:
        self.connect()
        self._transaction_depth += 1
        if self._transaction_depth == 1:
            try:
                self._call(self._begin_transaction, None, self.timeout)
            except BaseException:
                self._leave_transaction()
                raise

    def _leave_transaction(self) -> None:
        self._transaction_depth -= 1
        if self._transaction_depth == 0 and self.connected:
            self._call(self._end_transaction, None, self.timeout)

    def _begin_transaction(self) -> bytes:
        """Backend hook: lock the card for this handle (default: nothing to do)."""
        return b""

    def _end_transaction(self) -> bytes:
        """Backend hook: release the lock taken by ``_begin_transaction``."""
        return b""

    def __enter__(self) -> CardTransport:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disconnect()

    # -- the watchdog -----------------------------------------------------------
    def _call(self, func: object, arg: bytes | None, timeout: float) -> bytes:
        if not self.needs_watchdog:
            try:
                return _invoke(func, arg, timeout)
            except DeadlineError:
                # The backend kept its own deadline; its link is as unusable
                # as a stuck worker's would be.
                self._broken = f"a {timeout:g} s deadline"
                self._atr = None
                raise
        if self._worker is None:
            self._worker = _Worker(self.name)
        try:
            return self._worker.run(func, arg, timeout)
        except DeadlineError:
            # The stuck call still owns the backend's handle; nothing can be
            # sent on it safely any more. Abandon the worker (a daemon thread)
            # and make the caller reconnect, which opens a fresh context.
            self._broken = f"a {timeout:g} s deadline"
            self._worker = None
            self._atr = None
            raise


class _Transaction:
    """The context manager of :meth:`CardTransport.transaction`.

    A class rather than a generator-based ``contextmanager``: every card read
    enters one, and this costs a fraction of a generator's set-up.
    """

    __slots__ = ("_transport",)

    def __init__(self, transport: CardTransport) -> None:
        self._transport = transport

    def __enter__(self) -> None:
        self._transport._enter_transaction()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._transport._leave_transaction()


def _as_bytes(action: object) -> object:
    """Wrap a ``-> None`` primitive so the watchdog (which hands back bytes) can run it."""

    def run() -> bytes:
        action()  # type: ignore[operator]
        return b""

    return run


def _invoke(func: object, arg: bytes | None, timeout: float) -> bytes:
    if arg is None:
        return func()  # type: ignore[operator, no-any-return]
    return func(arg, timeout)  # type: ignore[operator, no-any-return]


class _Worker:
    """One thread that runs a transport's blocking primitives with a deadline.

    A persistent thread (instead of a thread per APDU) and two C-implemented
    ``SimpleQueue`` hand-offs keep the cost of the deadline to a few
    microseconds per exchange.
    """

    def __init__(self, name: str) -> None:
        self._requests: queue.SimpleQueue[tuple[object, bytes | None, float] | None] = (
            queue.SimpleQueue()
        )
        self._results: queue.SimpleQueue[tuple[bytes | None, BaseException | None]] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._loop, name=f"apdu-{name}", daemon=True)
        self._thread.start()

    def run(self, func: object, arg: bytes | None, timeout: float) -> bytes:
        self._requests.put((func, arg, timeout))
        try:
            result, error = self._results.get(timeout=timeout)
        except queue.Empty:
            # The thread stays blocked in the backend; tell it to end once
            # (if ever) the call returns.
            self._requests.put(None)
            raise DeadlineError(
                f"card did not answer within {timeout:g} s",
                command=arg[:4] if arg else None,
                timeout=timeout,
            ) from None
        if error is not None:
            raise error
        assert result is not None
        return result

    def stop(self) -> None:
        self._requests.put(None)

    def _loop(self) -> None:
        while True:
            job = self._requests.get()
            if job is None:
                return
            func, arg, timeout = job
            try:
                self._results.put((_invoke(func, arg, timeout), None))
            except BaseException as error:  # handed to the caller thread
                self._results.put((None, error))
