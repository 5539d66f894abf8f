"""PC/SC readers through pyscard's thin ``smartcard.scard`` layer.

The low-level layer is used rather than pyscard's object API because the
station needs the raw PC/SC result codes (card removed vs. reset vs. pcscd
gone), its own context per transport (a pcscd restart kills old contexts), and
no hidden retries. ``SCardTransmit`` can block forever on a stalled card (vpcd
has no timeout), so this backend runs under the base class's watchdog.
"""

from __future__ import annotations

import os
import re
import threading
import time
import weakref
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING, Any, NoReturn

from apdu.errors import DeadlineError, NoCardError, ReaderNotFoundError, TransportError
from apdu.transport.base import DEFAULT_TIMEOUT, CardTransport

if TYPE_CHECKING:
    import logging

    from apdu.transport.trace import Tracer


def _log() -> logging.Logger:
    """This module's logger; logging is imported only when something is logged."""
    import logging  # lazy: a card command's start-up does without it

    return logging.getLogger(__name__)


SOCKET_ENV = "PCSCLITE_CSOCK_NAME"

# PC/SC result codes the station reacts to (pcsclite.h).
SCARD_S_SUCCESS = 0
SCARD_E_TIMEOUT = 0x8010000A
SCARD_E_SHARING_VIOLATION = 0x8010000B
SCARD_E_NO_SMARTCARD = 0x8010000C
SCARD_E_NOT_TRANSACTED = 0x80100016
SCARD_E_READER_UNAVAILABLE = 0x80100017
SCARD_E_NO_SERVICE = 0x8010001D
SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
SCARD_E_UNKNOWN_READER = 0x80100009
SCARD_W_UNRESPONSIVE_CARD = 0x80100066
SCARD_W_UNPOWERED_CARD = 0x80100067
SCARD_W_RESET_CARD = 0x80100068
#: How many resets by other programs one call acknowledges before giving up.
RESET_ACKNOWLEDGEMENTS = 8
SCARD_W_REMOVED_CARD = 0x80100069

_NO_CARD = frozenset(
    {
        SCARD_E_NO_SMARTCARD,
        SCARD_W_REMOVED_CARD,
        SCARD_E_NOT_TRANSACTED,
        SCARD_W_UNPOWERED_CARD,
        SCARD_W_UNRESPONSIVE_CARD,
    }
)

_MESSAGES = {
    SCARD_E_TIMEOUT: "timed out",
    SCARD_E_SHARING_VIOLATION: "the card is held exclusively by another program",
    SCARD_E_NO_SMARTCARD: "no card in the reader",
    SCARD_E_NOT_TRANSACTED: "the exchange failed (card removed?)",
    SCARD_E_READER_UNAVAILABLE: "the reader is unavailable",
    SCARD_E_NO_SERVICE: "the PC/SC service (pcscd) is not running",
    SCARD_E_NO_READERS_AVAILABLE: "no readers are available",
    SCARD_E_UNKNOWN_READER: "unknown reader",
    SCARD_W_UNRESPONSIVE_CARD: "the card does not respond to reset",
    SCARD_W_UNPOWERED_CARD: "the card is not powered",
    SCARD_W_RESET_CARD: "the card was reset by another program",
    SCARD_W_REMOVED_CARD: "the card was removed",
}


def describe_pcsc_error(code: int) -> str:
    """Plain words for a PC/SC result code, with the code in hex."""
    code &= 0xFFFFFFFF
    return f"{_MESSAGES.get(code, 'PC/SC error')} (0x{code:08X})"


#: Where pcscd listens when ``PCSCLITE_CSOCK_NAME`` does not say otherwise.
DEFAULT_PCSC_SOCKET = "/run/pcscd/pcscd.comm"

# The socket libpcsclite was (or is about to be) told about, recorded the first
# time this process reaches for pyscard. libpcsclite reads PCSCLITE_CSOCK_NAME
# once, on its first call, and keeps it for the life of the process: after
# that, changing the variable changes nothing, so use_pcsc_socket refuses to.
_bound_socket: str | None = None


def _scard() -> Any:
    # Imported lazily: pyscard loads libpcsclite, which reads PCSCLITE_CSOCK_NAME
    # once; commands that never touch a reader should not pay for it either.
    global _bound_socket  # noqa: PLW0603 - one fact per process, by nature
    if _bound_socket is None:
        _bound_socket = os.environ.get(SOCKET_ENV) or DEFAULT_PCSC_SOCKET
    from smartcard import scard

    return scard


def bound_pcsc_socket() -> str | None:
    """The pcscd socket this process's PC/SC client is tied to; None before first use."""
    return _bound_socket


def use_pcsc_socket(path: str | os.PathLike[str]) -> None:
    """Point this process's PC/SC client at a pcscd socket (the lab's, or the system's).

    Must be called before the first PC/SC context is created in the process:
    libpcsclite reads ``PCSCLITE_CSOCK_NAME`` once and caches it. Asking for
    another socket after that raises :class:`TransportError` instead of
    silently talking to the first one.
    """
    wanted = os.fspath(path)
    if _bound_socket is not None and _bound_socket != wanted:
        raise TransportError(
            f"this process already talks to the PC/SC service at {_bound_socket} "
            f"(libpcsclite reads {SOCKET_ENV} once per process); it cannot reach {wanted}"
        )
    os.environ[SOCKET_ENV] = wanted


def _check(hresult: int, what: str, reader: str = "") -> None:
    if hresult == SCARD_S_SUCCESS:
        return
    code = hresult & 0xFFFFFFFF
    where = f" on {reader!r}" if reader else ""
    message = f"{what}{where}: {describe_pcsc_error(code)}"
    if code in _NO_CARD:
        raise NoCardError(message)
    if code in (SCARD_E_UNKNOWN_READER, SCARD_E_READER_UNAVAILABLE):
        raise ReaderNotFoundError(message)
    error = TransportError(message)
    error.pcsc_code = code  # type: ignore[attr-defined]
    raise error


def _socket_fds() -> set[int]:
    """This process's open sockets (Linux: /proc/self/fd); empty where unknown."""
    found: set[int] = set()
    try:
        entries = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for entry in entries:
        try:
            if os.readlink(f"/proc/self/fd/{entry}").startswith("socket:"):
                found.add(int(entry))
        except (OSError, ValueError):
            continue
    return found


# Contexts are created one at a time, so that the socket libpcsclite opens
# for each (one per context) can be told apart.
_context_lock = threading.Lock()


class PcscContext:
    """A PC/SC context, released on close (or garbage collection).

    ``socket_fd`` is the connection to pcscd that libpcsclite opened for this
    context (None when it cannot be told): the deadline watch shuts it down
    to free a call stuck on a card that never answers.
    """

    def __init__(self) -> None:
        scard = _scard()
        with _context_lock:
            before = _socket_fds()
            hresult, self.handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            new = _socket_fds() - before if hresult == SCARD_S_SUCCESS else set()
        self.socket_fd: int | None = new.pop() if len(new) == 1 else None
        _check(hresult, "cannot reach the PC/SC service")

    def close(self) -> None:
        """Release the context (idempotent)."""
        if self.handle is not None:
            _scard().SCardReleaseContext(self.handle)
            self.handle = None

    def readers(self) -> list[str]:
        """Reader names in the order pcscd lists them."""
        hresult, names = _scard().SCardListReaders(self.handle, [])
        if hresult & 0xFFFFFFFF in (SCARD_E_NO_READERS_AVAILABLE,):
            return []
        _check(hresult, "cannot list readers")
        return list(names)

    def __enter__(self) -> PcscContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _DeadlineWatch:
    """One thread per process that enforces the deadline of every PC/SC call.

    ``SCardTransmit`` blocks forever on a card that never answers (vpcd has no
    timeout). Running each call on a worker thread bounds it, but costs a
    thread hand-off per APDU. Instead a transport arms its deadline by
    storing a monotonic time before a blocking call and clears it after (two
    attribute writes on the fast path); this thread looks every ``POLL``
    seconds and, for a deadline that has passed, shuts down the transport's
    socket to pcscd. The stuck call then returns at once with an error, and
    the transport reports a :class:`DeadlineError` and needs a new context.
    """

    POLL = 0.05

    def __init__(self) -> None:
        self._transports: weakref.WeakSet[PcscTransport] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, transport: PcscTransport) -> None:
        """Enforce ``transport``'s armed deadlines from now on."""
        with self._lock:
            self._transports.add(transport)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="pcsc-deadlines", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.POLL)
            now = time.monotonic()
            with self._lock:
                transports = list(self._transports)
            for transport in transports:
                due = transport._deadline_at
                if due and due < now and not transport._expired:
                    transport._expired = True
                    _shut_down(transport._socket_fd)


def _shut_down(fd: int | None) -> None:
    """Shut a pcscd connection down without closing the descriptor libpcsclite owns."""
    if fd is None:
        return
    import socket  # only when a deadline fires

    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError as error:  # already closed: the call is returning anyway
        _log().debug("deadline: cannot shut down fd %d: %s", fd, error)


_deadlines = _DeadlineWatch()


@dataclass(frozen=True, slots=True)
class ReaderState:
    """A reader and what is in it right now."""

    name: str
    card_present: bool
    atr: bytes | None
    in_use: bool


def reader_states(names: list[str] | None = None) -> list[ReaderState]:
    """Every reader's card presence and ATR, in one SCardGetStatusChange call."""
    scard = _scard()
    with PcscContext() as ctx:
        names = ctx.readers() if names is None else names
        if not names:
            return []
        query = [(name, scard.SCARD_STATE_UNAWARE) for name in names]
        hresult, states = scard.SCardGetStatusChange(ctx.handle, 0, query)
        if hresult & 0xFFFFFFFF != SCARD_E_TIMEOUT:
            _check(hresult, "cannot read reader states")
        out = []
        for name, event_state, atr in states:
            present = bool(event_state & scard.SCARD_STATE_PRESENT) and not bool(
                event_state & scard.SCARD_STATE_MUTE
            )
            out.append(
                ReaderState(
                    name=name,
                    card_present=present,
                    atr=bytes(atr) if present and atr else None,
                    in_use=bool(event_state & scard.SCARD_STATE_INUSE),
                )
            )
        return out


def list_readers() -> list[str]:
    """Names of the PC/SC readers."""
    with PcscContext() as ctx:
        return ctx.readers()


def resolve_reader(spec: str | int | None, names: list[str] | None = None) -> str:
    """Find one reader from a user's spec: exact name, unique substring, or index.

    ``None`` picks the only reader holding a card. The error names the
    candidates so the operator can choose.
    """
    states = reader_states(names)
    all_names = [s.name for s in states]
    if not all_names:
        raise ReaderNotFoundError("no PC/SC readers found")
    if spec is None:
        with_card = [s.name for s in states if s.card_present]
        if len(with_card) == 1:
            return with_card[0]
        if not with_card:
            raise NoCardError("no reader holds a card; readers: " + ", ".join(all_names))
        raise ReaderNotFoundError(
            "several readers hold a card; choose one with --reader: " + ", ".join(with_card)
        )
    text = str(spec)
    if re.fullmatch(r"[0-9]+", text):
        index = int(text)
        if index >= len(all_names):
            raise ReaderNotFoundError(f"reader index {index} out of range (0-{len(all_names) - 1})")
        return all_names[index]
    if text in all_names:
        return text
    matches = [n for n in all_names if text.lower() in n.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ReaderNotFoundError(f"no reader matches {text!r}; readers: " + ", ".join(all_names))
    raise ReaderNotFoundError(f"{text!r} matches several readers: " + ", ".join(matches))


class PcscTransport(CardTransport):
    """One PC/SC reader, shared mode, T=0 or T=1 as the card offers.

    Calls to pcscd run on the caller's thread under the process's
    :class:`_DeadlineWatch`. Where this context's socket cannot be told
    apart (not Linux, or another thread opened a socket at the same moment),
    the base class's worker thread bounds the calls instead.
    """

    def __init__(
        self,
        reader: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        tracer: Tracer | None = None,
        exclusive: bool = False,
    ) -> None:
        super().__init__(timeout=timeout, tracer=tracer, name=reader)
        self.reader = reader
        self.exclusive = exclusive
        self._context: PcscContext | None = None
        self._card: Any = None
        self._protocol: int = 0
        self._pci: Any = None
        # The thread that opened the handle (see _abandon).
        self._owner: threading.Thread | None = None
        self.needs_watchdog = False
        self._socket_fd: int | None = None
        # Armed deadline (monotonic seconds, 0.0 when no call is running) and
        # whether the deadline watch fired on the running call.
        self._deadline_at = 0.0
        self._expired = False
        self._scard_module: Any = None

    @property
    def protocol(self) -> str:
        """``T=0`` or ``T=1`` as negotiated."""
        scard = self._scard_module or _scard()
        return "T=1" if self._protocol == scard.SCARD_PROTOCOL_T1 else "T=0"

    def _connect(self) -> bytes:
        scard = _scard()
        # A fresh context each time: after a pcscd restart the old one answers
        # SCARD_E_NO_SERVICE forever.
        self._release()
        self._owner = threading.current_thread()
        self._context = PcscContext()
        self._scard_module = scard
        self._socket_fd = self._context.socket_fd
        if self._socket_fd is None:
            self.needs_watchdog = True
        else:
            _deadlines.watch(self)
        share = scard.SCARD_SHARE_EXCLUSIVE if self.exclusive else scard.SCARD_SHARE_SHARED
        hresult, card, protocol = self._guarded(
            scard.SCardConnect,
            self._context.handle,
            self.reader,
            share,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
        )
        if hresult != SCARD_S_SUCCESS:
            # The handle is meaningless on failure: never disconnect it.
            self._release()
            _check(hresult, "cannot connect to the card", self.reader)
        self._card, self._protocol = card, protocol
        self._pci = (
            scard.SCARD_PCI_T1 if self._protocol == scard.SCARD_PROTOCOL_T1 else scard.SCARD_PCI_T0
        )
        return self._status_atr()

    def _guarded(self, call: Any, *args: Any) -> Any:
        """``call(*args)`` under this transport's deadline (see :class:`_DeadlineWatch`)."""
        self._expired = False
        self._deadline_at = time.monotonic() + self.timeout
        try:
            result = call(*args)
        finally:
            self._deadline_at = 0.0
        if self._expired:
            raise DeadlineError(
                f"{self.reader}: pcscd did not answer within {self.timeout:g} s",
                timeout=self.timeout,
            )
        return result

    def _status_atr(self) -> bytes:
        hresult, _reader, _state, _protocol, atr = _scard().SCardStatus(self._card)
        for _attempt in range(RESET_ACKNOWLEDGEMENTS):
            if hresult & 0xFFFFFFFF != SCARD_W_RESET_CARD:
                break
            # Reset by another program since we connected: nothing of ours
            # was in flight, so acknowledge it and carry on. Programs sharing
            # the card may reset it again in between: bounded, not once.
            self._acknowledge_reset()
            hresult, _reader, _state, _protocol, atr = _scard().SCardStatus(self._card)
        _check(hresult, "cannot read the card status", self.reader)
        return bytes(atr)

    def _acknowledge_reset(self) -> None:
        """``SCardReconnect`` without a reset: pcscd wants it after another handle's reset."""
        scard = _scard()
        share = scard.SCARD_SHARE_EXCLUSIVE if self.exclusive else scard.SCARD_SHARE_SHARED
        hresult, self._protocol = scard.SCardReconnect(
            self._card,
            share,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            scard.SCARD_LEAVE_CARD,
        )
        _check(hresult, "cannot reconnect after a reset", self.reader)
        self._pci = (
            scard.SCARD_PCI_T1 if self._protocol == scard.SCARD_PROTOCOL_T1 else scard.SCARD_PCI_T0
        )

    def _reset(self) -> bytes:
        scard = _scard()
        if self._card is None:
            return self._connect()
        share = scard.SCARD_SHARE_EXCLUSIVE if self.exclusive else scard.SCARD_SHARE_SHARED
        hresult, self._protocol = self._guarded(
            scard.SCardReconnect,
            self._card,
            share,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            scard.SCARD_RESET_CARD,
        )
        _check(hresult, "cannot reset the card", self.reader)
        return self._status_atr()

    def _transmit(self, command: bytes, timeout: float) -> bytes:
        card = self._card
        if card is None:
            raise TransportError(f"{self.reader}: not connected")
        # The fast path: the deadline is armed and cleared in place (see
        # _DeadlineWatch); no thread hand-off, no lookup of the module.
        self._expired = False
        self._deadline_at = monotonic() + timeout
        try:
            hresult, response = self._scard_module.SCardTransmit(card, self._pci, list(command))
        finally:
            self._deadline_at = 0.0
        if hresult != SCARD_S_SUCCESS or self._expired:
            self._transmit_failed(hresult, command, timeout)
        return bytes(response)

    def _transmit_failed(self, hresult: int, command: bytes, timeout: float) -> NoReturn:
        """Raise for an exchange that the deadline cut off or pcscd refused."""
        if self._expired:
            raise DeadlineError(
                f"card did not answer within {timeout:g} s", command=command[:4], timeout=timeout
            )
        _check(hresult, "the card exchange failed", self.reader)
        raise AssertionError("unreachable: _check raises for a failed result")

    def _begin_transaction(self) -> bytes:
        if self._card is None:
            raise TransportError(f"{self.reader}: not connected")
        # Blocks while another handle holds a transaction: pcscd queues us,
        # and the base class's deadline bounds the wait.
        hresult = self._guarded(self._scard_module.SCardBeginTransaction, self._card)
        for _attempt in range(RESET_ACKNOWLEDGEMENTS):
            if hresult & 0xFFFFFFFF != SCARD_W_RESET_CARD:
                break
            # Another program reset the card (simtool does, on leaving after
            # a PIN command or a read). A transaction assumes nothing about
            # the card's state, so take note of the reset and go on.
            self._acknowledge_reset()
            hresult = self._guarded(self._scard_module.SCardBeginTransaction, self._card)
        _check(hresult, "cannot get exclusive use of the card", self.reader)
        return b""

    def _end_transaction(self) -> bytes:
        if self._card is not None:
            scard = self._scard_module
            if self.reset_when_closed and not self.security_state_changed:
                # Reset as the lock is released, in one pcscd call: the next
                # program's transaction finds the MF current (a short read),
                # not the state this one left. Done once: the disconnect
                # then has nothing left to reset.
                self.reset_when_closed = False
                scard.SCardEndTransaction(self._card, scard.SCARD_RESET_CARD)
            else:
                scard.SCardEndTransaction(self._card, scard.SCARD_LEAVE_CARD)
        return b""

    def _disconnect(self) -> None:
        self._release()

    def _disconnect_and_reset(self) -> None:
        # One pcscd call: the card is warm-reset as the handle is closed, so a
        # PIN verified in this session is not verified for the next program.
        self._release(reset=True)

    def _release(self, *, reset: bool = False) -> None:
        if self._broken is not None:
            self._abandon()
            return
        if self._card is not None:
            scard = _scard()
            # Errors are ignored: the card may already be gone, which is
            # exactly why we are disconnecting.
            scard.SCardDisconnect(
                self._card, scard.SCARD_RESET_CARD if reset else scard.SCARD_LEAVE_CARD
            )
            self._card = None
        if self._context is not None:
            self._context.close()
            self._context = None

    def _abandon(self) -> None:
        """Let go of a handle a call is stuck on, without waiting for that call.

        After a deadline the worker thread is still inside ``SCardTransmit``
        (vpcd, and a mute card, never time out). libpcsclite would make
        ``SCardDisconnect`` wait for it while holding its process-wide lock,
        which stalls every other reader of the process too. So the handle is
        closed by a daemon thread once the stuck call has returned (its
        worker thread has ended), and the transport connects afresh with a
        new context.
        """
        card, context, owner = self._card, self._context, self._owner
        self._card, self._context, self._owner = None, None, None

        def close() -> None:
            if owner is not None and owner is not threading.current_thread():
                owner.join()
            scard = _scard()
            if card is not None:
                scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
            if context is not None:
                context.close()

        threading.Thread(target=close, name=f"pcsc-close-{self.reader}", daemon=True).start()
