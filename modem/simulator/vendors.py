"""What each simulated vendor looks like beyond the shared dialect table.

The command syntax (credential command, argument order, read-back layout,
ICCID and counter commands) comes from :data:`modem.dialects.DIALECTS`; this
table adds what only a simulator needs: the identity strings, the boot and
chatter unsolicited lines, and how ICCIDs and activated APNs are shown.
Identities are invented (IMEIs have valid Luhn digits but invented TACs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from apdu.files import luhn_check_digit


@dataclass(frozen=True, slots=True)
class Vendor:
    """Simulator-only facts of one dialect.

    ``boot_urcs`` follow a (re)start; a ``{cpin}`` in one is replaced by the
    SIM's state. ``chatter`` is what the ``urc`` fault sprinkles around
    answers. ``iccid_pad_f`` pads a 19-digit ICCID to 20 characters with ``F``
    (Sierra's ``!ICCID?``). ``apn_operator_suffix`` makes an active context
    read back as ``<apn>.mncXXX.mccYYY.gprs``.

    ``pdp_reject`` is how a PDP activation the network refused ends:
    ``esm`` with ``+CME ERROR: <100 + ESM cause>`` (TS 27.007 clause 9.2.2:
    127 unknown APN, 129 authentication failed, 133 not subscribed),
    ``gprs`` with the older ``+CME ERROR: 149`` (PDP authentication failure)
    or ``148`` (unspecified GPRS error), ``plain`` with ``ERROR``; the cause
    is then in ``AT+CEER``, written as ``ceer`` (``{cause}`` the number,
    ``{text}`` the TS 24.301 words).
    """

    manufacturer: str
    model: str
    revision: str
    tac: str
    serial: str
    boot_urcs: tuple[str, ...]
    chatter: tuple[str, ...]
    iccid_pad_f: bool = False
    apn_operator_suffix: bool = False
    pdp_reject: Literal["esm", "gprs", "plain"] = "esm"
    ceer: str = '+CEER: "ESM",{cause}'

    @property
    def imei(self) -> str:
        """TAC + serial + Luhn check digit (TS 23.003 clause 6.2.1)."""
        body = self.tac + self.serial
        return body + luhn_check_digit(body)


VENDORS: Mapping[str, Vendor] = MappingProxyType(
    {
        "generic": Vendor(
            "SIMTOOL",
            "SIMMODEM-27007",
            "1.0.0",
            "35693803",
            "564380",
            ("+CPIN: {cpin}",),
            ("+CGEV: ME PDN ACT 1",),
        ),
        "quectel": Vendor(
            "Quectel",
            "EC25",
            "EC25EFAR06A06M4G",
            "86269503",
            "104522",
            ("RDY", "+CFUN: 1", "+CPIN: {cpin}", "+QUSIM: 1", "+QIND: SMS DONE"),
            ('+QIND: "csq",20,99', "+QIND: PB DONE"),
            apn_operator_suffix=True,
            pdp_reject="gprs",
            ceer='+CEER: "{text}"',
        ),
        "sierra": Vendor(
            "Sierra Wireless, Incorporated",
            "EM7455",
            "SWI9X30C_02.33.03.00",
            "35907206",
            "208811",
            ("+CPIN: {cpin}",),
            ("+CGEV: NW DETACH",),
            iccid_pad_f=True,
            pdp_reject="plain",
            ceer="+CEER: PDN connection rejected, ESM cause #{cause}",
        ),
        "simcom": Vendor(
            "SIMCOM INCORPORATED",
            "SIMCOM_SIM7600E-H",
            "LE20B04SIM7600M22",
            "86844804",
            "377120",
            ("RDY", "+CPIN: {cpin}", "SMS DONE", "PB DONE"),
            ("+CGEV: ME PDN ACT 1", "PB DONE"),
            apn_operator_suffix=True,
            pdp_reject="gprs",
            ceer="+CEER: {text}",
        ),
        "ublox": Vendor(
            "u-blox",
            "SARA-R410M-02B",
            "L0.0.00.00.05.12",
            "35291611",
            "034455",
            ("+CPIN: {cpin}",),
            ('+UUPSDA: 0,"10.0.0.2"',),
            ceer='+CEER: "SM",{cause},"{text}"',
        ),
        "telit": Vendor(
            "Telit",
            "LE910C1-EU",
            "25.30.224",
            "35171910",
            "602214",
            ("+CPIN: {cpin}",),
            ("#QSS: 1",),
            ceer="+CEER: {text}",
        ),
        "huawei": Vendor(
            "huawei",
            "ME909s-120",
            "11.617.01.00.00",
            "86710303",
            "911573",
            ("^SIMST: 1", "+CPIN: {cpin}"),
            ("^MODE: 17,17", "^RSSI: 20"),
            apn_operator_suffix=True,
            pdp_reject="plain",
            ceer='+CEER: "ESM cause: {cause}"',
        ),
        "fibocom": Vendor(
            "Fibocom Wireless Inc.",
            "L850-GL",
            "18500.5001.00.05.27.16",
            "86502104",
            "665088",
            ("+CPIN: {cpin}",),
            ("+XREG: 1",),
            apn_operator_suffix=True,
        ),
    }
)
