"""Final result codes and error numbers of the AT command set.

Sources (facts only):

- ITU-T V.250 clause 5.7: the verbose result codes ``OK``, ``CONNECT``,
  ``RING``, ``NO CARRIER``, ``ERROR``, ``NO DIALTONE``, ``BUSY``, ``NO ANSWER``.
- 3GPP TS 27.007 clause 9.2: ``+CME ERROR: <err>``, a number or a text chosen
  by ``AT+CMEE`` (0 plain ``ERROR``, 1 numeric, 2 verbose). The table below
  holds the general and GPRS-related values the station can meet.
- 3GPP TS 27.005 clause 3.2.5: ``+CMS ERROR: <err>`` for the SMS commands.
- Vendor final result codes real modems end a command with instead of
  ``ERROR``: ``COMMAND NOT SUPPORT`` and ``TOO MANY PARAMETERS`` (Huawei and
  other HiSilicon/ZTE firmware), ``MODEM ERROR: <n>`` (older Qualcomm-based
  firmware) and ``ABORTED`` (u-blox, a command cut short by a character).
  Without them a command would wait for its deadline (180 s for a network
  scan).

A modem may send either form of an error, whatever ``AT+CMEE`` says (vendors
differ), so :func:`classify_final` maps numbers to text and text back to the
number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# TS 27.007 clause 9.2.1 (general) and 9.2.2 (GPRS-related).
CME_ERRORS: dict[int, str] = {
    0: "phone failure",
    1: "no connection to phone",
    2: "phone-adaptor link reserved",
    3: "operation not allowed",
    4: "operation not supported",
    5: "PH-SIM PIN required",
    6: "PH-FSIM PIN required",
    7: "PH-FSIM PUK required",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    14: "SIM busy",
    15: "SIM wrong",
    16: "incorrect password",
    17: "SIM PIN2 required",
    18: "SIM PUK2 required",
    20: "memory full",
    21: "invalid index",
    22: "not found",
    23: "memory failure",
    24: "text string too long",
    25: "invalid characters in text string",
    26: "dial string too long",
    27: "invalid characters in dial string",
    30: "no network service",
    31: "network timeout",
    32: "network not allowed - emergency calls only",
    40: "network personalization PIN required",
    41: "network personalization PUK required",
    42: "network subset personalization PIN required",
    43: "network subset personalization PUK required",
    44: "service provider personalization PIN required",
    45: "service provider personalization PUK required",
    46: "corporate personalization PIN required",
    47: "corporate personalization PUK required",
    50: "incorrect parameters",
    100: "unknown",
    103: "illegal MS",
    106: "illegal ME",
    107: "GPRS services not allowed",
    108: "GPRS services and non-GPRS services not allowed",
    111: "PLMN not allowed",
    112: "location area not allowed",
    113: "roaming not allowed in this location area",
    114: "GPRS services not allowed in this PLMN",
    115: "no suitable cells in location area",
    122: "congestion",
    # 126..134 carry the session-management / ESM cause numbers 26..34
    # (TS 24.008 clause 10.5.6.6, TS 24.301 clause 9.9.4.4) of a rejected
    # activation.
    126: "insufficient resources",
    127: "missing or unknown APN",
    128: "unknown PDP address or PDP type",
    129: "user authentication failed",
    130: "activation rejected by GGSN, Serving GW or PDN GW",
    131: "activation rejected, unspecified",
    132: "service option not supported",
    133: "requested service option not subscribed",
    134: "service option temporarily out of order",
    148: "unspecified GPRS error",
    149: "PDP authentication failure",
    150: "invalid mobile class",
}

# TS 27.005 clause 3.2.5.
CMS_ERRORS: dict[int, str] = {
    300: "ME failure",
    301: "SMS service of ME reserved",
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    305: "invalid text mode parameter",
    310: "SIM not inserted",
    311: "SIM PIN required",
    312: "PH-SIM PIN required",
    313: "SIM failure",
    314: "SIM busy",
    315: "SIM wrong",
    316: "SIM PUK required",
    317: "SIM PIN2 required",
    318: "SIM PUK2 required",
    320: "memory failure",
    321: "invalid memory index",
    322: "memory full",
    330: "SMSC address unknown",
    331: "no network service",
    332: "network timeout",
    340: "no +CNMA acknowledgement expected",
    500: "unknown error",
}


def _normal(text: str) -> str:
    return re.sub(r"[\s_]+", " ", text.strip().strip('"').lower())


_CME_BY_TEXT = {_normal(text): code for code, text in CME_ERRORS.items()}
_CMS_BY_TEXT = {_normal(text): code for code, text in CMS_ERRORS.items()}

# V.250 final result codes other than OK and the extended errors. CONNECT ends a
# command too (the modem switched to data), which the station never asks for.
FAILURE_CODES = frozenset(
    {
        "ERROR",
        "NO CARRIER",
        "NO DIALTONE",
        "BUSY",
        "NO ANSWER",
        "COMMAND NOT SUPPORT",
        "COMMAND NOT SUPPORTED",
        "TOO MANY PARAMETERS",
        "ABORTED",
    }
)
# Vendor failures that carry a number after a colon (``MODEM ERROR: 5``).
NUMBERED_FAILURES = ("MODEM ERROR:",)
_NUMBER = re.compile(r"[0-9]{1,5}")

FinalKind = Literal["ok", "error", "cme", "cms", "connect"]


@dataclass(frozen=True, slots=True)
class FinalResult:
    """One final result line, decoded.

    ``code``/``text`` are filled for ``+CME ERROR``/``+CMS ERROR`` whichever
    form arrived; ``text`` holds the verbose line for the plain failure codes.
    """

    line: str
    kind: FinalKind
    code: int | None = None
    text: str | None = None

    @property
    def ok(self) -> bool:
        """True for ``OK`` only."""
        return self.kind == "ok"


def classify_final(line: str) -> FinalResult | None:
    """Decode ``line`` if it is a final result code, else ``None``.

    Never raises, whatever the text (any Unicode, any length): an unknown
    error text keeps ``code`` at ``None``, a number in a script other than
    ASCII (``+CME ERROR: ²``) is kept as text.
    """
    try:
        return _classify(line)
    except Exception:  # the reader thread depends on this never raising
        # A line nothing here can decode is treated as a plain failure only
        # when it looks like one; anything else is not a final result.
        return FinalResult(line.strip(), "error", text=line.strip()) if "ERROR" in line else None


def _classify(line: str) -> FinalResult | None:
    text = line.strip()
    upper = text.upper()
    if upper == "OK":
        return FinalResult(text, "ok")
    if upper in FAILURE_CODES:
        return FinalResult(text, "error", text=upper)
    if upper == "CONNECT" or upper.startswith("CONNECT "):
        return FinalResult(text, "connect")
    for prefix in NUMBERED_FAILURES:
        if upper.startswith(prefix):
            value = text[len(prefix) :].strip()
            number = int(value) if _NUMBER.fullmatch(value) else None
            return FinalResult(text, "error", number, text)
    tables: tuple[tuple[str, FinalKind, dict[int, str], dict[str, int]], ...] = (
        ("+CME ERROR:", "cme", CME_ERRORS, _CME_BY_TEXT),
        ("+CMS ERROR:", "cms", CMS_ERRORS, _CMS_BY_TEXT),
    )
    for prefix, kind, by_number, by_text in tables:
        if upper.startswith(prefix):
            value = text[len(prefix) :].strip()
            if _NUMBER.fullmatch(value):
                # ASCII digits only: str.isdigit() accepts "²", which int() refuses.
                number = int(value)
                return FinalResult(text, kind, number, by_number.get(number))
            found = by_text.get(_normal(value))
            return FinalResult(text, kind, found, value.strip('"') or None)
    return None


# TS 24.301 clause 9.9.4.4 (ESM cause) and TS 24.008 clause 10.5.6.6 (SM
# cause): why the network refused a PDN connection / PDP context.
ESM_CAUSES: dict[int, str] = {
    8: "operator determined barring",
    26: "insufficient resources",
    27: "missing or unknown APN",
    28: "unknown PDN type",
    29: "user authentication failed",
    30: "request rejected by Serving GW or PDN GW",
    31: "request rejected, unspecified",
    32: "service option not supported",
    33: "requested service option not subscribed",
    34: "service option temporarily out of order",
    38: "network failure",
    50: "PDN type IPv4 only allowed",
    51: "PDN type IPv6 only allowed",
    55: "multiple PDN connections for a given APN not allowed",
}

# TS 24.301 clause 9.9.3.9 (EMM cause): why the network refused an attach or
# a tracking area update, the causes a SIM or its subscription explains.
EMM_CAUSES: dict[int, str] = {
    2: "IMSI unknown in HSS",
    3: "illegal UE",
    5: "IMEI not accepted",
    6: "illegal ME",
    7: "EPS services not allowed",
    8: "EPS services and non-EPS services not allowed",
    11: "PLMN not allowed",
    12: "tracking area not allowed",
    13: "roaming not allowed in this tracking area",
    14: "EPS services not allowed in this PLMN",
    15: "no suitable cells in tracking area",
    22: "congestion",
}

# The +CME ERROR numbers of a rejected activation, by ESM/SM cause (126..134
# are cause + 100 in TS 27.007 clause 9.2.2); 149 is the older GPRS
# "PDP authentication failure".
CME_FOR_ESM = {cause: cause + 100 for cause in range(26, 35)}
ESM_FOR_CME = {**{cme: cause for cause, cme in CME_FOR_ESM.items()}, 149: 29, 133: 33}


def cme_text(code: int) -> str:
    """The TS 27.007 text of a ``+CME ERROR`` number (``"unknown error N"`` if absent)."""
    return CME_ERRORS.get(code, f"unknown error {code}")
