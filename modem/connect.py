"""Prove the credentials: activate the PDP context and see what the network says.

Writing the APN and reading it back proves what the modem stores, not that
the network accepts it. :func:`connect` activates context ``cid``
(``AT+CGACT=1,<cid>``), reads the address and name servers the network gave
it (``AT+CGCONTRDP=<cid>``, TS 27.007 clause 10.1.23; ``AT+CGPADDR`` when the
modem lacks it) and deactivates it again unless asked to stay.

A context that is already active (the LTE default bearer of a working
router) may have been activated with other credentials than the ones stored
now, so it is deactivated and activated again: that proves the stored ones.
It is left active afterwards, as it was found. A modem that refuses to
deactivate it (the last PDN connection of an LTE attach) keeps it; the
result then says the address is that of the connection in use.

A refused activation raises :class:`~modem.errors.ConnectionRejectedError`
with the cause in plain words: from the ``+CME ERROR`` number (TS 27.007
clause 9.2.2: 127 unknown APN, 129 authentication failed, 133 not
subscribed, 149 PDP authentication failure, 30 no network service) or,
when the final result does not say (``ERROR``, ``148``), from ``AT+CEER``.
"""

from __future__ import annotations

from dataclasses import dataclass

from modem.channel import DEFAULT_TIMEOUT, at
from modem.codes import CME_ERRORS, ESM_CAUSES, ESM_FOR_CME
from modem.errors import AtCommandError, AtParseError, ConnectionRejectedError, ModemError
from modem.modem import Modem
from modem.parsers import (
    ContextAddress,
    parse_ceer,
    parse_cgact,
    parse_cgcontrdp,
    parse_cgpaddr,
)
from modem.trace import AtTracer

# CME numbers that say there is no network to ask (TS 27.007 clause 9.2.1).
_NO_SERVICE = {30: "no network service", 31: "network timeout", 32: "emergency calls only"}
# CME numbers that say the SIM is not usable yet.
_SIM_NOT_READY = {10, 11, 12, 13, 14, 15}
# CME numbers of a request the modem itself refused (no network was asked):
# operation not allowed / not supported, invalid index, incorrect parameters.
_MODEM_REFUSED = {3, 4, 21, 50}
_KINDS = {27: "apn", 29: "authentication", 33: "subscription"}


@dataclass(frozen=True, slots=True)
class ConnectResult:
    """What the activation proved: the network accepted the context and gave it an address."""

    port: str
    dialect: str
    cid: int
    apn: str | None
    ipv4: str | None
    ipv6: str | None
    dns: tuple[str, ...]
    gateway: str | None
    was_active: bool
    reactivated: bool
    deactivated: bool
    address_source: str
    notes: tuple[str, ...] = ()

    @property
    def connected(self) -> bool:
        """True when the network gave the context an address."""
        return bool(self.ipv4 or self.ipv6)


def connect(modem: Modem, cid: int = 1, *, stay: bool = False) -> ConnectResult:
    """Activate ``cid``, read its addresses, deactivate it unless ``stay`` (see the module doc)."""
    if not 1 <= cid <= 24:
        raise ModemError(f"context id {cid} is outside 1..24")
    was_active = _active(modem, cid)
    activate = True
    if was_active:
        try:
            modem.write(at(f"AT+CGACT=0,{cid}", prefix=False))
        except AtCommandError as error:
            activate = False
            modem.events.add(
                f"context {cid} was active and the modem would not deactivate it ({error}): "
                "the address shown is that of the connection in use, not a new activation"
            )
    if activate:
        try:
            modem.write(at(f"AT+CGACT=1,{cid}", prefix=False))
        except AtCommandError as error:
            raise _rejection(modem, cid, error) from error
    try:
        address, source = _addresses(modem, cid)
    except ModemError:
        if not was_active and not stay:
            _deactivate(modem, cid)
        raise
    deactivated = False
    if was_active:
        modem.events.add(f"context {cid} was active before the test; left active")
    elif not stay:
        deactivated = _deactivate(modem, cid)
    return ConnectResult(
        port=modem.port,
        dialect=modem.dialect.name,
        cid=cid,
        apn=address.apn,
        ipv4=address.ipv4,
        ipv6=address.ipv6,
        dns=address.dns,
        gateway=address.gateway,
        was_active=was_active,
        reactivated=was_active and activate,
        deactivated=deactivated,
        address_source=source,
        notes=tuple(modem.events.notes),
    )


def connect_port(
    port: str,
    cid: int = 1,
    *,
    stay: bool = False,
    dialect: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    tracer: AtTracer | None = None,
) -> ConnectResult:
    """Open ``port``, run :func:`connect`, close."""
    with Modem.open(port, dialect=dialect, timeout=timeout, tracer=tracer) as modem:
        return connect(modem, cid, stay=stay)


def _active(modem: Modem, cid: int) -> bool:
    try:
        return parse_cgact(modem.query("AT+CGACT?").lines).get(cid, False)
    except (AtCommandError, AtParseError):
        return False


def _deactivate(modem: Modem, cid: int) -> bool:
    try:
        modem.write(at(f"AT+CGACT=0,{cid}", prefix=False))
    except AtCommandError as error:
        modem.events.add(f"context {cid} could not be deactivated again: {error}")
        return False
    return True


def _addresses(modem: Modem, cid: int) -> tuple[ContextAddress, str]:
    """The context's addresses: ``+CGCONTRDP``, else ``+CGPADDR``."""
    try:
        found = parse_cgcontrdp(
            modem.query(at(f"AT+CGCONTRDP={cid}", prefix="+CGCONTRDP:")).lines, cid
        )
        if found and (found[0].ipv4 or found[0].ipv6):
            return found[0], "AT+CGCONTRDP"
    except (AtCommandError, AtParseError) as error:
        modem.events.add(f"AT+CGCONTRDP gave no address ({error}); asked AT+CGPADDR")
    addresses = parse_cgpaddr(
        modem.query(at(f"AT+CGPADDR={cid}", prefix="+CGPADDR:")).lines, cid
    ).get(cid, ())
    ipv4 = next((a for a in addresses if "." in a), None)
    ipv6 = next((a for a in addresses if ":" in a), None)
    return ContextAddress(cid, None, None, ipv4, None, ipv6, None, ()), "AT+CGPADDR"


def _rejection(modem: Modem, cid: int, error: AtCommandError) -> ConnectionRejectedError:
    """The activation failure in plain words, from the CME number or ``AT+CEER``."""
    code = error.cme_code
    cause: int | None = None
    if code in _NO_SERVICE:
        reason = f"{_NO_SERVICE[code]} (+CME ERROR {code})"
        # No network is most often a SIM still waiting for its PIN: say so.
        try:
            state = modem.pin_state()
        except ModemError:
            state = None
        if state is not None and state != "READY":
            return _error(cid, None, f"it is in state {state}, so {reason}", "sim", error)
        return _error(cid, None, reason, "no service", error)
    if code in _SIM_NOT_READY:
        reason = CME_ERRORS.get(code, str(code))
        return _error(cid, None, reason, "sim", error)
    if code in _MODEM_REFUSED:
        reason = f"{CME_ERRORS.get(code, str(code))} (+CME ERROR {code}): is context {cid} defined?"
        return _error(cid, None, reason, "modem", error)
    if code is not None:
        cause = ESM_FOR_CME.get(code)
    report = None
    if cause is None:
        try:
            report = parse_ceer(modem.query(at("AT+CEER", prefix="+CEER:")).lines)
            cause = report.cause
        except (AtCommandError, AtParseError) as ceer_error:
            modem.events.add(f"AT+CEER gave no cause: {ceer_error}")
    if cause is not None:
        reason = f"{ESM_CAUSES.get(cause, 'cause')} (ESM cause {cause})"
    elif report is not None and report.text:
        reason = report.text
    else:
        reason = error.cme_text or error.final
    return _error(cid, cause, reason, _KINDS.get(cause or -1, "other"), error)


def _error(
    cid: int, cause: int | None, reason: str, kind: str, error: AtCommandError
) -> ConnectionRejectedError:
    lead = {
        "authentication": "the network refused the credentials (authentication failed)",
        "apn": "the network does not know this APN",
        "subscription": "the SIM's subscription does not allow this APN",
        "no service": "no network to connect through",
        "sim": "the SIM is not ready",
        "modem": "the modem would not start the activation",
    }.get(kind, "the network refused the connection")
    return ConnectionRejectedError(
        f"context {cid}: {lead}: {reason}",
        cause=cause,
        reason=reason,
        kind=kind,
        final=error.final,
    )
