"""How a command reaches a card: every card command calls :func:`open_card`.

``--reader`` takes a reader URL (``pcsc:NAME|INDEX``, a bare name or index,
``lab:N``, ``virtual:PROFILE``, ``replay:TRACE``, ``modem:PORT``) resolved by
the registry in :mod:`simtool.readers`; ``--modem PORT`` is ``modem:PORT``.
So ``--reader``, ``--modem`` and ``--trace`` mean the same everywhere, and the
choice of pcscd (the system's, or the lab's private one) is made in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from apdu.errors import UsageError
from apdu.transport.base import CardTransport
from simtool.readers import OpenOptions, open_reader
from simtool.readers.pcsc import pcsc_hints

__all__ = ["open_card", "pcsc_hints", "reader_url_of"]


def reader_url_of(reader: str | None, modem: str | None) -> str | None:
    """The reader URL of ``--reader`` / ``--modem`` (one of them at most)."""
    if modem is not None and reader is not None:
        raise UsageError("give --reader or --modem, not both")
    return f"modem:{modem}" if modem is not None else reader


@contextmanager
def open_card(
    reader_spec: str | None = None,
    *,
    modem: str | None = None,
    dialect: str | None = None,
    trace_path: str | None = None,
    timeout: float | None = None,
) -> Iterator[CardTransport]:
    """A connected card transport for a command; closed (and the trace flushed) on exit."""
    spec = reader_url_of(reader_spec, modem)
    options = OpenOptions(timeout=timeout, trace_path=trace_path, dialect=dialect)
    with open_reader(spec, options=options) as transport:
        yield transport
