"""LTE modems over AT commands: the channel, the dialects, configuration, the simulator.

The public API (what the CLI and the provisioning workflows call):

- :class:`~modem.modem.Modem`: open a port, ask identity, SIM, network, contexts;
- :func:`~modem.configure.configure_port`: write, apply, read back and prove an
  APN profile, returning a :class:`~modem.configure.ConfigureResult`;
- :func:`~modem.info.read_info`, :func:`~modem.discovery.list_modem_ports`;
- :func:`open_csim_transport`: ``AT+CSIM`` as an :mod:`apdu` card transport;
- the simulator in :mod:`modem.simulator` (pty server and ``simmodem://`` URLs).

Names are imported on first use so that ``import modem`` stays cheap (pyserial
imports the package when it looks for the ``simmodem://`` handler).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Modem": "modem.modem",
    "ModemIdentity": "modem.modem",
    "enter_pin_on_port": "modem.modem",
    "configure": "modem.configure",
    "configure_port": "modem.configure",
    "ConfigureResult": "modem.configure",
    "FieldCheck": "modem.configure",
    "read_info": "modem.info",
    "ModemInfo": "modem.info",
    "list_modem_ports": "modem.discovery",
    "CsimTransport": "modem.csim",
    "open_csim_transport": "modem.csim",
    "ApnProfile": "modem.profiles",
    "get_profile": "modem.profiles",
    "Auth": "modem.dialects",
    "get_dialect": "modem.dialects",
}

__all__ = [
    "ApnProfile",
    "Auth",
    "ConfigureResult",
    "CsimTransport",
    "FieldCheck",
    "Modem",
    "ModemIdentity",
    "ModemInfo",
    "configure",
    "configure_port",
    "enter_pin_on_port",
    "get_dialect",
    "get_profile",
    "list_modem_ports",
    "open_csim_transport",
    "read_info",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modem' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
