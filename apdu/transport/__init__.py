"""Card transports: one base class, one private primitive per backend.

Backends are chosen by name and imported lazily (pyscard is only loaded when a
PC/SC reader is really used):

- ``pcsc``: a PC/SC reader through pyscard (real readers and the virtual lab);
- ``inprocess``: a card model in this process (unit tests of pure logic);
- ``replay``: answers recorded in a ``--trace`` file.

The modem package adds a fourth, ``AT+CSIM`` through an LTE modem.
"""

from apdu.transport.base import CardTransport, TransportStats
from apdu.transport.trace import Tracer, TraceRecord, mask_command

__all__ = ["CardTransport", "TraceRecord", "Tracer", "TransportStats", "mask_command"]
