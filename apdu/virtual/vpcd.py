"""The card side of the vpcd protocol (vsmartcard's virtual PC/SC reader driver).

pcscd loads the vpcd driver, which listens on TCP; a virtual card is the TCP
*client*. Every message in both directions is a 2-byte big-endian length and a
payload. From vpcd, a one-byte payload is a control code (:class:`VpcdControl`);
only "send your ATR" expects an answer. Any longer payload is a command APDU
and the card answers with the response APDU.

:func:`answer` is the whole protocol as a pure function; :class:`VpcdCardLink`
runs it over a socket for one reader slot, with pulling and inserting cards,
and reconnects when vpcd (pcscd) restarts.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import socket
import threading
from typing import Protocol

from apdu.errors import ParseError, TransportError

log = logging.getLogger(__name__)

#: The port of the first slot in the packaged vpcd configuration (0x8C7B).
VPCD_DEFAULT_PORT = 35963

#: The largest payload one frame can carry (the length field is 16 bits).
MAX_PAYLOAD = 0xFFFF

#: What the card answers when its model raised instead of answering
#: (6F00: technical problem, no precise diagnosis).
_SW_TECHNICAL_PROBLEM = b"\x6f\x00"


class VpcdControl(enum.IntEnum):
    """The one-byte control messages vpcd sends to the card."""

    POWER_OFF = 0
    POWER_ON = 1
    RESET = 2
    ATR = 4


class VpcdCard(Protocol):
    """What a card must offer to be served over vpcd (``VirtualUicc`` does)."""

    @property
    def atr(self) -> bytes:
        """The answer to reset."""
        ...

    def power_on(self) -> bytes:
        """Cold start; returns the ATR."""
        ...

    def power_off(self) -> None:
        """Remove power: volatile state (selected files, verified PINs) is lost."""
        ...

    def reset(self) -> bytes:
        """Warm reset; returns the ATR."""
        ...

    def process(self, command: bytes) -> bytes:
        """Answer one command APDU with a response APDU (data + SW1 SW2)."""
        ...


class VpcdProtocolError(TransportError):
    """A vpcd frame that cannot be built or read.

    ``length`` is the payload length involved, when known.
    """

    def __init__(self, message: str, *, length: int | None = None) -> None:
        super().__init__(message)
        self.length = length


def encode_frame(payload: bytes) -> bytes:
    """One vpcd frame: the 2-byte big-endian length, then ``payload``."""
    if len(payload) > MAX_PAYLOAD:
        raise VpcdProtocolError(
            f"a vpcd frame carries at most {MAX_PAYLOAD} bytes, not {len(payload)}",
            length=len(payload),
        )
    return len(payload).to_bytes(2, "big") + payload


class FrameDecoder:
    """Splits a byte stream from vpcd into frame payloads (incremental)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the payloads now complete, in order."""
        self._buffer += data
        payloads: list[bytes] = []
        while len(self._buffer) >= 2:
            length = int.from_bytes(self._buffer[:2], "big")
            if len(self._buffer) < 2 + length:
                break
            payloads.append(bytes(self._buffer[2 : 2 + length]))
            del self._buffer[: 2 + length]
        return payloads

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a complete frame."""
        return len(self._buffer)


def answer(card: VpcdCard, message: bytes) -> bytes | None:
    """The card's reply to one vpcd message, or None when none is due.

    Raises :class:`ParseError` for an empty message or an unknown control
    code; a card model that raises on a command APDU is answered with 6F00 so
    that the reader keeps working (and the failure is logged).
    """
    if not message:
        raise ParseError("empty vpcd message", data=message)
    if len(message) == 1:
        try:
            control = VpcdControl(message[0])
        except ValueError:
            raise ParseError(
                f"unknown vpcd control code {message[0]}", data=message, offset=0
            ) from None
        if control is VpcdControl.ATR:
            return card.atr
        if control is VpcdControl.POWER_ON:
            card.power_on()
        elif control is VpcdControl.POWER_OFF:
            card.power_off()
        else:
            card.reset()
        return None
    if getattr(card, "mute", False):
        # A mute card (lab fault profile): it gave its ATR and now stays silent,
        # so vpcd waits for ever, as on a real stalled card; the station's
        # per-APDU deadline must notice.
        return None
    try:
        return card.process(message)
    except Exception:
        # The header only: the data of a failing command may be a PIN.
        log.exception("virtual card failed on a command with header %s", message[:4].hex())
        return _SW_TECHNICAL_PROBLEM


class VpcdCardLink:
    """Serves whatever card is in one slot to vpcd at ``host:port``, in a thread.

    With a card inserted the link keeps a TCP connection to vpcd and
    reconnects whenever it drops (pcscd restarted). :meth:`remove` closes the
    connection, which vpcd reports to pcscd as "no card"; :meth:`insert`
    connects again.
    """

    def __init__(
        self,
        host: str,
        port: int,
        card: VpcdCard | None = None,
        *,
        retry_interval: float = 0.05,
        name: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.retry_interval = retry_interval
        self.name = name or f"vpcd-{host}:{port}"
        self._card = card
        self._condition = threading.Condition()
        self._socket: socket.socket | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()
        self._disconnected = threading.Event()
        self._disconnected.set()

    @property
    def card(self) -> VpcdCard | None:
        """The card in the slot, or None when the slot is empty."""
        return self._card

    @property
    def connected(self) -> bool:
        """Whether the link currently holds a connection to vpcd."""
        return self._connected.is_set()

    def start(self) -> None:
        """Start serving in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Disconnect and end the thread (the card stays in the object)."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self._drop_connection()
        if self._thread is not None:
            self._thread.join(timeout)

    def insert(self, card: VpcdCard) -> None:
        """Put ``card`` in the slot; the link connects to vpcd with it."""
        with self._condition:
            if self._card is not None:
                raise RuntimeError(f"{self.name}: a card is already in the slot")
            self._card = card
            self._condition.notify_all()

    def remove(self, timeout: float = 2.0) -> VpcdCard | None:
        """Pull the card out: power it off and drop the connection.

        Returns the card that was in the slot (None if it was empty) once the
        connection is closed, or after ``timeout``.
        """
        with self._condition:
            card, self._card = self._card, None
        self._drop_connection()
        self._disconnected.wait(timeout)
        if card is not None:
            card.power_off()
        return card

    def wait_connected(self, timeout: float) -> bool:
        """Wait until the link holds a connection to vpcd."""
        return self._connected.wait(timeout)

    def _drop_connection(self) -> None:
        sock = self._socket
        if sock is not None:
            # Shutdown (not close) wakes the thread blocked in recv on it.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _wait_for_card(self) -> VpcdCard | None:
        with self._condition:
            while self._card is None and not self._stopping:
                self._condition.wait()
            return None if self._stopping else self._card

    def _run(self) -> None:
        while True:
            if self._wait_for_card() is None:
                return
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
            except OSError:
                with self._condition:
                    self._condition.wait(self.retry_interval)
                continue
            try:
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with self._condition:
                    abandoned = self._card is None or self._stopping
                    self._socket = sock
                if not abandoned:
                    self._disconnected.clear()
                    self._connected.set()
                    self._serve(sock)
            finally:
                self._socket = None
                self._connected.clear()
                sock.close()
                self._disconnected.set()

    def _serve(self, sock: socket.socket) -> None:
        while True:
            header = _recv_exact(sock, 2)
            if header is None:
                return
            payload = _recv_exact(sock, int.from_bytes(header, "big"))
            if payload is None:
                return
            card = self._card
            if card is None:
                return
            try:
                reply = answer(card, payload)
            except ParseError as error:
                log.warning("%s: %s; dropping the connection", self.name, error)
                return
            if reply is not None:
                try:
                    sock.sendall(encode_frame(reply))
                except OSError:
                    return


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    """Read exactly ``size`` bytes; None when the connection ends first."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        # Quick ACK must be re-armed before every read, or Linux falls back to
        # delayed ACKs and every APDU costs ~44 ms (measured, see docs/lab.md).
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            n = sock.recv_into(view[got:])
        except OSError:
            return None
        if n == 0:
            return None
        got += n
    return bytes(buffer)
