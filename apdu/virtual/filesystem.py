"""The file system of the virtual UICC: MF, DF.TELECOM, DF.GSM and ADF.USIM.

Layout and access conditions follow ETSI TS 102 221 §13, 3GPP TS 31.102 §4.2
and 3GPP TS 51.011 §10. Each EF carries one :class:`Access` (read and update
conditions); the same table produces the EF.ARR records its FCP points to, so
what the card announces and what it enforces cannot drift apart.

The classic SIM view (DF.GSM, DF.TELECOM/EF.MSISDN) shares its data with the
USIM files of the same meaning, as on real cards: one :class:`FileData`, two
directory entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from apdu import files as f
from apdu.errors import ParseError
from apdu.files import FileRef
from apdu.tlv import encode_ber_tlv
from apdu.virtual.profile import CardProfile

USIM_AID = bytes.fromhex("A0000000871002FF81FF0189000001FF")
USIM_LABEL = "USIM"


class Condition(Enum):
    """An access condition (TS 102 221 §9.2, GSM 11.11 §9.3)."""

    ALWAYS = "always"
    PIN1 = "pin1"
    PIN2 = "pin2"
    ADM1 = "adm1"
    NEVER = "never"

    @property
    def key_reference(self) -> int | None:
        """The key reference a user-authentication SC DO names, if any."""
        return {Condition.PIN1: 0x01, Condition.PIN2: 0x81, Condition.ADM1: 0x0A}.get(self)

    @property
    def gsm_nibble(self) -> int:
        """The GSM 11.11 access condition level (0 ALW, 1 CHV1, 2 CHV2, 4 ADM, F NEV)."""
        return {
            Condition.ALWAYS: 0x0,
            Condition.PIN1: 0x1,
            Condition.PIN2: 0x2,
            Condition.ADM1: 0x4,
            Condition.NEVER: 0xF,
        }[self]


@dataclass(frozen=True, slots=True)
class Access:
    """Who may read (READ/SEARCH) and update (UPDATE) an EF; all else needs ADM1."""

    read: Condition
    update: Condition


ALWAYS, PIN1, PIN2, ADM1, NEVER = (
    Condition.ALWAYS,
    Condition.PIN1,
    Condition.PIN2,
    Condition.ADM1,
    Condition.NEVER,
)

# EF.ARR records, in order (record n = index n-1). The last is for directories.
ARR_RULES: tuple[Access, ...] = (
    Access(ALWAYS, ADM1),
    Access(ALWAYS, NEVER),
    Access(PIN1, ADM1),
    Access(PIN1, PIN1),
    Access(ALWAYS, PIN1),
    Access(PIN1, PIN2),
    Access(ADM1, ADM1),
)
DF_ARR_RECORD = len(ARR_RULES) + 1
ARR_RECORD_LENGTH = 40

# Access mode bytes (ISO/IEC 7816-4 §5.4.3.2): EF READ b1, UPDATE b2, and the
# administrative rest (WRITE, (DE)ACTIVATE, TERMINATE, DELETE) b3-b7.
_AM_READ = 0x01
_AM_UPDATE = 0x02
_AM_EF_ADMIN = 0x7C
_AM_DF_ALL = 0x7F
_TAG_AM = 0x80
_TAG_ALWAYS = 0x90
_TAG_NEVER = 0x97
_TAG_USER_AUTH = 0xA4
_TAG_KEY_REF = 0x83
_TAG_USAGE = 0x95
_USAGE_USER_AUTH = 0x08


def _security_condition(condition: Condition) -> bytes:
    if condition is ALWAYS:
        return encode_ber_tlv(_TAG_ALWAYS, b"")
    if condition is NEVER:
        return encode_ber_tlv(_TAG_NEVER, b"")
    key = condition.key_reference
    assert key is not None
    return encode_ber_tlv(
        _TAG_USER_AUTH,
        encode_ber_tlv(_TAG_KEY_REF, bytes((key,)))
        + encode_ber_tlv(_TAG_USAGE, bytes((_USAGE_USER_AUTH,))),
    )


def _access_rule(modes: list[tuple[int, Condition]]) -> bytes:
    """An expanded-format access rule: AM DOs each followed by their SC DO."""
    merged: dict[Condition, int] = {}
    for bits, condition in modes:
        merged[condition] = merged.get(condition, 0) | bits
    return b"".join(
        encode_ber_tlv(_TAG_AM, bytes((bits,))) + _security_condition(cond)
        for cond, bits in merged.items()
    )


def arr_records() -> list[bytes]:
    """The records of EF.ARR (same in the MF and in ADF.USIM), FF padded."""
    rules = [
        _access_rule([(_AM_READ, a.read), (_AM_UPDATE, a.update), (_AM_EF_ADMIN, ADM1)])
        for a in ARR_RULES
    ]
    rules.append(_access_rule([(_AM_DF_ALL, ADM1)]))
    out = []
    for rule in rules:
        if len(rule) > ARR_RECORD_LENGTH:
            raise ParseError(f"access rule of {len(rule)} bytes exceeds the EF.ARR record")
        out.append(rule + b"\xff" * (ARR_RECORD_LENGTH - len(rule)))
    return out


def arr_record_of(access: Access) -> int:
    """The EF.ARR record number that describes ``access``."""
    return ARR_RULES.index(access) + 1


@dataclass(eq=False)
class FileData:
    """The bytes of one EF; ``key`` names it in the card's state file.

    Record files keep their records back to back in ``content``.
    """

    key: str
    content: bytearray
    record_length: int | None = None

    @property
    def structure(self) -> Literal["transparent", "linear_fixed"]:
        """Transparent, or linear fixed when the file has records."""
        return "transparent" if self.record_length is None else "linear_fixed"

    @property
    def size(self) -> int:
        """File size in bytes."""
        return len(self.content)

    @property
    def number_of_records(self) -> int:
        """Number of records (0 for a transparent file)."""
        return 0 if self.record_length is None else len(self.content) // self.record_length

    def record(self, number: int) -> bytes:
        """Record ``number`` (1-based); the caller checks the range."""
        assert self.record_length is not None
        start = (number - 1) * self.record_length
        return bytes(self.content[start : start + self.record_length])

    def write_record(self, number: int, data: bytes) -> None:
        """Replace record ``number`` (1-based) with ``data`` of the record length."""
        assert self.record_length is not None and len(data) == self.record_length
        start = (number - 1) * self.record_length
        self.content[start : start + self.record_length] = data


@dataclass(eq=False)
class Ef:
    """A directory entry for an EF: its identity there, access rule, and data."""

    name: str
    fid: int
    sfi: int | None
    access: Access
    data: FileData
    arr_fid: int


@dataclass(eq=False)
class Df:
    """The MF, a DF or an ADF (``aid`` set)."""

    name: str
    fid: int | None
    children: list[Ef | Df] = field(default_factory=list)
    aid: bytes | None = None

    def child(self, fid: int) -> Ef | Df | None:
        """The immediate child with file id ``fid``."""
        return next((c for c in self.children if c.fid == fid), None)

    def by_sfi(self, sfi: int) -> Ef | None:
        """The EF of this directory with short file id ``sfi``."""
        return next((c for c in self.children if isinstance(c, Ef) and c.sfi == sfi), None)

    @property
    def efs(self) -> list[Ef]:
        """The EFs directly in this directory."""
        return [c for c in self.children if isinstance(c, Ef)]

    @property
    def dfs(self) -> list[Df]:
        """The DFs directly in this directory (not ADFs, which are reached by AID)."""
        return [c for c in self.children if isinstance(c, Df)]


@dataclass(eq=False)
class FileSystem:
    """The whole tree, plus every EF's data by persistence key."""

    mf: Df
    usim: Df
    gsm: Df
    telecom: Df
    data: dict[str, FileData]


_PLMN_44010 = bytes.fromhex("44F001")  # MCC 440, MNC 10 (TS 24.008 PLMN coding)
_LAI = _PLMN_44010 + bytes.fromhex("FFFE")
_ALL_ACT = bytes.fromhex("C080")  # UTRAN + E-UTRAN, GSM
_USIM_SERVICES = {19, 20, 21, 27, 33, 42, 43, 85}


def _msisdn_record(profile: CardProfile, length: int) -> bytes:
    return f.encode_msisdn(profile.msisdn, "", length) if profile.msisdn else b"\xff" * length


def _access_class(imsi: str) -> bytes:
    """EF.ACC: one of classes 0-9, from the last IMSI digit (TS 22.011 §4.2)."""
    return (1 << int(imsi[-1])).to_bytes(2, "big")


def _ecc_records() -> bytes:
    # Japan: 110 police (category b1), 119 fire and ambulance (b3, b2), 118 coast guard (b4).
    return bytes.fromhex("11F0FF0111F9FF0611F8FF08" + "FF" * 4 * 2)


class _Builder:
    def __init__(self) -> None:
        self.data: dict[str, FileData] = {}

    def ef(
        self,
        parent: Df,
        ref: FileRef,
        access: Access,
        content: bytes,
        *,
        record_length: int | None = None,
        arr_fid: int = f.EF_ARR_MF.fid,
    ) -> FileData:
        key = f"{parent.name}/{ref.name}"
        data = FileData(key, bytearray(content), record_length)
        self.data[key] = data
        parent.children.append(Ef(ref.name, ref.fid, ref.sfi, access, data, arr_fid))
        return data


def build_file_system(profile: CardProfile) -> FileSystem:
    """The file tree of a card personalised with ``profile``."""
    b = _Builder()
    mf = Df("MF", f.MF.fid)
    telecom = Df("DF.TELECOM", f.DF_TELECOM.fid)
    gsm = Df("DF.GSM", f.DF_GSM.fid)
    usim = Df("ADF.USIM", None, aid=USIM_AID)
    mf.children += [telecom, gsm, usim]

    arr = b"".join(arr_records())
    b.ef(mf, f.EF_ICCID, Access(ALWAYS, NEVER), f.encode_iccid(profile.iccid))
    b.ef(
        mf,
        f.EF_DIR,
        Access(ALWAYS, ADM1),
        f.encode_dir_record(USIM_AID, USIM_LABEL, 32) + b"\xff" * 32,
        record_length=32,
    )
    b.ef(mf, f.EF_PL, Access(ALWAYS, PIN1), f.encode_languages(["ja", "en"], 10))
    b.ef(mf, f.EF_ARR_MF, Access(ALWAYS, ADM1), arr, record_length=ARR_RECORD_LENGTH)

    usim_arr = f.EF_ARR_USIM.fid

    def u(
        ref: FileRef, access: Access, content: bytes, record_length: int | None = None
    ) -> FileData:
        return b.ef(usim, ref, access, content, record_length=record_length, arr_fid=usim_arr)

    imsi = u(
        f.EF_IMSI,
        Access(PIN1 if profile.imsi_protected else ALWAYS, ADM1),
        f.encode_imsi(profile.imsi),
    )
    u(f.EF_LI, Access(ALWAYS, PIN1), f.encode_languages(["ja", "en"], 10))
    keys = bytes.fromhex("07") + b"\xff" * 32  # KSI 7: no key available
    u(f.EF_KEYS, Access(PIN1, PIN1), keys)
    u(f.EF_KEYSPS, Access(PIN1, PIN1), keys)
    u(f.EF_PLMNWACT, Access(PIN1, PIN1), bytes.fromhex("FFFFFF0000") * 8)
    hpplmn = u(f.EF_HPPLMN, Access(PIN1, ADM1), bytes.fromhex("0A"))
    u(f.EF_UST, Access(PIN1, ADM1), f.encode_service_table(_USIM_SERVICES, 11))
    spn = u(f.EF_SPN, Access(ALWAYS, ADM1), f.encode_spn(profile.spn, 0x01))
    msisdn = u(
        f.EF_MSISDN,
        Access(PIN1 if profile.msisdn_protected else ALWAYS, ADM1),
        _msisdn_record(profile, 28) + b"\xff" * 28,
        record_length=28,
    )
    u(f.EF_EST, Access(PIN1, PIN2), bytes(1))
    u(f.EF_START_HFN, Access(PIN1, PIN1), bytes.fromhex("F00000F00000"))
    u(f.EF_THRESHOLD, Access(PIN1, ADM1), bytes.fromhex("FFFFFF"))
    u(f.EF_OPLMNWACT, Access(PIN1, ADM1), _PLMN_44010 + _ALL_ACT + bytes.fromhex("FFFFFF0000") * 7)
    u(f.EF_HPLMNWACT, Access(PIN1, ADM1), _PLMN_44010 + _ALL_ACT + bytes.fromhex("FFFFFF0000"))
    u(f.EF_ARR_USIM, Access(ALWAYS, ADM1), arr, ARR_RECORD_LENGTH)
    u(f.EF_PSLOCI, Access(PIN1, PIN1), b"\xff" * 7 + _LAI + bytes.fromhex("FF01"))
    acc = u(f.EF_ACC, Access(PIN1, ADM1), _access_class(profile.imsi))
    fplmn = u(f.EF_FPLMN, Access(PIN1, PIN1), b"\xff" * 12)
    loci = u(f.EF_LOCI, Access(PIN1, PIN1), b"\xff" * 4 + _LAI + bytes.fromhex("FF01"))
    ad = u(f.EF_AD, Access(ALWAYS, ADM1), f.encode_ad(0x00, profile.mnc_length))
    u(f.EF_ECC, Access(ALWAYS, ADM1), _ecc_records(), 4)
    u(f.EF_NETPAR, Access(PIN1, PIN1), b"\xff" * 16)
    u(f.EF_EPSLOCI, Access(PIN1, PIN1), b"\xff" * 12 + _LAI + bytes.fromhex("01"))
    u(f.EF_EPSNSC, Access(PIN1, PIN1), b"\xff" * 54, 54)

    # TS 51.011: the classic view. Same data where the meaning is the same.
    def shared(parent: Df, data: FileData, fid: int) -> None:
        source = next(e for e in usim.efs if e.data is data)
        parent.children.append(Ef(source.name, fid, None, source.access, data, f.EF_ARR_MF.fid))

    b.ef(gsm, f.EF_GSM_LP, Access(ALWAYS, PIN1), bytes.fromhex("01FFFFFF"))
    shared(gsm, imsi, f.EF_IMSI.fid)
    b.ef(gsm, f.EF_GSM_KC, Access(PIN1, PIN1), b"\xff" * 8 + bytes.fromhex("07"))
    b.ef(gsm, f.EF_GSM_PLMNSEL, Access(PIN1, PIN1), b"\xff" * 24)
    shared(gsm, hpplmn, f.EF_GSM_HPLMN.fid)
    # SST: services 1 (CHV1 disable), 17 (SPN) and 21 (MSISDN) allocated and activated.
    b.ef(gsm, f.EF_GSM_SST, Access(PIN1, ADM1), bytes.fromhex("0300000003030000"))
    shared(gsm, spn, f.EF_SPN.fid)
    shared(gsm, acc, f.EF_ACC.fid)
    shared(gsm, fplmn, f.EF_FPLMN.fid)
    shared(gsm, loci, f.EF_LOCI.fid)
    shared(gsm, ad, f.EF_AD.fid)

    # DF.TELECOM as a typical operator card carries it (TS 51.011 §10.5, TS 31.102
    # §4.4.2 for the same files under the UICC): record sizes as the specs give
    # them, empty records as shipped.
    b.ef(telecom, f.EF_ADN, Access(PIN1, PIN1), b"\xff" * 28 * 10, record_length=28)
    b.ef(telecom, f.EF_FDN, Access(PIN1, PIN2), b"\xff" * 28 * 10, record_length=28)
    # EF.SMS: status byte 00 ("free space") then 175 bytes of FF per record.
    b.ef(telecom, f.EF_SMS, Access(PIN1, PIN1), (b"\x00" + b"\xff" * 175) * 10, record_length=176)
    # EF.SMSP: 28 + Y bytes, Y = 12 alpha identifier bytes; parameter
    # indicators FF: no parameter present.
    b.ef(telecom, f.EF_SMSP, Access(PIN1, PIN1), b"\xff" * 40 * 2, record_length=40)
    # EF.SMSS: last TP-MR used, memory capacity exceeded flag FF (not exceeded).
    b.ef(telecom, f.EF_SMSS, Access(PIN1, PIN1), bytes.fromhex("00FF"))
    b.ef(telecom, f.EF_EXT1, Access(PIN1, PIN1), b"\xff" * 13 * 10, record_length=13)
    shared(telecom, msisdn, f.EF_MSISDN.fid)
    return FileSystem(mf, usim, gsm, telecom, b.data)
