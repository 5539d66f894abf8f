"""Card transports: one base class, one private primitive per backend.

Backends are chosen by name and imported lazily (pyscard is only loaded when a
PC/SC reader is really used):

- ``pcsc``: a PC/SC reader through pyscard (real readers and the virtual lab);
- ``inprocess``: a card model in this process (unit tests of pure logic);
- ``replay``: answers recorded in a ``--trace`` file.

The modem package adds a fourth, ``AT+CSIM`` through an LTE modem.
"""

from typing import Any

from apdu.transport.base import CardTransport, TransportStats

__all__ = ["CardTransport", "TraceRecord", "Tracer", "TransportStats", "mask_command"]


def __getattr__(name: str) -> Any:
    # The trace names come from apdu.transport.trace on first use: a card
    # read without --trace does not load it (start-up time counts).
    if name in ("Tracer", "TraceRecord", "mask_command"):
        from apdu.transport import trace

        return getattr(trace, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
