"""``AT+CSIM`` as a card transport: the card layer reads a SIM through a modem.

3GPP TS 27.007 clause 8.17: ``AT+CSIM=<length>,"<command>"`` passes one APDU
to the SIM and answers ``+CSIM: <length>,"<response>"`` with the data and the
status word; ``<length>`` counts hex characters. The modem does no GET
RESPONSE of its own here, so ``61xx``/``6Cxx`` reach the card layer, which
handles them as it does for a PC/SC reader.

The AT channel has its own per-command deadline, so this transport needs no
watchdog thread. There is no standard AT command for the ATR: ``_connect``
returns an empty ATR.
"""

from __future__ import annotations

from apdu.errors import DeadlineError, NoCardError, TransportError
from apdu.transport.base import CardTransport
from apdu.transport.trace import Tracer
from modem.channel import DEFAULT_TIMEOUT
from modem.errors import AtCommandError, AtTimeoutError, ModemError
from modem.modem import Modem
from modem.trace import AtTracer


class CsimTransport(CardTransport):
    """A card behind a modem's ``AT+CSIM``.

    Opens the modem lazily on ``connect``; ``close`` (or leaving the ``with``
    block) closes the port.
    """

    needs_watchdog = False

    def __init__(
        self,
        port: str,
        *,
        dialect: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        tracer: Tracer | None = None,
        at_tracer: AtTracer | None = None,
    ) -> None:
        super().__init__(timeout=timeout, tracer=tracer, name=f"modem:{port}")
        self.port = port
        self.dialect_name = dialect
        self.at_tracer = at_tracer
        self.modem: Modem | None = None

    @property
    def protocol(self) -> str:
        """The modem hides the transmission protocol; the SIM speaks T=0 behind it."""
        return "AT+CSIM"

    def _connect(self) -> bytes:
        if self.modem is None:
            try:
                self.modem = Modem.open(
                    self.port,
                    dialect=self.dialect_name,
                    timeout=self.timeout,
                    tracer=self.at_tracer,
                )
            except ModemError as error:
                raise TransportError(f"{self.name}: {error}") from error
        return b""

    def _disconnect(self) -> None:
        if self.modem is not None:
            modem, self.modem = self.modem, None
            modem.close()

    def _disconnect_and_reset(self) -> None:
        # AT+CSIM has no card reset; AT+CFUN=0 powers the SIM down and
        # AT+CFUN=1 up again, which clears a PIN verified through AT+CSIM.
        try:
            if self.modem is not None:
                self.modem.cfun_cycle()
        except ModemError as error:
            raise TransportError(f"{self.name}: cannot power-cycle the SIM: {error}") from error
        finally:
            self._disconnect()

    def _transmit(self, command: bytes, timeout: float) -> bytes:
        if self.modem is None:
            self._connect()
        assert self.modem is not None
        try:
            return self.modem.csim(command, timeout=timeout)
        except AtTimeoutError as error:
            raise DeadlineError(
                f"{self.name}: {error}", command=command[:4], timeout=timeout
            ) from error
        except AtCommandError as error:
            if _sim_missing(error):
                raise NoCardError(f"{self.name}: the SIM was removed ({error})") from error
            raise TransportError(f"{self.name}: the modem refused the APDU: {error}") from error
        except ModemError as error:
            raise TransportError(f"{self.name}: {error}") from error

    def close(self) -> None:
        """Close the modem port (same as ``disconnect``)."""
        self.disconnect()


# TS 27.007 clause 9.2: +CME ERROR 10 "SIM not inserted" (310 is its +CMS twin,
# which some modems answer to AT+CSIM as well).
_SIM_NOT_INSERTED = frozenset({10, 310})


def _sim_missing(error: AtCommandError) -> bool:
    """Whether the modem says there is no SIM (it was pulled), by number or by text."""
    if error.cme_code in _SIM_NOT_INSERTED:
        return True
    return (error.cme_text or "").strip().lower() == "sim not inserted"


def open_csim_transport(
    port: str,
    dialect: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    tracer: Tracer | None = None,
) -> CsimTransport:
    """A connected :class:`CsimTransport`; use it in a ``with`` block or ``close()`` it."""
    transport = CsimTransport(port, dialect=dialect, timeout=timeout, tracer=tracer)
    transport.connect()
    return transport
