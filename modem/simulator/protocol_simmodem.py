"""The ``simmodem://`` pyserial URL handler: the simulated modem in this process.

``serial.serial_for_url("simmodem://quectel?latency=0.02&faults=echo,urc")``
returns a port object wired to a :class:`~modem.simulator.engine.SimulatedModem`.
Query parameters: ``latency`` (seconds per answer), ``faults`` (see
:mod:`modem.simulator.faults`), ``profile`` (card profile: ``lab:N``, a name
or a JSON path), ``name`` (share one modem between several opens of the same
name, as a device node would). Reads wait on a condition until the next
output is due; nothing sleeps.

pyserial finds this module by its name (``protocol_<scheme>``) in the
packages listed in ``serial.protocol_handler_packages``; see
:func:`modem.ports.register_simulator_scheme`.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.parse
from typing import Any

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from apdu.errors import SimtoolError
from modem.simulator.engine import SimulatedModem, default_card
from modem.simulator.faults import parse_faults

_SHARED: dict[str, SimulatedModem] = {}
_SHARED_LOCK = threading.Lock()


def modem_for_url(url: str) -> SimulatedModem:
    """The engine a ``simmodem://`` URL describes (shared when it has a ``name``)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "simmodem":
        raise SerialException(f"expected simmodem://<dialect>?..., got {url!r}")
    dialect = (parts.netloc or parts.path.strip("/") or "generic").lower()
    # Not parse_qs: a '+' must stay a '+' (faults=noanswer:+CGAUTH=), not become a space.
    options: dict[str, str] = {}
    for item in filter(None, parts.query.split("&")):
        key, _, value = item.partition("=")
        options[urllib.parse.unquote(key)] = urllib.parse.unquote(value)
    unknown = set(options) - {"latency", "faults", "profile", "name"}
    if unknown:
        raise SerialException(f"unknown simmodem option(s): {', '.join(sorted(unknown))}")
    name = options.get("name")
    latency = _latency(options.get("latency", ""))
    with _SHARED_LOCK:
        if name and name in _SHARED:
            return _SHARED[name]
        try:
            engine = SimulatedModem(
                dialect,
                card=default_card(options.get("profile")),
                latency=latency,
                faults=parse_faults(options.get("faults")),
            )
        except (SimtoolError, ValueError) as error:
            raise SerialException(f"simmodem: {error}") from error
        if name:
            _SHARED[name] = engine
        return engine


def _latency(text: str) -> float:
    """The ``latency`` URL parameter: seconds, a finite number not below zero."""
    if not text.strip():
        return 0.0
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise SerialException(
            f"simmodem URL parameter latency={text!r}: expected seconds "
            "as a number not below 0 (latency=0.02)"
        )
    return value


def share(name: str, engine: SimulatedModem) -> str:
    """Serve ``engine`` under ``name``; returns the ``simmodem://`` URL that opens it.

    For a simulated modem built in code (a card model of one's own, a clock):
    every open of the URL talks to this engine until :func:`forget`.
    """
    with _SHARED_LOCK:
        _SHARED[name] = engine
    return f"simmodem://{engine.dialect.name}?name={urllib.parse.quote(name)}"


def forget(name: str) -> None:
    """Drop a shared simulated modem (tests start from a fresh one)."""
    with _SHARED_LOCK:
        _SHARED.pop(name, None)


class Serial(SerialBase):
    """A pyserial port backed by a simulated modem."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.engine: SimulatedModem | None = None
        self._ready = threading.Condition()
        self._cancelled = False
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        """Build (or look up) the engine the URL names."""
        if self.is_open:
            raise SerialException("port is already open")
        if self.port is None:
            raise SerialException("port must be configured before it can be used")
        self.engine = modem_for_url(str(self.port))
        self.is_open = True
        self.reset_input_buffer()

    def close(self) -> None:
        """Close; a shared engine keeps its state for the next open."""
        self.is_open = False
        self.cancel_read()

    def _reconfigure_port(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to configure on a simulated line."""

    @property
    def in_waiting(self) -> int:
        """Bytes that are due now (they are taken on the next read)."""
        engine = self._engine()
        with self._ready:
            return engine.due_size(time.monotonic())

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` bytes, waiting at most ``timeout`` for the first ones.

        Returns whatever is due; bytes not returned stay queued in order.
        """
        engine = self._engine()
        timeout = self.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            self._cancelled = False
            while True:
                now = time.monotonic()
                data = engine.take_due(now)
                if data:
                    if len(data) > size > 0:
                        engine.feed_back(data[size:])
                        data = data[:size]
                    return data
                if self._cancelled or not self.is_open:
                    return b""
                due = engine.next_due()
                waits = [
                    w
                    for w in (
                        None if due is None else due - now,
                        None if deadline is None else deadline - now,
                    )
                    if w is not None
                ]
                wait = min(waits) if waits else None
                if wait is not None and wait <= 0:
                    if deadline is not None and deadline <= now:
                        return b""
                    continue
                self._ready.wait(wait)

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        """Give the bytes to the simulated modem."""
        engine = self._engine()
        payload = bytes(data)
        with self._ready:
            engine.feed(payload, time.monotonic())
            self._ready.notify_all()
        return len(payload)

    def cancel_read(self) -> None:
        """Wake a blocked read, which returns what it has."""
        with self._ready:
            self._cancelled = True
            self._ready.notify_all()

    def reset_input_buffer(self) -> None:
        """Drop what is already due, as tcflush does on a real port."""
        engine = self._engine()
        with self._ready:
            engine.take_due(time.monotonic())

    def reset_output_buffer(self) -> None:
        """Nothing is buffered on the way out."""

    def flush(self) -> None:
        """Writes are handed over at once."""

    def _engine(self) -> SimulatedModem:
        if not self.is_open or self.engine is None:
            raise PortNotOpenError()
        return self.engine

    def _update_dtr_state(self) -> None:
        """No modem-control lines to drive."""

    def _update_rts_state(self) -> None:
        """No modem-control lines to drive."""

    def _update_break_state(self) -> None:
        """No break to send."""
