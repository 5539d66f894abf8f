"""``modem:PORT``: the SIM inside an LTE modem, through ``AT+CSIM`` (TS 27.007 8.17).

``PORT`` is the modem's AT port (``/dev/ttyUSB2``, a pty of the simulator, or
a pyserial URL such as ``simmodem://quectel``). The dialect is detected unless
the command gives ``--dialect``. ``--modem PORT`` is the same reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simtool.readers.base import OpenOptions, ReaderBackend, ReaderUrl

if TYPE_CHECKING:
    from apdu.transport.base import CardTransport
    from apdu.transport.trace import Tracer


class ModemBackend(ReaderBackend):
    """``modem:PORT``: AT+CSIM through a modem's AT port."""

    scheme = "modem"
    summary = "the SIM inside an LTE modem, through AT+CSIM"
    target_help = "PORT"

    def open(self, url: ReaderUrl, options: OpenOptions, tracer: Tracer | None) -> CardTransport:
        from modem.csim import CsimTransport

        if options.timeout is None:
            return CsimTransport(url.target, dialect=options.dialect, tracer=tracer)
        return CsimTransport(
            url.target, dialect=options.dialect, timeout=options.timeout, tracer=tracer
        )
