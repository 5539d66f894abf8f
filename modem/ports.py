"""Opening a modem port: a device path, a pty, or any pyserial URL.

``serial_for_url`` takes a plain path (``/dev/ttyUSB2``, ``/dev/pts/7``) as well
as URLs (``loop://``, ``spy://``, ``rfc2217://``), and the simulator's own
``simmodem://<dialect>?latency=..&faults=..`` once its package is registered
with ``serial.protocol_handler_packages``.
"""

from __future__ import annotations

import serial

from modem.errors import ModemPortError

SIMULATOR_PACKAGE = "modem.simulator"
DEFAULT_BAUDRATE = 115200


def register_simulator_scheme() -> None:
    """Make ``simmodem://`` known to ``serial.serial_for_url`` (idempotent)."""
    if SIMULATOR_PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(SIMULATOR_PACKAGE)


def is_url(port: str) -> bool:
    """True for ``scheme://...`` ports (no device locking applies to them)."""
    return "://" in port


def open_port(
    port: str, *, baudrate: int = DEFAULT_BAUDRATE, timeout: float = 0.05
) -> serial.SerialBase:
    """Open ``port``; a device is locked exclusively so two programs never share it."""
    register_simulator_scheme()
    try:
        if is_url(port):
            return serial.serial_for_url(port, baudrate=baudrate, timeout=timeout)
        return serial.serial_for_url(port, baudrate=baudrate, timeout=timeout, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as error:
        raise ModemPortError(f"cannot open {port}: {error}", port=port) from error
