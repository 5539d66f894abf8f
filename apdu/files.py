"""Contents of the elementary files a station reads and writes, both directions.

Codecs for the EFs of ETSI TS 102 221 (MF level), 3GPP TS 31.102 (ADF.USIM)
and 3GPP TS 51.011 (classic SIM), plus the file identifiers and short file
identifiers those specifications assign. Every ``decode_*`` takes the raw file
or record bytes and returns a value or raises :class:`ParseError`; every
``encode_*`` is its inverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from apdu.errors import ParseError
from apdu.tlv import encode_ber_tlv, find_tlv, parse_ber_tlv

# --- File identifiers -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file's name in the specifications, its file id and its SFI (None: no SFI)."""

    name: str
    fid: int
    sfi: int | None = None


# TS 102 221 §13: files under the MF.
MF = FileRef("MF", 0x3F00)
EF_DIR = FileRef("EF.DIR", 0x2F00, 0x1E)
EF_ICCID = FileRef("EF.ICCID", 0x2FE2, 0x02)
EF_PL = FileRef("EF.PL", 0x2F05, 0x05)
EF_ARR_MF = FileRef("EF.ARR", 0x2F06, 0x06)
DF_TELECOM = FileRef("DF.TELECOM", 0x7F10)
DF_GSM = FileRef("DF.GSM", 0x7F20)
# The current application's ADF (TS 102 221 §8.3): a reserved id, not a real file id.
CURRENT_ADF = 0x7FFF

# TS 31.102 §4.2: EFs under ADF.USIM (the SFIs are the ones §4.2 assigns).
EF_LI = FileRef("EF.LI", 0x6F05, 0x02)
EF_IMSI = FileRef("EF.IMSI", 0x6F07, 0x07)
EF_KEYS = FileRef("EF.Keys", 0x6F08, 0x08)
EF_KEYSPS = FileRef("EF.KeysPS", 0x6F09, 0x09)
EF_PLMNWACT = FileRef("EF.PLMNwAcT", 0x6F60, 0x0A)
EF_HPPLMN = FileRef("EF.HPPLMN", 0x6F31, 0x12)
EF_UST = FileRef("EF.UST", 0x6F38, 0x04)
EF_SPN = FileRef("EF.SPN", 0x6F46)
EF_MSISDN = FileRef("EF.MSISDN", 0x6F40)
EF_EST = FileRef("EF.EST", 0x6F56, 0x05)
EF_START_HFN = FileRef("EF.START-HFN", 0x6F5B, 0x0F)
EF_THRESHOLD = FileRef("EF.THRESHOLD", 0x6F5C, 0x10)
EF_OPLMNWACT = FileRef("EF.OPLMNwAcT", 0x6F61, 0x11)
EF_HPLMNWACT = FileRef("EF.HPLMNwAcT", 0x6F62, 0x13)
EF_ARR_USIM = FileRef("EF.ARR", 0x6F06, 0x17)
EF_PSLOCI = FileRef("EF.PSLOCI", 0x6F73, 0x0C)
EF_ACC = FileRef("EF.ACC", 0x6F78, 0x06)
EF_FPLMN = FileRef("EF.FPLMN", 0x6F7B, 0x0D)
EF_LOCI = FileRef("EF.LOCI", 0x6F7E, 0x0B)
EF_AD = FileRef("EF.AD", 0x6FAD, 0x03)
EF_ECC = FileRef("EF.ECC", 0x6FB7, 0x01)
EF_NETPAR = FileRef("EF.NETPAR", 0x6FC4)
EF_EPSLOCI = FileRef("EF.EPSLOCI", 0x6FE3, 0x1E)
EF_EPSNSC = FileRef("EF.EPSNSC", 0x6FE4, 0x18)

# TS 51.011 §10: EFs of the classic SIM (DF.GSM and DF.TELECOM); no SFIs there.
EF_GSM_LP = FileRef("EF.LP", 0x6F05)
EF_GSM_KC = FileRef("EF.Kc", 0x6F20)
EF_GSM_PLMNSEL = FileRef("EF.PLMNsel", 0x6F30)
EF_GSM_HPLMN = FileRef("EF.HPLMN", 0x6F31)
EF_GSM_SST = FileRef("EF.SST", 0x6F38)
EF_ADN = FileRef("EF.ADN", 0x6F3A)
EF_FDN = FileRef("EF.FDN", 0x6F3B)
EF_SMS = FileRef("EF.SMS", 0x6F3C)
EF_SMSP = FileRef("EF.SMSP", 0x6F42)
EF_SMSS = FileRef("EF.SMSS", 0x6F43)
EF_EXT1 = FileRef("EF.EXT1", 0x6F4A)

# TS 101 220 Annex E: RID and application codes of the 3GPP and 3GPP2 apps.
USIM_AID_PREFIX = bytes.fromhex("A0000000871002")
ISIM_AID_PREFIX = bytes.fromhex("A0000000871004")
CSIM_AID_PREFIX = bytes.fromhex("A0000003431002")

TON_NPI_UNKNOWN = 0x81
TON_NPI_INTERNATIONAL = 0x91

# --- Luhn (ISO/IEC 7812-1 Annex B) -----------------------------------------


def _require_digits(digits: str, what: str) -> None:
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ParseError(f"{what} must be a non-empty string of digits", data=digits)


# Each digit replaced by its Luhn double (2 -> 4, 7 -> 14 -> 5): the sums below
# then run in C (translate, bytes sum) rather than a Python loop per digit,
# which the read of every card pays.
_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")


def _digit_sum(digits: str) -> int:
    """The sum of ASCII decimal digits."""
    raw = digits.encode("ascii")
    return sum(raw) - 0x30 * len(raw)


def luhn_check_digit(digits: str) -> str:
    """The Luhn check digit that completes ``digits`` (ICCID, IMEI)."""
    _require_digits(digits, "Luhn payload")
    # The digit right of the payload is the check digit, so doubling starts at
    # the payload's last digit.
    total = _digit_sum(digits[-1::-2].translate(_LUHN_DOUBLED)) + _digit_sum(digits[-2::-2])
    return str((10 - total % 10) % 10)


def luhn_valid(digits: str) -> bool:
    """True when the last digit of ``digits`` is the Luhn check digit of the rest."""
    if len(digits) < 2 or not digits.isascii() or not digits.isdigit():
        return False
    total = _digit_sum(digits[-2::-2].translate(_LUHN_DOUBLED)) + _digit_sum(digits[-1::-2])
    return total % 10 == 0


# --- BCD helpers ---------------------------------------------------------

# Extended BCD of TS 24.008 Table 10.5.118 for dialling numbers.
_DIAL_NIBBLES = "0123456789*#pw"
_DIAL_FROM_CHAR = {char: value for value, char in enumerate(_DIAL_NIBBLES)}


def _swapped_nibbles(raw: bytes) -> list[int]:
    """Nibbles in digit order: low nibble of each byte first."""
    out: list[int] = []
    for byte in raw:
        out += (byte & 0x0F, byte >> 4)
    return out


def _pack_swapped(nibbles: list[int], size: int) -> bytes:
    """Pack nibbles low-first into ``size`` bytes, padding with F."""
    padded = nibbles + [0x0F] * (size * 2 - len(nibbles))
    return bytes(padded[i] | (padded[i + 1] << 4) for i in range(0, size * 2, 2))


# Each byte with its nibbles swapped: swapped-BCD contents become hex text in
# digit order with one translate and one hex() in C (F padding shows as "f"),
# instead of a Python loop over nibbles. The loops below stay as the
# reference that names the offending offset when the fast path finds a fault.
_NIBBLE_SWAP = bytes(((b & 0x0F) << 4) | (b >> 4) for b in range(256))


def _bcd_text(raw: bytes) -> str:
    """Swapped-BCD bytes as hex text in digit order (low nibble first)."""
    return raw.translate(_NIBBLE_SWAP).hex()


def _padded_prefix(text: str) -> str | None:
    """``text`` up to its first ``f``, or None when anything but ``f`` follows it."""
    end = text.find("f")
    if end < 0:
        return text
    if text.count("f", end) != len(text) - end:
        return None
    return text[:end]


def _decimal_prefix(text: str) -> str | None:
    """The decimal digits before the F padding; None for a malformed text."""
    digits = _padded_prefix(text)
    if digits is None or (digits and not digits.isdigit()):
        return None
    return digits


def _digits_until_padding(nibbles: list[int], what: str, raw: bytes) -> str:
    """Decimal digits up to the first F; anything but F after it is an error."""
    digits: list[str] = []
    for index, nibble in enumerate(nibbles):
        if nibble == 0x0F:
            if any(n != 0x0F for n in nibbles[index:]):
                raise ParseError(f"{what}: digit after F padding", data=raw, offset=index // 2)
            break
        if nibble > 9:
            raise ParseError(
                f"{what}: nibble {nibble:X} is not a decimal digit", data=raw, offset=index // 2
            )
        digits.append(str(nibble))
    return "".join(digits)


# --- EF.ICCID (TS 102 221 §13.2) ---------------------------------------------

ICCID_FILE_SIZE = 10


def decode_iccid(raw: bytes) -> str:
    """The ICCID digits of EF.ICCID (swapped BCD, F padding after 19 digits)."""
    raw = bytes(raw)
    if len(raw) != ICCID_FILE_SIZE:
        raise ParseError(f"EF.ICCID is {ICCID_FILE_SIZE} bytes, got {len(raw)}", data=raw)
    digits = _decimal_prefix(_bcd_text(raw))
    if digits is None:
        digits = _digits_until_padding(_swapped_nibbles(raw), "EF.ICCID", raw)
    if len(digits) < 18:
        raise ParseError(f"EF.ICCID holds only {len(digits)} digits", data=raw)
    return digits


def encode_iccid(iccid: str) -> bytes:
    """EF.ICCID contents for a 19- or 20-digit ICCID (18 accepted for old cards)."""
    _require_digits(iccid, "ICCID")
    if not 18 <= len(iccid) <= 20:
        raise ParseError(f"ICCID has {len(iccid)} digits, expected 18 to 20", data=iccid)
    return _pack_swapped([int(c) for c in iccid], ICCID_FILE_SIZE)


# --- EF.IMSI (TS 31.102 §4.2.2, TS 24.008 §10.5.1.4) --------------------------

IMSI_FILE_SIZE = 9
_IMSI_TYPE = 0x01  # type of identity: IMSI
_IMSI_ODD = 0x08


def decode_imsi(raw: bytes) -> str:
    """The IMSI digits of EF.IMSI: length byte, parity nibble, then swapped BCD."""
    raw = bytes(raw)
    if not raw:
        raise ParseError("EF.IMSI is empty", data=raw)
    length = raw[0]
    if length in (0x00, 0xFF):
        raise ParseError("EF.IMSI is not set (length byte FF/00)", data=raw, offset=0)
    if length > 8 or length > len(raw) - 1:
        raise ParseError(f"EF.IMSI length byte {length} is out of range", data=raw, offset=0)
    text = _bcd_text(raw[1 : 1 + length])
    parity = int(text[0], 16)
    if parity & 0x07 != _IMSI_TYPE:
        raise ParseError(
            f"EF.IMSI identity type {parity & 0x07} is not IMSI (1)", data=raw, offset=1
        )
    digits = _decimal_prefix(text[1:])
    if digits is None:
        nibbles = _swapped_nibbles(raw[1 : 1 + length])
        digits = _digits_until_padding(nibbles[1:], "EF.IMSI", raw)
    odd = bool(parity & _IMSI_ODD)
    expected = 2 * length - 1 if odd else 2 * length - 2
    if len(digits) != expected:
        raise ParseError(
            f"EF.IMSI parity says {expected} digits, found {len(digits)}", data=raw, offset=1
        )
    if not 6 <= len(digits) <= 15:
        raise ParseError(f"IMSI of {len(digits)} digits", data=raw)
    return digits


def encode_imsi(imsi: str) -> bytes:
    """EF.IMSI contents (9 bytes, FF padded) for an IMSI of 6 to 15 digits."""
    _require_digits(imsi, "IMSI")
    if not 6 <= len(imsi) <= 15:
        raise ParseError(f"IMSI has {len(imsi)} digits, expected 6 to 15", data=imsi)
    odd = len(imsi) % 2 == 1
    nibbles = [_IMSI_TYPE | (_IMSI_ODD if odd else 0)] + [int(c) for c in imsi]
    length = (len(nibbles) + 1) // 2
    body = _pack_swapped(nibbles, length)
    return bytes((length,)) + body + b"\xff" * (IMSI_FILE_SIZE - 1 - length)


# --- Alpha identifiers (TS 102 221 Annex A, TS 23.038 §6.2.1) ------------------

_GSM_DEFAULT = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_ESCAPE = 0x1B
_GSM_EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
_GSM_FROM_CHAR = {char: code for code, char in enumerate(_GSM_DEFAULT) if code != _GSM_ESCAPE}
_GSM_EXTENSION_FROM_CHAR = {char: code for code, char in _GSM_EXTENSION.items()}
_UCS2 = 0x80
_UCS2_BASE_8 = 0x81
_UCS2_BASE_16 = 0x82


def _decode_gsm_unpacked(raw: bytes) -> str:
    if raw and max(raw) < 0x80 and _GSM_ESCAPE not in raw:
        # No escapes and no b8: one C-level translate (the usual name or label).
        return raw.decode("ascii").translate(_GSM_DEFAULT)
    out: list[str] = []
    escaped = False
    for offset, byte in enumerate(raw):
        if byte & 0x80:
            raise ParseError(
                f"GSM default alphabet byte {byte:02X} has b8 set", data=raw, offset=offset
            )
        if escaped:
            # An unknown extension code shows as a space, as TS 23.038 asks receivers to.
            out.append(_GSM_EXTENSION.get(byte, " "))
            escaped = False
        elif byte == _GSM_ESCAPE:
            escaped = True
        else:
            out.append(_GSM_DEFAULT[byte])
    return "".join(out)


def _decode_ucs2_with_base(chars: bytes, base: int, count: int, raw: bytes) -> str:
    if len(chars) < count:
        raise ParseError(f"UCS2 alpha announces {count} characters, {len(chars)} present", data=raw)
    out: list[str] = []
    for byte in chars[:count]:
        out.append(
            chr(base + (byte & 0x7F)) if byte & 0x80 else _decode_gsm_unpacked(bytes((byte,)))
        )
    return "".join(out)


def decode_alpha(raw: bytes) -> str:
    """Decode an alpha identifier / name field: GSM default alphabet or UCS2 (80/81/82)."""
    raw = bytes(raw)
    if not raw:
        return ""
    if raw[0] == _UCS2:
        body = raw[1:]
        out: list[str] = []
        for i in range(0, len(body) - 1, 2):
            unit = int.from_bytes(body[i : i + 2], "big")
            if unit == 0xFFFF:
                break
            out.append(chr(unit))
        text = "".join(out)
        try:
            text.encode("utf-16-be")
        except UnicodeEncodeError:
            raise ParseError("UCS2 alpha holds an unpaired surrogate", data=raw) from None
        return text
    if raw[0] == _UCS2_BASE_8:
        if len(raw) < 3:
            raise ParseError("UCS2 (81) alpha shorter than its header", data=raw)
        return _decode_ucs2_with_base(raw[3:], raw[2] << 7, raw[1], raw)
    if raw[0] == _UCS2_BASE_16:
        if len(raw) < 4:
            raise ParseError("UCS2 (82) alpha shorter than its header", data=raw)
        return _decode_ucs2_with_base(raw[4:], int.from_bytes(raw[2:4], "big"), raw[1], raw)
    return _decode_gsm_unpacked(raw.rstrip(b"\xff"))


def encode_alpha(text: str, size: int) -> bytes:
    """Encode ``text`` into ``size`` bytes: GSM default alphabet if it can, else UCS2 (80)."""
    if size < 0:
        raise ParseError(f"alpha field size {size} is negative")
    gsm = bytearray()
    for char in text:
        if char in _GSM_FROM_CHAR:
            gsm.append(_GSM_FROM_CHAR[char])
        elif char in _GSM_EXTENSION_FROM_CHAR:
            gsm += bytes((_GSM_ESCAPE, _GSM_EXTENSION_FROM_CHAR[char]))
        else:
            break
    else:
        if len(gsm) > size:
            raise ParseError(
                f"text of {len(gsm)} GSM characters does not fit {size} bytes", data=text
            )
        return bytes(gsm) + b"\xff" * (size - len(gsm))
    try:
        units = text.encode("utf-16-be")
    except UnicodeEncodeError:
        raise ParseError("text holds an unpaired surrogate", data=text) from None
    if len(units) != 2 * len(text):
        raise ParseError("text has characters outside the UCS2 plane", data=text)
    if "\uffff" in text:
        # FFFF is the padding that ends a UCS2 field; it could not be read back.
        raise ParseError("text holds U+FFFF", data=text)
    ucs2 = bytes((_UCS2,)) + units
    if len(ucs2) > size:
        raise ParseError(f"UCS2 text of {len(ucs2)} bytes does not fit {size} bytes", data=text)
    return ucs2 + b"\xff" * (size - len(ucs2))


# --- EF.MSISDN (TS 31.102 §4.2.26, TS 51.011 §10.5.5) ---------------------------

MSISDN_FIXED_PART = 14
_MAX_DIAL_BYTES = 10


@dataclass(frozen=True, slots=True)
class Msisdn:
    """One EF.MSISDN record: the number ('+' first when international), alpha, TON/NPI."""

    number: str
    alpha: str
    ton_npi: int


# Hex text of the extended BCD nibbles A-D to the dialling characters they code.
_DIAL_FROM_HEX = str.maketrans("abcd", "*#pw")


def _decode_dialling(raw: bytes, record: bytes) -> str:
    text = _padded_prefix(_bcd_text(raw))
    if text is not None and "e" not in text:
        return text.translate(_DIAL_FROM_HEX)
    out: list[str] = []
    nibbles = _swapped_nibbles(raw)
    for index, nibble in enumerate(nibbles):
        if nibble == 0x0F:
            if any(n != 0x0F for n in nibbles[index:]):
                raise ParseError("dialling number: digit after F padding", data=record)
            break
        if nibble >= len(_DIAL_NIBBLES):
            raise ParseError(f"dialling number nibble {nibble:X} is reserved", data=record)
        out.append(_DIAL_NIBBLES[nibble])
    return "".join(out)


def decode_msisdn(record: bytes) -> Msisdn | None:
    """Decode one EF.MSISDN record; an empty (erased) record gives None."""
    record = bytes(record)
    if len(record) < MSISDN_FIXED_PART:
        raise ParseError(
            f"EF.MSISDN record of {len(record)} bytes is shorter than {MSISDN_FIXED_PART}",
            data=record,
        )
    alpha_length = len(record) - MSISDN_FIXED_PART
    alpha = decode_alpha(record[:alpha_length])
    fixed = record[alpha_length:]
    bcd_length = fixed[0]
    if bcd_length in (0x00, 0xFF):
        if not alpha:
            return None
        return Msisdn("", alpha, fixed[1])
    if bcd_length > _MAX_DIAL_BYTES + 1:
        raise ParseError(
            f"EF.MSISDN number length {bcd_length} exceeds 11", data=record, offset=alpha_length
        )
    ton_npi = fixed[1]
    number = _decode_dialling(fixed[2 : 1 + bcd_length], record)
    if ton_npi & 0x70 == 0x10:
        number = "+" + number
    return Msisdn(number, alpha, ton_npi)


def encode_msisdn(number: str, alpha: str = "", record_length: int = 28) -> bytes:
    """One EF.MSISDN record; a number starting with '+' is coded international (91)."""
    if record_length < MSISDN_FIXED_PART or record_length > 255:
        raise ParseError(f"EF.MSISDN record length {record_length} is out of range")
    international = number.startswith("+")
    digits = number[1:] if international else number
    if not digits:
        raise ParseError("MSISDN has no digits", data=number)
    try:
        nibbles = [_DIAL_FROM_CHAR[c] for c in digits]
    except KeyError as exc:
        raise ParseError(
            f"MSISDN character {exc.args[0]!r} is not a dialling digit", data=number
        ) from None
    if len(nibbles) > 2 * _MAX_DIAL_BYTES:
        raise ParseError(f"MSISDN of {len(nibbles)} digits needs an extension record", data=number)
    bcd = _pack_swapped(nibbles, (len(nibbles) + 1) // 2)
    ton_npi = TON_NPI_INTERNATIONAL if international else TON_NPI_UNKNOWN
    fixed = (
        bytes((len(bcd) + 1, ton_npi)) + bcd + b"\xff" * (_MAX_DIAL_BYTES - len(bcd)) + b"\xff\xff"
    )
    return encode_alpha(alpha, record_length - MSISDN_FIXED_PART) + fixed


# --- EF.SPN (TS 31.102 §4.2.12) ------------------------------------------------

SPN_FILE_SIZE = 17


@dataclass(frozen=True, slots=True)
class Spn:
    """Service provider name and its display condition byte."""

    name: str
    display_condition: int


def decode_spn(raw: bytes) -> Spn:
    """Decode EF.SPN: display condition byte, then the name (GSM alphabet or UCS2)."""
    raw = bytes(raw)
    if not raw:
        raise ParseError("EF.SPN is empty", data=raw)
    return Spn(decode_alpha(raw[1:]), raw[0])


def encode_spn(name: str, display_condition: int = 0x00, size: int = SPN_FILE_SIZE) -> bytes:
    """EF.SPN contents of ``size`` bytes."""
    if not 0 <= display_condition <= 0xFF:
        raise ParseError(f"SPN display condition {display_condition} is not a byte")
    if size < 1:
        raise ParseError(f"EF.SPN size {size} is too small")
    return bytes((display_condition,)) + encode_alpha(name, size - 1)


# --- EF.AD (TS 31.102 §4.2.18) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdministrativeData:
    """EF.AD: UE operation mode (00 normal) and the MNC length in the IMSI (2, 3 or None)."""

    ue_operation_mode: int
    mnc_length: int | None


def decode_ad(raw: bytes) -> AdministrativeData:
    """Decode EF.AD; an MNC length other than 2 or 3 (absent, RFU) reads as None."""
    raw = bytes(raw)
    if len(raw) < 3:
        raise ParseError(f"EF.AD of {len(raw)} bytes is shorter than 3", data=raw)
    mnc: int | None = None
    if len(raw) >= 4 and raw[3] & 0x0F in (2, 3):
        mnc = raw[3] & 0x0F
    return AdministrativeData(raw[0], mnc)


def encode_ad(ue_operation_mode: int = 0x00, mnc_length: int | None = 2) -> bytes:
    """EF.AD contents: 4 bytes, or 3 when ``mnc_length`` is None."""
    if not 0 <= ue_operation_mode <= 0xFF:
        raise ParseError(f"UE operation mode {ue_operation_mode} is not a byte")
    base = bytes((ue_operation_mode, 0x00, 0x00))
    if mnc_length is None:
        return base
    if mnc_length not in (2, 3):
        raise ParseError(f"MNC length {mnc_length} is not 2 or 3")
    return base + bytes((mnc_length,))


# --- EF.DIR (TS 102 221 §13.1) ---------------------------------------------------

_TAG_APPLICATION_TEMPLATE = 0x61
_TAG_AID = 0x4F
_TAG_LABEL = 0x50

ApplicationKind = Literal["usim", "isim", "csim", "unknown"]


@dataclass(frozen=True, slots=True)
class Application:
    """One application template of EF.DIR: its AID and optional label."""

    aid: bytes
    label: str | None = None

    @property
    def kind(self) -> ApplicationKind:
        """Which 3GPP/3GPP2 application the AID names (TS 101 220 Annex E)."""
        if self.aid.startswith(USIM_AID_PREFIX):
            return "usim"
        if self.aid.startswith(ISIM_AID_PREFIX):
            return "isim"
        if self.aid.startswith(CSIM_AID_PREFIX):
            return "csim"
        return "unknown"


def decode_dir_record(record: bytes) -> Application | None:
    """Decode one EF.DIR record; an erased record (all FF) gives None."""
    record = bytes(record)
    objects = parse_ber_tlv(record)
    if not objects:
        return None
    template = objects[0]
    if template.tag != _TAG_APPLICATION_TEMPLATE:
        raise ParseError(f"EF.DIR record starts with tag {template.tag:02X}, not 61", data=record)
    inner = template.children()
    aid = find_tlv(inner, _TAG_AID)
    if aid is None or not 5 <= len(aid.value) <= 16:
        raise ParseError("EF.DIR application template lacks a 5-16 byte AID (4F)", data=record)
    label = find_tlv(inner, _TAG_LABEL)
    text: str | None = None
    if label is not None:
        try:
            text = label.value.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("EF.DIR application label is not UTF-8", data=record) from None
    return Application(aid.value, text)


def encode_dir_record(
    aid: bytes, label: str | None = None, record_length: int | None = None
) -> bytes:
    """One EF.DIR record, FF padded to ``record_length`` when given."""
    if not 5 <= len(aid) <= 16:
        raise ParseError(f"AID of {len(aid)} bytes; an AID has 5 to 16 bytes", data=bytes(aid))
    inner = encode_ber_tlv(_TAG_AID, bytes(aid))
    if label is not None:
        inner += encode_ber_tlv(_TAG_LABEL, label.encode("utf-8"))
    record = encode_ber_tlv(_TAG_APPLICATION_TEMPLATE, inner)
    if record_length is None:
        return record
    if len(record) > record_length:
        raise ParseError(f"EF.DIR record of {len(record)} bytes exceeds {record_length}")
    return record + b"\xff" * (record_length - len(record))


# --- EF.PL / EF.LI (TS 102 221 §13.4, TS 31.102 §4.2.1) ------------------------------


def decode_languages(raw: bytes) -> list[str]:
    """Two-letter ISO 639 codes of EF.PL or EF.LI, skipping unused (FFFF) entries."""
    raw = bytes(raw)
    if len(raw) % 2:
        raise ParseError(f"language file of odd length {len(raw)}", data=raw)
    out: list[str] = []
    for offset in range(0, len(raw), 2):
        pair = raw[offset : offset + 2]
        if pair == b"\xff\xff":
            continue
        if not all(0x61 <= b <= 0x7A for b in pair):
            raise ParseError(
                f"language code {pair.hex()} is not two lowercase letters", data=raw, offset=offset
            )
        out.append(pair.decode("ascii"))
    return out


def encode_languages(codes: list[str], size: int | None = None) -> bytes:
    """EF.PL/EF.LI contents for ``codes``, FF padded to ``size`` bytes when given."""
    out = bytearray()
    for code in codes:
        if len(code) != 2 or not all("a" <= c <= "z" for c in code):
            raise ParseError(f"language code {code!r} is not two lowercase letters", data=code)
        out += code.encode("ascii")
    if size is None:
        return bytes(out)
    if len(out) > size:
        raise ParseError(f"{len(codes)} language codes do not fit {size} bytes")
    return bytes(out) + b"\xff" * (size - len(out))


# --- EF.UST / EF.EST service tables (TS 31.102 §4.2.8) -----------------------------


def decode_service_table(raw: bytes) -> set[int]:
    """Numbers of the services marked available: byte n bit b(k) is service 8n+k."""
    return {
        8 * index + bit + 1
        for index, byte in enumerate(bytes(raw))
        for bit in range(8)
        if byte >> bit & 1
    }


def encode_service_table(services: set[int], size: int | None = None) -> bytes:
    """A service table with ``services`` available, ``size`` bytes (default: just enough)."""
    if any(n < 1 for n in services):
        raise ParseError("service numbers start at 1")
    needed = (max(services) + 7) // 8 if services else 0
    length = needed if size is None else size
    if needed > length:
        raise ParseError(f"service {max(services)} does not fit a {length}-byte table")
    table = bytearray(length)
    for number in services:
        table[(number - 1) // 8] |= 1 << ((number - 1) % 8)
    return bytes(table)
