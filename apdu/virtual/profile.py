"""What a virtual card is: identity, secrets and initial PIN state, as data.

A :class:`CardProfile` is the personalisation a card vendor would burn into a
chip. Named profiles live as JSON files next to this module
(``profiles/<name>.json``); :func:`lab_profile` derives a fresh, deterministic
profile for each slot of the virtual lab, the way new vendor stock looks.
Secrets (PINs, PUKs, ADM1, Ki, OPc) never appear in ``repr()``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from apdu.errors import ParseError, UsageError
from apdu.files import encode_iccid, encode_imsi, encode_msisdn, encode_spn, luhn_check_digit

FormFactor = Literal["standard", "micro", "nano", "multi"]
NetworkType = Literal["D", "K", "I"]

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
PROFILE_NAMES = (
    "default",
    "classic-sim",
    "pin-protected-imsi",
    "iccid-20-digits",
    "blocked-pin",
    # Lab fault profiles: cards as technicians see them come back.
    "puk-blocked",
    "mute",
    "auth-fault",
    "fs-corrupt",
)

# T=0 and T=15 offered; the structure of common USIM ATRs: TA1=95 (Fi 512, Di 16),
# TD1=80 (T=0), TD2=1F (T=15), TA3=C7 (clock stop, classes A, B and C), then 15
# compact-TLV historical bytes whose issuer data say "SIMTOOL", so that no real
# product is claimed. TCK is computed, not typed.
_ATR_BODY = bytes.fromhex("9F 95 80 1F C7 80 31 E0 73 FE 21 13 57" + "53494D544F4F4C")


def _with_tck(ts: int, body: bytes) -> bytes:
    tck = 0
    for byte in body:
        tck ^= byte
    return bytes((ts,)) + body + bytes((tck,))


DEFAULT_ATR = _with_tck(0x3B, _ATR_BODY)
# A classic SIM offers T=0 only (no TD bytes), so it carries no TCK.
CLASSIC_ATR = bytes.fromhex("3B 17 94 80 55 53 49 4D 30 31")

_FORM_FACTORS: tuple[FormFactor, ...] = get_args(FormFactor)
_NETWORK_TYPES: tuple[str, ...] = get_args(NetworkType)
_SECRET_FIELDS = ("pin1", "pin2", "puk1", "puk2", "adm1")
_KEY_FIELDS = ("ki", "opc")
_BYTES_FIELDS = ("atr", "ki", "opc")


def _check_code(name: str, value: str) -> None:
    # The value itself stays out of the message: it is a secret.
    if not value.isascii() or not value.isdigit() or not 4 <= len(value) <= 8:
        raise ParseError(f"profile {name} must be 4 to 8 digits")


@dataclass
class CardProfile:
    """The personalisation of one virtual card.

    ``pin1_retries``/``puk1_retries`` (and the PIN2 pair) are the counters the
    card starts with: 3/10 for new stock, 0 for a card that arrives blocked.
    ``imsi_protected`` puts EF.IMSI behind PIN1, ``msisdn_protected`` does the
    same for EF.MSISDN (TS 31.102's default; operators often open it so that
    stock checks can read the number); ``classic_only`` makes a
    GSM 11.11 SIM that answers 6E00 to CLA 00; ``classic_view`` lets a UICC
    also answer CLA A0 (most real UICCs do).

    Lab faults (cards as they come back to a technician): ``mute`` gives its
    ATR and then never answers a command over vpcd; ``auth_fault`` computes
    Milenage with a damaged Ki while the profile (and so the stock file)
    keeps the true one; ``fs_corrupt`` holds a garbled EF.IMSI.

    ``file_sw`` makes files answer a fixed status word, as real cards with an
    odd file system do: comma-separated ``NAME=SW`` pairs, NAME an EF (its
    READ/UPDATE answer SW), a DF or ADF (its SELECT answers SW), either bare
    (``EF.DIR``) or with its directory (``ADF.USIM/EF.IMSI``), or ``SFI`` for
    every access by short file id; e.g. ``"EF.DIR=6981,SFI=6D00"``.
    """

    name: str
    iccid: str
    imsi: str
    msisdn: str
    spn: str
    form_factor: FormFactor
    network_type: NetworkType
    pin1: str = field(repr=False)
    pin2: str = field(repr=False)
    puk1: str = field(repr=False)
    puk2: str = field(repr=False)
    adm1: str = field(repr=False)
    ki: bytes = field(repr=False)
    opc: bytes = field(repr=False)
    atr: bytes = DEFAULT_ATR
    pin1_enabled: bool = True
    pin1_retries: int = 3
    puk1_retries: int = 10
    pin2_retries: int = 3
    puk2_retries: int = 10
    imsi_protected: bool = False
    msisdn_protected: bool = False
    classic_only: bool = False
    classic_view: bool = True
    mnc_length: int = 2
    mute: bool = False
    auth_fault: bool = False
    fs_corrupt: bool = False
    file_sw: str = ""

    def __post_init__(self) -> None:
        encode_iccid(self.iccid)
        encode_imsi(self.imsi)
        if self.msisdn:
            encode_msisdn(self.msisdn)
        encode_spn(self.spn)
        if self.form_factor not in _FORM_FACTORS:
            raise ParseError(
                f"form factor {self.form_factor!r} is not one of {_FORM_FACTORS}",
                data=self.form_factor,
            )
        if self.network_type not in _NETWORK_TYPES:
            raise ParseError(
                f"network type {self.network_type!r} is not D, K or I", data=self.network_type
            )
        for name in _SECRET_FIELDS:
            _check_code(name, getattr(self, name))
        for name in _KEY_FIELDS:
            if len(getattr(self, name)) != 16:
                raise ParseError(f"profile {name} must be 16 bytes")
        if not 2 <= len(self.atr) <= 33 or self.atr[0] not in (0x3B, 0x3F):
            raise ParseError(
                "profile ATR must start with 3B or 3F and be 2-33 bytes", data=self.atr
            )
        for name, top in (
            ("pin1_retries", 3),
            ("pin2_retries", 3),
            ("puk1_retries", 10),
            ("puk2_retries", 10),
        ):
            if not 0 <= getattr(self, name) <= top:
                raise ParseError(f"profile {name} must be 0..{top}")
        if self.mnc_length not in (2, 3):
            raise ParseError(f"profile mnc_length {self.mnc_length} is not 2 or 3")
        self.file_faults()

    def file_faults(self) -> dict[str, int]:
        """``file_sw`` as {file name: status word}; ParseError when malformed."""
        out: dict[str, int] = {}
        for item in filter(None, (part.strip() for part in self.file_sw.split(","))):
            name, _, sw = item.partition("=")
            try:
                value = int(sw, 16) if len(sw.strip()) == 4 else -1
            except ValueError:
                value = -1
            if not name.strip() or not 0 <= value <= 0xFFFF:
                raise ParseError(
                    f"profile file_sw item {item!r} is not NAME=SW (SW: 4 hex digits)", data=item
                )
            out[name.strip()] = value
        return out

    def to_json_dict(self) -> dict[str, Any]:
        """The profile as JSON-ready data (bytes as hex). Contains the secrets."""
        out = asdict(self)
        for name in _BYTES_FIELDS:
            out[name] = out[name].hex().upper()
        return out

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> CardProfile:
        """Build a profile from :meth:`to_json_dict` data; ParseError if malformed.

        The error lists every missing, unknown and mistyped field at once, in
        plain words; it never shows the value of a secret field.
        """
        if not isinstance(data, dict):
            raise ParseError(f"a profile must be a JSON object, not {_json_kind(data)}")
        problems: list[str] = []
        missing = [f.name for f in fields(cls) if f.name in _REQUIRED_FIELDS and f.name not in data]
        if missing:
            problems.append(f"missing {_plural(missing, 'field')} {', '.join(missing)}")
        unknown = sorted(str(key) for key in data if key not in _JSON_TYPES)
        if unknown:
            problems.append(f"unknown {_plural(unknown, 'field')} {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name not in _JSON_TYPES:
                continue
            wrong = _type_problem(name, value)
            if wrong is not None:
                problems.append(wrong)
            elif name in _BYTES_FIELDS:
                values[name] = bytes.fromhex(value)
            else:
                values[name] = value
        if problems:
            raise ParseError("; ".join(problems))
        try:
            return cls(**values)
        except (TypeError, AttributeError) as exc:
            raise ParseError(f"profile is not valid: {exc}") from None


def _plural(items: list[str], word: str) -> str:
    return word if len(items) == 1 else word + "s"


def _json_kind(value: object) -> str:
    """What a JSON value is, in plain words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return {dict: "an object", list: "a list", str: "text", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _type_problem(name: str, value: object) -> str | None:
    """Why ``value`` cannot be field ``name``, or None when its JSON type is right."""
    expected = _JSON_TYPES[name]
    if expected is bytes:
        if isinstance(value, str):
            try:
                bytes.fromhex(value)
            except ValueError:
                return f"{name} is not hex digits"
            return None
        ok, wanted = False, "hex digits in quotes"
    elif expected is int:
        # bool is an int subclass: a retry counter of `true` is still wrong.
        ok = isinstance(value, int) and not isinstance(value, bool)
        wanted = "a whole number"
    elif expected is bool:
        ok = isinstance(value, bool)
        wanted = "true or false"
    else:
        ok = isinstance(value, str)
        wanted = "text in quotes"
    if ok:
        return None
    # Only the kind of value is named: the value itself may be a secret.
    return f"{name} must be {wanted}, not {_json_kind(value)}"


_JSON_TYPES: dict[str, type] = {
    f.name: {"bytes": bytes, "bool": bool, "int": int}.get(str(f.type), str)
    for f in fields(CardProfile)
}
_REQUIRED_FIELDS = frozenset(
    f.name for f in fields(CardProfile) if f.default is MISSING and f.default_factory is MISSING
)


def load_profile(path_or_name: str | Path) -> CardProfile:
    """A profile by name (``profiles/<name>.json``) or from a JSON file path.

    A file that is not a valid profile gives a ParseError naming the file and
    what is wrong with it (malformed JSON, missing, unknown or invalid fields).
    """
    text = str(path_or_name)
    if isinstance(path_or_name, Path) or text.endswith(".json") or os.sep in text:
        path = Path(path_or_name)
    else:
        path = PROFILES_DIR / f"{text}.json"
        if not path.is_file():
            raise UsageError(
                f"no card profile named {text!r}; known: "
                f"{', '.join(sorted(p.stem for p in PROFILES_DIR.glob('*.json')))}"
            )
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read card profile {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"card profile {path} is not UTF-8 text (byte {exc.start + 1})", offset=exc.start
        ) from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"card profile {path} is not valid JSON: {exc.msg} at line "
            f"{exc.lineno}, column {exc.colno}",
            offset=exc.pos,
        ) from None
    try:
        return CardProfile.from_json_dict(data)
    except ParseError as exc:
        raise ParseError(
            f"card profile {path} is not valid: {exc}", data=exc.data, offset=exc.offset
        ) from None


def save_profile(profile: CardProfile, path: str | Path) -> None:
    """Write ``profile`` as JSON, atomically and readable by the owner only (mode 0600)."""
    path = Path(path)
    text = json.dumps(profile.to_json_dict(), indent=2, ensure_ascii=False) + "\n"
    write_private_file(path, text.encode("utf-8"))


def write_private_file(path: Path, content: bytes) -> None:
    """Replace ``path`` atomically with ``content``; the file is created with mode 0600."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# --- the lab's stock -------------------------------------------------------

_MSISDN_PREFIXES = ("070", "080", "090")


def _derive(seed: int, index: int, purpose: str, size: int) -> bytes:
    """Deterministic pseudo-random bytes for one field of one lab card."""
    return hashlib.sha256(f"simtool-lab/{seed}/{index}/{purpose}".encode()).digest()[:size]


def _digits(seed: int, index: int, purpose: str, count: int) -> str:
    number = int.from_bytes(_derive(seed, index, purpose, 16), "big")
    return f"{number % 10**count:0{count}d}"


def lab_profile(index: int, seed: int = 0) -> CardProfile:
    """A card as new vendor stock for lab slot ``index``: PIN1 0000 enabled, 3/10 retries.

    Identity is unique per (seed, index): a 19-digit Japanese ICCID 8981...
    with its Luhn digit, an IMSI 44010..., an MSISDN 070/080/090; secrets
    are derived from (seed, index) so tests and stock files can be rebuilt.
    """
    if not 0 <= index < 10**6:
        raise UsageError(f"lab slot index {index} is out of range 0..999999")
    if seed < 0:
        raise UsageError(f"lab seed {seed} is negative")
    batch = f"{seed % 1000:03d}"
    iccid_body = f"898109{batch}{index:09d}"
    return CardProfile(
        name=f"lab-{index}",
        iccid=iccid_body + luhn_check_digit(iccid_body),
        imsi=f"440103{batch}{index + 1:06d}",
        # 7919 is prime to 10**8, so the number part is unique per index.
        msisdn=_MSISDN_PREFIXES[index % 3]
        + f"{(index * 7919 + seed * 104729 + 31415926) % 10**8:08d}",
        spn="IIJmio",
        form_factor=_FORM_FACTORS[index % len(_FORM_FACTORS)],
        network_type="D",
        pin1="0000",
        pin2=_digits(seed, index, "pin2", 4),
        puk1=_digits(seed, index, "puk1", 8),
        puk2=_digits(seed, index, "puk2", 8),
        adm1=_digits(seed, index, "adm1", 8),
        ki=_derive(seed, index, "ki", 16),
        opc=_derive(seed, index, "opc", 16),
    )
