"""How a command reaches a card: a PC/SC reader, a lab slot, or a modem's AT+CSIM.

Every card-facing command goes through :func:`open_card`, so ``--reader``,
``--modem`` and ``--trace`` mean the same everywhere, and the choice of pcscd
(the system's, or the virtual lab's private one) is made in one place.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from apdu.errors import ReaderNotFoundError, TransportError, UsageError
from apdu.transport.base import DEFAULT_TIMEOUT, CardTransport
from apdu.transport.pcsc import (
    SCARD_E_NO_SERVICE,
    SOCKET_ENV,
    PcscTransport,
    resolve_reader,
    use_pcsc_socket,
)
from apdu.transport.trace import Tracer

SYSTEM_PCSC_SOCKET = Path("/run/pcscd/pcscd.comm")


def select_pcsc_service(reader_spec: str | None = None) -> str:
    """Choose which pcscd this process talks to; returns a description.

    An explicit ``PCSCLITE_CSOCK_NAME`` wins. Otherwise a ``lab:N`` reader, or
    a station with no system pcscd but a running lab, uses the lab's private
    pcscd. A system pcscd with real readers is used as is.
    """
    if os.environ.get(SOCKET_ENV):
        return os.environ[SOCKET_ENV]
    wants_lab = reader_spec is not None and reader_spec.startswith("lab:")
    if wants_lab or not SYSTEM_PCSC_SOCKET.exists():
        from simtool.lab import Lab

        lab = Lab.find()
        if lab is not None:
            use_pcsc_socket(lab.pcsc_socket)
            return str(lab.pcsc_socket)
        if wants_lab:
            raise ReaderNotFoundError("no lab is running; start one with 'simtool lab up'")
    return str(SYSTEM_PCSC_SOCKET)


@contextmanager
def pcsc_hints() -> Iterator[None]:
    """Add what the station knows to "pcscd is not running": usually a stopped lab."""
    try:
        yield
    except TransportError as error:
        socket_path = os.environ.get(SOCKET_ENV)
        if getattr(error, "pcsc_code", None) != SCARD_E_NO_SERVICE or not socket_path:
            raise
        from simtool.lab import explain_missing_service

        hint = explain_missing_service(socket_path)
        if hint is None:
            raise
        raise TransportError(f"{error}; {hint}") from error


def resolve_reader_spec(reader_spec: str | None) -> str:
    """The PC/SC reader name for ``--reader`` (name, unique part, index or lab:N)."""
    select_pcsc_service(reader_spec)
    if reader_spec is not None and reader_spec.startswith("lab:"):
        from simtool.lab import Lab

        lab = Lab.find()
        if lab is None:
            raise ReaderNotFoundError("no lab is running; start one with 'simtool lab up'")
        try:
            slot = int(reader_spec[4:])
        except ValueError:
            raise UsageError(f"bad lab reader {reader_spec!r}: use lab:SLOT") from None
        return lab.reader_name(slot)
    return resolve_reader(reader_spec)


@contextmanager
def open_card(
    reader_spec: str | None = None,
    *,
    modem: str | None = None,
    dialect: str | None = None,
    trace_path: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[CardTransport]:
    """A connected card transport for a command; closed (and the trace flushed) on exit."""
    if modem is not None and reader_spec is not None:
        raise UsageError("give --reader or --modem, not both")
    tracer = Tracer.to_path(trace_path) if trace_path else None
    transport: CardTransport
    try:
        if modem is not None:
            from modem import open_csim_transport

            transport = open_csim_transport(modem, dialect=dialect, tracer=tracer)
        else:
            with pcsc_hints():
                transport = PcscTransport(
                    resolve_reader_spec(reader_spec), timeout=timeout, tracer=tracer
                )
        try:
            with pcsc_hints():
                transport.connect()
            yield transport
        finally:
            transport.disconnect()
    finally:
        if tracer is not None:
            tracer.close()
