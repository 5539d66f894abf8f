"""Bundled devices: a modem or router that ships with a card (§11-2-4).

A device is either described by hand (:class:`DeviceFacts`) or configured on
the bench through the modem layer (:class:`BundledModem`): the connection
settings are written, read back and proven, and the modem's IMEI, maker, model
and firmware come from the modem itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from modem.configure import configure_port
from modem.profiles import ApnProfile
from provisioning.identifiers import parse_imei, parse_label


@dataclass(frozen=True)
class DeviceFacts:
    """A device to register with a line. ``verified``: its settings were read back equal.

    ``verified`` is None for a device described by hand (nothing was proven here).
    ``connection_proven``: a data connection with these settings got an address
    from the network (``modem configure --connect-test``); False when the
    network refused it, None when no connection test ran.
    """

    imei: str
    maker: str | None = None
    model: str | None = None
    firmware: str | None = None
    apn_profile: str | None = None
    verified: bool | None = None
    connection_proven: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "imei", parse_imei(self.imei))
        for name in ("maker", "model", "firmware", "apn_profile"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, parse_label(value, f"device {name}"))


class DeviceSession(Protocol):
    """A bundled device on the bench, as the provision workflow uses it."""

    def configure(self) -> DeviceFacts:
        """Set the connection settings, read them back, and identify the device."""


class BundledModem:
    """A modem on a serial port (or ``simmodem://``), configured with an APN profile."""

    def __init__(
        self,
        port: str,
        profile: ApnProfile,
        *,
        dialect: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.port = port
        self.profile = profile
        self.dialect = dialect
        self.timeout = timeout

    def configure(self) -> DeviceFacts:
        """Configure, read back and prove the profile; the modem's identity."""
        if self.timeout is None:
            result = configure_port(self.port, self.profile, dialect=self.dialect)
        else:
            result = configure_port(
                self.port, self.profile, dialect=self.dialect, timeout=self.timeout
            )
        return DeviceFacts(
            imei=result.imei,
            maker=result.manufacturer,
            model=result.model,
            firmware=result.firmware,
            apn_profile=result.profile,
            verified=result.verified,
        )
