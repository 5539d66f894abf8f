"""Everything ``simtool modem info`` shows, read in one pass.

Each part (identity, SIM, network, contexts) is read on its own; a part that
fails becomes a note instead of hiding the others, since a modem with a locked
SIM still has an IMEI worth printing.
"""

from __future__ import annotations

from dataclasses import dataclass

from modem.channel import DEFAULT_TIMEOUT, Unsolicited
from modem.errors import ModemError
from modem.modem import ContextInfo, Modem, ModemIdentity, NetworkInfo, SimInfo
from modem.trace import AtTracer


@dataclass(frozen=True, slots=True)
class ModemInfo:
    """Identity, SIM, network, contexts, and the unsolicited lines seen meanwhile."""

    port: str
    dialect: str
    identity: ModemIdentity
    sim: SimInfo
    network: NetworkInfo | None
    contexts: tuple[ContextInfo, ...]
    unsolicited: tuple[str, ...]
    notes: tuple[str, ...]


def gather_info(modem: Modem) -> ModemInfo:
    """Read everything from an open modem."""
    notes: list[str] = []
    sim = modem.sim_info()
    network: NetworkInfo | None = None
    try:
        network = modem.network_info()
    except ModemError as error:
        notes.append(f"network state unreadable: {error}")
    contexts: tuple[ContextInfo, ...] = ()
    try:
        contexts = tuple(modem.contexts())
    except ModemError as error:
        notes.append(f"contexts unreadable: {error}")
    seen: list[Unsolicited] = modem.channel.drain_unsolicited()
    return ModemInfo(
        port=modem.port,
        dialect=modem.dialect.name,
        identity=modem.identity,
        sim=sim,
        network=network,
        contexts=contexts,
        unsolicited=tuple(u.line for u in seen),
        notes=tuple(notes + list(sim.notes) + modem.events.notes),
    )


def read_info(
    port: str,
    *,
    dialect: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    tracer: AtTracer | None = None,
) -> ModemInfo:
    """Open ``port``, read everything, close."""
    with Modem.open(port, dialect=dialect, timeout=timeout, tracer=tracer) as modem:
        return gather_info(modem)
