"""The identifiers of the warehouse: ICCID, IMSI, IMEI, MSISDN, service code, mioID.

Each ``parse_*`` function takes what a person or a vendor file wrote and returns
the canonical form, or raises :class:`~apdu.errors.ParseError` naming the
reason. The formats are those of ``docs/domain.md`` (Identifiers).
"""

from __future__ import annotations

import re

from apdu.errors import ParseError

#: ITU-T E.118: the major industry identifier 89 (telecom), then country code 81 (Japan).
ICCID_PREFIX = "8981"
ICCID_LENGTHS = (19, 20)
#: Japanese mobile country codes.
JAPAN_MCCS = ("440", "441")
IMSI_LENGTH = 15
IMEI_LENGTH = 15

_DIGITS = re.compile(r"[0-9]+")
#: The longest service code and customer id the line database holds (its columns are 20).
SERVICE_CODE_MAX = 20
CUSTOMER_ID_MAX = 20
# Bounded, so a 5,000-character value is refused here with a clear message
# instead of being stored (SQLite) or crashing the server (PostgreSQL).
_SERVICE_CODE = re.compile(rf"hdd[0-9]{{1,{SERVICE_CODE_MAX - 3}}}")
_CUSTOMER_ID = re.compile(rf"MA[0-9]{{1,{CUSTOMER_ID_MAX - 2}}}")
# Japanese mobile and M2M/data numbers: 020, 070, 080, 090, then 8 digits.
_MSISDN = re.compile(r"0[2789]0[0-9]{8}")


# Luhn doubles every second digit counting from the check digit's left
# neighbour; these tables give each ASCII digit's contribution, so the sum runs
# in C (stock import checks a million ICCIDs).
_DOUBLED = bytes.maketrans(b"0123456789", bytes([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]))
_PLAIN = bytes.maketrans(b"0123456789", bytes(range(10)))


def luhn_check_digit(payload: str) -> int:
    """The Luhn check digit that completes ``payload`` (decimal digits only)."""
    digits = payload.encode("ascii")[::-1]
    total = sum(digits[0::2].translate(_DOUBLED)) + sum(digits[1::2].translate(_PLAIN))
    return (10 - total % 10) % 10


def luhn_ok_digits(number: str) -> bool:
    """The Luhn check of a number already known to be ASCII digits (the bulk path)."""
    digits = number.encode("ascii")[::-1]
    return (sum(digits[0::2].translate(_PLAIN)) + sum(digits[1::2].translate(_DOUBLED))) % 10 == 0


def luhn_ok(number: str) -> bool:
    """True if the last digit of ``number`` is the Luhn check digit of the rest."""
    return (
        len(number) >= 2
        and _DIGITS.fullmatch(number) is not None
        and luhn_check_digit(number[:-1]) == ord(number[-1]) - 48
    )


def _digits(value: str, name: str) -> str:
    text = value.strip()
    if not text:
        raise ParseError(f"{name} is empty", data=value)
    if _DIGITS.fullmatch(text) is None:
        raise ParseError(f"{name} must be decimal digits, got {_shown(text)}", data=_shown(value))
    return text


def parse_iccid(value: str) -> str:
    """A card serial: 19 or 20 digits, ``8981`` first, Luhn check digit last."""
    iccid = _digits(value, "ICCID")
    if len(iccid) not in ICCID_LENGTHS:
        raise ParseError(f"ICCID must have 19 or 20 digits, got {len(iccid)}", data=value)
    if not iccid.startswith(ICCID_PREFIX):
        raise ParseError(
            f"ICCID must start with {ICCID_PREFIX} (telecom, Japan), got {iccid[:4]}", data=value
        )
    expected = luhn_check_digit(iccid[:-1])
    if int(iccid[-1]) != expected:
        raise ParseError(f"ICCID Luhn check digit is {iccid[-1]}, expected {expected}", data=value)
    return iccid


def parse_imsi(value: str) -> str:
    """A subscriber identity: 15 digits with a Japanese MCC (440 or 441)."""
    imsi = _digits(value, "IMSI")
    if len(imsi) != IMSI_LENGTH:
        raise ParseError(f"IMSI must have 15 digits, got {len(imsi)}", data=value)
    if imsi[:3] not in JAPAN_MCCS:
        raise ParseError(f"IMSI MCC must be 440 or 441 (Japan), got {imsi[:3]}", data=value)
    return imsi


def parse_imei(value: str) -> str:
    """A device serial: 15 digits, Luhn check digit last."""
    imei = _digits(value, "IMEI")
    if len(imei) != IMEI_LENGTH:
        raise ParseError(f"IMEI must have 15 digits, got {len(imei)}", data=value)
    expected = luhn_check_digit(imei[:-1])
    if int(imei[-1]) != expected:
        raise ParseError(f"IMEI Luhn check digit is {imei[-1]}, expected {expected}", data=value)
    return imei


def parse_msisdn(value: str) -> str:
    """A phone number, written with or without hyphens; returned as 11 digits."""
    text = value.strip().replace("-", "").replace(" ", "")
    if _MSISDN.fullmatch(text) is None:
        raise ParseError(
            f"phone number must be 020/070/080/090 and 8 more digits, got {_shown(value.strip())}",
            data=value,
        )
    return text


def format_msisdn(msisdn: str) -> str:
    """The usual written form ``070-1234-5678`` of an 11-digit number."""
    return f"{msisdn[:3]}-{msisdn[3:7]}-{msisdn[7:]}"


def parse_service_code(value: str) -> str:
    """The operator's id of one line: ``hdd`` then digits."""
    text = value.strip()
    if _SERVICE_CODE.fullmatch(text) is None:
        raise ParseError(
            f"service code must be 'hdd' and 1-{SERVICE_CODE_MAX - 3} digits, got {_shown(text)}",
            data=_shown(value),
        )
    return text


def parse_customer_id(value: str) -> str:
    """A customer account (mioID): ``MA`` then digits."""
    text = value.strip()
    if _CUSTOMER_ID.fullmatch(text) is None:
        raise ParseError(
            f"customer id (mioID) must be 'MA' and 1-{CUSTOMER_ID_MAX - 2} digits, "
            f"got {_shown(text)}",
            data=_shown(value),
        )
    return text


#: The longest free text a record keeps (maker, model, batch name...): its columns are 100.
LABEL_MAX = 100


def parse_label(value: str, what: str, limit: int = LABEL_MAX) -> str:
    """A free-text label (a device's maker or model, a batch name): 1 to ``limit``
    printable characters, trimmed."""
    text = value.strip()
    if not text:
        raise ParseError(f"{what} is empty", data=value)
    if len(text) > limit:
        raise ParseError(
            f"{what} is {len(text)} characters; at most {limit}, got {_shown(text)}",
            data=_shown(text),
        )
    if not text.isprintable():
        raise ParseError(f"{what} has control characters: {_shown(text)}", data=_shown(text))
    return text


def _shown(text: str, limit: int = 40) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters (input may be huge)."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"
