"""Final result codes and error numbers of the AT command set.

Sources (facts only):

- ITU-T V.250 clause 5.7: the verbose result codes ``OK``, ``CONNECT``,
  ``RING``, ``NO CARRIER``, ``ERROR``, ``NO DIALTONE``, ``BUSY``, ``NO ANSWER``.
- 3GPP TS 27.007 clause 9.2: ``+CME ERROR: <err>``, a number or a text chosen
  by ``AT+CMEE`` (0 plain ``ERROR``, 1 numeric, 2 verbose). The table below
  holds the general and GPRS-related values the station can meet.
- 3GPP TS 27.005 clause 3.2.5: ``+CMS ERROR: <err>`` for the SMS commands.

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
    111: "PLMN not allowed",
    112: "location area not allowed",
    113: "roaming not allowed in this location area",
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
FAILURE_CODES = frozenset({"ERROR", "NO CARRIER", "NO DIALTONE", "BUSY", "NO ANSWER"})

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

    Never raises: an unknown error text keeps ``code`` at ``None``.
    """
    text = line.strip()
    upper = text.upper()
    if upper == "OK":
        return FinalResult(text, "ok")
    if upper in FAILURE_CODES:
        return FinalResult(text, "error", text=upper)
    if upper == "CONNECT" or upper.startswith("CONNECT "):
        return FinalResult(text, "connect")
    tables: tuple[tuple[str, FinalKind, dict[int, str], dict[str, int]], ...] = (
        ("+CME ERROR:", "cme", CME_ERRORS, _CME_BY_TEXT),
        ("+CMS ERROR:", "cms", CMS_ERRORS, _CMS_BY_TEXT),
    )
    for prefix, kind, by_number, by_text in tables:
        if upper.startswith(prefix):
            value = text[len(prefix) :].strip()
            if value.isdigit() and len(value) < 6:
                number = int(value)
                return FinalResult(text, kind, number, by_number.get(number))
            found = by_text.get(_normal(value))
            return FinalResult(text, kind, found, value.strip('"') or None)
    return None


def cme_text(code: int) -> str:
    """The TS 27.007 text of a ``+CME ERROR`` number (``"unknown error N"`` if absent)."""
    return CME_ERRORS.get(code, f"unknown error {code}")
