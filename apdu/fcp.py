"""File control parameters: what a card says about a file when it is selected.

Two encodings decode into one :class:`Fcp`:

* the UICC FCP template ``62`` of ETSI TS 102 221 §11.1.1.3 (BER-TLV);
* the classic SIM SELECT response of GSM 11.11 §9.2.1 (fixed byte positions),
  whose facts without a UICC equivalent (CHV counters, access conditions,
  free memory) are kept in :class:`GsmFileInfo`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from apdu.errors import ParseError
from apdu.tlv import Tlv, encode_ber_tlv, parse_ber_tlv

FileType = Literal["working_ef", "internal_ef", "df"]
Structure = Literal["transparent", "linear_fixed", "cyclic", "ber_tlv"]
SecurityForm = Literal["referenced", "compact", "expanded"]

FCP_TEMPLATE_TAG = 0x62

TAG_FILE_SIZE = 0x80
TAG_TOTAL_FILE_SIZE = 0x81
TAG_FILE_DESCRIPTOR = 0x82
TAG_FILE_ID = 0x83
TAG_DF_NAME = 0x84
TAG_SHORT_FILE_ID = 0x88
TAG_LIFE_CYCLE = 0x8A
TAG_SECURITY_REFERENCED = 0x8B
TAG_SECURITY_COMPACT = 0x8C
TAG_PROPRIETARY = 0xA5
TAG_SECURITY_EXPANDED = 0xAB
TAG_PIN_STATUS = 0xC6
TAG_PS_DO = 0x90
TAG_USAGE_QUALIFIER = 0x95
TAG_KEY_REFERENCE = 0x83

MF_FILE_ID = 0x3F00

# File descriptor byte (TS 102 221 Table 11.5): b7 shareable, b6-b4 file type,
# b3-b1 structure; 'x0111001' is a BER-TLV EF and 'x0111000' a DF/ADF.
_FDB_SHAREABLE = 0x40
_FDB_DF = 0x38
_FDB_BER_TLV = 0x39
_FDB_TYPE_BITS: dict[int, FileType] = {0: "working_ef", 1: "internal_ef"}
_STRUCTURE_BITS: dict[Structure, int] = {"transparent": 1, "linear_fixed": 2, "cyclic": 6}
_DEFAULT_DATA_CODING = 0x21

_SECURITY_FORMS: dict[int, SecurityForm] = {
    TAG_SECURITY_REFERENCED: "referenced",
    TAG_SECURITY_COMPACT: "compact",
    TAG_SECURITY_EXPANDED: "expanded",
}
_SECURITY_TAGS = {form: tag for tag, form in _SECURITY_FORMS.items()}


# FDB bits b3-b1 to a structure. 011 and 111 are the ISO 7816-4 "TLV structure"
# variants of linear fixed and cyclic; 000 means "no information" and 100/101
# (linear variable) do not exist on a UICC. The raw byte stays in
# Fcp.file_descriptor either way.
_STRUCTURE_FROM_BITS: dict[int, Structure] = {
    1: "transparent",
    2: "linear_fixed",
    3: "linear_fixed",
    6: "cyclic",
    7: "cyclic",
}


def life_cycle_text(life_cycle: int) -> str:
    """Name of a life cycle status integer (ISO/IEC 7816-4 Table 14, TS 102 221 §11.1.1.4.9)."""
    if life_cycle == 0x00:
        return "no-information"
    if life_cycle == 0x01:
        return "creation"
    if life_cycle == 0x03:
        return "initialisation"
    if life_cycle & 0xFC == 0x04:
        return "operational-activated" if life_cycle & 0x01 else "operational-deactivated"
    if life_cycle & 0xFC == 0x0C:
        return "terminated"
    if life_cycle >= 0x10:
        return "proprietary"
    return "rfu"


@dataclass(frozen=True, slots=True)
class SecurityAttributes:
    """Security attributes of a file in one of the three forms of TS 102 221 §11.1.1.4.7.

    ``form`` says which tag carried them: ``referenced`` (8B: a record of
    EF.ARR), ``compact`` (8C) or ``expanded`` (AB); ``raw`` is the value as
    read. For the referenced form ``arr_file_id`` is the EF.ARR file id and
    either ``arr_record`` (one record for every SE) or ``seid_records`` (pairs of
    security environment number and record number) says where to look.
    """

    form: SecurityForm
    raw: bytes
    arr_file_id: int | None = None
    arr_record: int | None = None
    seid_records: tuple[tuple[int, int], ...] = ()

    @classmethod
    def referenced(cls, arr_file_id: int, arr_record: int) -> SecurityAttributes:
        """The usual UICC form: EF.ARR ``arr_file_id``, record ``arr_record``."""
        raw = arr_file_id.to_bytes(2, "big") + bytes((arr_record,))
        return cls("referenced", raw, arr_file_id, arr_record)

    @classmethod
    def from_tlv(cls, tlv: Tlv) -> SecurityAttributes:
        """Decode the value of an 8B, 8C or AB object."""
        form = _SECURITY_FORMS.get(tlv.tag)
        if form is None:
            raise ParseError(f"tag {tlv.tag:02X} is not a security attribute")
        if form != "referenced":
            return cls(form, tlv.value)
        value = tlv.value
        if len(value) == 3:
            return cls(form, value, int.from_bytes(value[:2], "big"), value[2])
        if len(value) >= 4 and len(value) % 2 == 0:
            pairs = tuple((value[i], value[i + 1]) for i in range(2, len(value), 2))
            return cls(form, value, int.from_bytes(value[:2], "big"), seid_records=pairs)
        raise ParseError(
            f"referenced security attribute of {len(value)} bytes is malformed", data=value
        )

    def to_tlv_bytes(self) -> bytes:
        """Encode as the 8B/8C/AB data object."""
        return encode_ber_tlv(_SECURITY_TAGS[self.form], self.raw)


@dataclass(frozen=True, slots=True)
class PinStatusEntry:
    """One key reference listed in a PIN status template, with its usage qualifier."""

    key_reference: int
    enabled: bool
    usage_qualifier: int | None = None


@dataclass(frozen=True, slots=True)
class PinStatusTemplate:
    """PIN status template DO ``C6`` (TS 102 221 §9.5.2).

    The PS_DO (tag 90) is a bitmap: bit b8 of its first byte is the status of
    the first key reference listed, b7 of the second, and so on; 1 = enabled.
    """

    entries: tuple[PinStatusEntry, ...]

    @property
    def key_references(self) -> list[int]:
        """Key references in the order the card lists them (01 = PIN1, 81 = PIN2, 0A = ADM1)."""
        return [e.key_reference for e in self.entries]

    def enabled(self, key_reference: int) -> bool:
        """Whether the PIN with ``key_reference`` is enabled; False when it is not listed."""
        return any(e.enabled for e in self.entries if e.key_reference == key_reference)

    def __contains__(self, key_reference: object) -> bool:
        return any(e.key_reference == key_reference for e in self.entries)

    @classmethod
    def from_value(cls, value: bytes) -> PinStatusTemplate:
        """Decode the value of a C6 object."""
        objects = parse_ber_tlv(value)
        if not objects or objects[0].tag != TAG_PS_DO or not objects[0].value:
            raise ParseError(
                "PIN status template does not start with a PS_DO (90)", data=bytes(value)
            )
        bitmap = int.from_bytes(objects[0].value, "big")
        bits = len(objects[0].value) * 8
        entries: list[PinStatusEntry] = []
        qualifier: int | None = None
        for obj in objects[1:]:
            if obj.tag == TAG_USAGE_QUALIFIER and len(obj.value) == 1:
                qualifier = obj.value[0]
            elif obj.tag == TAG_KEY_REFERENCE and len(obj.value) == 1:
                index = len(entries)
                if index >= bits:
                    raise ParseError(
                        f"PS_DO of {bits} bits cannot cover key reference number {index + 1}",
                        data=bytes(value),
                    )
                enabled = bool(bitmap >> (bits - 1 - index) & 1)
                entries.append(PinStatusEntry(obj.value[0], enabled, qualifier))
                qualifier = None
            else:
                raise ParseError(
                    f"unexpected object {obj.tag:02X} of {len(obj.value)} bytes "
                    "in PIN status template",
                    data=bytes(value),
                )
        if qualifier is not None:
            raise ParseError(
                "usage qualifier without a key reference in PIN status template", data=bytes(value)
            )
        return cls(tuple(entries))

    def to_bytes(self) -> bytes:
        """Encode as the complete C6 data object."""
        size = max(1, (len(self.entries) + 7) // 8)
        bitmap = 0
        for index, entry in enumerate(self.entries):
            if entry.enabled:
                bitmap |= 1 << (size * 8 - 1 - index)
        body = encode_ber_tlv(TAG_PS_DO, bitmap.to_bytes(size, "big"))
        for entry in self.entries:
            if entry.usage_qualifier is not None:
                body += encode_ber_tlv(TAG_USAGE_QUALIFIER, bytes((entry.usage_qualifier,)))
            body += encode_ber_tlv(TAG_KEY_REFERENCE, bytes((entry.key_reference,)))
        return encode_ber_tlv(TAG_PIN_STATUS, body)


def build_pin_status_template(entries: list[tuple[int, bool]]) -> bytes:
    """Encode a C6 object from (key reference, enabled) pairs, in order."""
    return PinStatusTemplate(tuple(PinStatusEntry(ref, on) for ref, on in entries)).to_bytes()


@dataclass(frozen=True, slots=True)
class CodeStatus:
    """A classic SIM secret code status byte (GSM 11.11 §9.2.1 bytes 19-22)."""

    initialised: bool
    retries: int  # false presentations remaining, 0..15

    @classmethod
    def from_byte(cls, byte: int) -> CodeStatus:
        """b8 = secret code initialised, b4-b1 = false presentations remaining."""
        return cls(bool(byte & 0x80), byte & 0x0F)

    def to_byte(self) -> int:
        """The status byte as the card sends it."""
        return (0x80 if self.initialised else 0x00) | (self.retries & 0x0F)


@dataclass(frozen=True, slots=True)
class GsmFileInfo:
    """Classic SIM SELECT response facts that have no place in a UICC FCP.

    Directory fields (``free_memory`` .. ``unblock_chv2``) are None for an EF;
    EF fields (``access_conditions`` .. ``increase_allowed``) are None for a
    directory. ``access_conditions`` are bytes 9-11: nibbles READ/SEEK, UPDATE,
    INCREASE, RFU, REHABILITATE, INVALIDATE (0 ALW, 1 CHV1, 2 CHV2, 4-E ADM, F NEV).
    """

    free_memory: int | None = None
    file_characteristics: int | None = None
    child_dfs: int | None = None
    child_efs: int | None = None
    secret_codes: int | None = None
    chv1: CodeStatus | None = None
    unblock_chv1: CodeStatus | None = None
    chv2: CodeStatus | None = None
    unblock_chv2: CodeStatus | None = None
    access_conditions: bytes | None = None
    invalidated: bool | None = None
    readable_when_invalidated: bool | None = None
    increase_allowed: bool | None = None

    @property
    def chv1_enabled(self) -> bool | None:
        """False when b8 of the file characteristics says CHV1 is disabled."""
        if self.file_characteristics is None:
            return None
        return not self.file_characteristics & 0x80


@dataclass(frozen=True, slots=True)
class Fcp:
    """What a card says about a selected file (TS 102 221 §11.1.1.3 names).

    ``short_file_id`` is already resolved: an explicit 88 object gives its
    value, an empty 88 object gives None (no SFI), and an EF without 88 gets
    the low 5 bits of its file id. ``other`` keeps every object not decoded
    into a field (in order), so nothing the card sent is lost.
    """

    file_descriptor: int
    file_type: FileType
    structure: Structure | None
    shareable: bool = False
    data_coding: int | None = None
    record_length: int | None = None
    number_of_records: int | None = None
    file_id: int | None = None
    df_name: bytes | None = None
    proprietary: bytes | None = None
    life_cycle: int | None = None
    security_attributes: SecurityAttributes | None = None
    file_size: int | None = None
    total_file_size: int | None = None
    short_file_id: int | None = None
    pin_status: PinStatusTemplate | None = None
    gsm: GsmFileInfo | None = None
    other: tuple[Tlv, ...] = field(default=())

    @property
    def life_cycle_status(self) -> str | None:
        """Life cycle in words ("operational-activated", ...) or None when not given."""
        return None if self.life_cycle is None else life_cycle_text(self.life_cycle)

    @property
    def is_df(self) -> bool:
        """True for the MF, a DF or an ADF."""
        return self.file_type == "df"

    @property
    def is_mf(self) -> bool:
        """True for the master file 3F00."""
        return self.file_type == "df" and self.file_id == MF_FILE_ID


def _int_value(tlv: Tlv, name: str) -> int:
    if not tlv.value:
        raise ParseError(f"FCP {name} ({tlv.tag:02X}) is empty", data=tlv.value)
    return int.from_bytes(tlv.value, "big")


def _decode_descriptor(fdb: int) -> tuple[FileType, Structure | None]:
    if fdb & 0x80:
        raise ParseError(f"file descriptor byte {fdb:02X} has b8 set (RFU)")
    low = fdb & 0x3F
    if low == _FDB_DF:
        return "df", None
    if low == _FDB_BER_TLV:
        return "working_ef", "ber_tlv"
    file_type = _FDB_TYPE_BITS.get(low >> 3)
    if file_type is None:
        raise ParseError(
            f"file descriptor byte {fdb:02X} has a file type TS 102 221 does not define"
        )
    return file_type, _STRUCTURE_FROM_BITS.get(low & 0x07)


def parse_fcp(data: bytes) -> Fcp:
    """Decode an FCP template (the data of a SELECT with P2=04); ParseError if malformed."""
    data = bytes(data)
    if not data or data[0] != FCP_TEMPLATE_TAG:
        raise ParseError("FCP template does not start with tag 62", data=data, offset=0)
    outer = parse_ber_tlv(data)
    if len(outer) != 1:
        raise ParseError(f"expected one FCP template, found {len(outer)} objects", data=data)
    objects = outer[0].children()
    descriptor = next((o for o in objects if o.tag == TAG_FILE_DESCRIPTOR), None)
    if descriptor is None or not descriptor.value:
        raise ParseError("FCP has no file descriptor (82)", data=data)
    d = descriptor.value
    if len(d) > 6:
        raise ParseError(f"file descriptor of {len(d)} bytes is too long", data=data)
    file_type, structure = _decode_descriptor(d[0])
    record_length: int | None = None
    number_of_records: int | None = None
    if len(d) == 3:
        record_length = d[2]
    elif len(d) >= 4:
        record_length = int.from_bytes(d[2:4], "big")
        if len(d) >= 5:
            number_of_records = int.from_bytes(d[4:], "big")

    decoded = _FcpObjects()
    other: list[Tlv] = []
    for obj in objects:
        if obj is descriptor:
            continue
        # A repeated or unknown object is kept, not dropped and not fatal.
        if not decoded.take(obj, data):
            other.append(obj)

    short_file_id: int | None = None
    if decoded.sfi is not None:
        # Bits b8-b4 hold the SFI; an empty object means "no SFI" (TS 102 221 §11.1.1.4.8).
        short_file_id = decoded.sfi.value[0] >> 3 if decoded.sfi.value else None
    elif file_type != "df" and decoded.file_id is not None:
        short_file_id = decoded.file_id & 0x1F

    return Fcp(
        file_descriptor=d[0],
        file_type=file_type,
        structure=structure,
        shareable=bool(d[0] & _FDB_SHAREABLE),
        data_coding=d[1] if len(d) >= 2 else None,
        record_length=record_length,
        number_of_records=number_of_records,
        file_id=decoded.file_id,
        df_name=decoded.df_name,
        proprietary=decoded.proprietary,
        life_cycle=decoded.life_cycle,
        security_attributes=decoded.security_attributes,
        file_size=decoded.file_size,
        total_file_size=decoded.total_file_size,
        short_file_id=short_file_id,
        pin_status=decoded.pin_status,
        other=tuple(other),
    )


@dataclass
class _FcpObjects:
    """Accumulates the decoded objects of one FCP template."""

    file_id: int | None = None
    df_name: bytes | None = None
    proprietary: bytes | None = None
    life_cycle: int | None = None
    security_attributes: SecurityAttributes | None = None
    file_size: int | None = None
    total_file_size: int | None = None
    sfi: Tlv | None = None
    pin_status: PinStatusTemplate | None = None
    seen: set[int] = field(default_factory=set)

    def take(self, obj: Tlv, data: bytes) -> bool:
        """Decode ``obj`` into its field; False if it is unknown or already seen."""
        key = TAG_SECURITY_REFERENCED if obj.tag in _SECURITY_FORMS else obj.tag
        if key in self.seen:
            return False
        value = obj.value
        if obj.tag == TAG_FILE_ID:
            if len(value) != 2:
                raise ParseError(f"file id of {len(value)} bytes", data=data)
            self.file_id = int.from_bytes(value, "big")
        elif obj.tag == TAG_DF_NAME:
            self.df_name = value
        elif obj.tag == TAG_PROPRIETARY:
            self.proprietary = value
        elif obj.tag == TAG_LIFE_CYCLE:
            if len(value) != 1:
                raise ParseError(f"life cycle status of {len(value)} bytes", data=data)
            self.life_cycle = value[0]
        elif obj.tag in _SECURITY_FORMS:
            self.security_attributes = SecurityAttributes.from_tlv(obj)
        elif obj.tag == TAG_FILE_SIZE:
            self.file_size = _int_value(obj, "file size")
        elif obj.tag == TAG_TOTAL_FILE_SIZE:
            self.total_file_size = _int_value(obj, "total file size")
        elif obj.tag == TAG_SHORT_FILE_ID:
            if len(value) > 1:
                raise ParseError(f"short file id of {len(value)} bytes", data=data)
            self.sfi = obj
        elif obj.tag == TAG_PIN_STATUS:
            self.pin_status = PinStatusTemplate.from_value(value)
        else:
            return False
        self.seen.add(key)
        return True


def file_descriptor_byte(
    file_type: FileType, structure: Structure | None, shareable: bool = False
) -> int:
    """The file descriptor byte for a file type and structure (TS 102 221 Table 11.5)."""
    base = _FDB_SHAREABLE if shareable else 0
    if file_type == "df":
        if structure is not None:
            raise ParseError("a DF has no structure")
        return base | _FDB_DF
    if structure == "ber_tlv":
        if file_type != "working_ef":
            raise ParseError("only a working EF can have BER-TLV structure")
        return base | _FDB_BER_TLV
    if structure is None:
        raise ParseError("an EF needs a structure")
    type_bits = 0 if file_type == "working_ef" else 1
    return base | (type_bits << 3) | _STRUCTURE_BITS[structure]


def build_fcp(
    *,
    file_type: FileType,
    structure: Structure | None = None,
    shareable: bool = True,
    data_coding: int = _DEFAULT_DATA_CODING,
    record_length: int | None = None,
    number_of_records: int | None = None,
    file_id: int | None = None,
    df_name: bytes | None = None,
    proprietary: bytes | None = None,
    life_cycle: int | None = 0x05,
    security_attributes: SecurityAttributes | None = None,
    file_size: int | None = None,
    total_file_size: int | None = None,
    short_file_id: int | None = None,
    pin_status: PinStatusTemplate | None = None,
) -> bytes:
    """Encode an FCP template ``62`` in TS 102 221 object order.

    For an EF, ``short_file_id=None`` encodes an empty 88 object ("no SFI")
    and an integer encodes it explicitly; a DF gets no 88 object. Record
    files need ``record_length`` and ``number_of_records``; ``file_size``
    defaults to their product.
    """
    fdb = file_descriptor_byte(file_type, structure, shareable)
    descriptor = bytes((fdb, data_coding))
    if structure in ("linear_fixed", "cyclic"):
        if record_length is None or number_of_records is None:
            raise ParseError("a record file needs record_length and number_of_records")
        if not 0 < record_length <= 0xFFFF or not 0 < number_of_records <= 0xFF:
            raise ParseError(f"record layout {record_length}x{number_of_records} out of range")
        descriptor += record_length.to_bytes(2, "big") + bytes((number_of_records,))
        if file_size is None:
            file_size = record_length * number_of_records
    body = encode_ber_tlv(TAG_FILE_DESCRIPTOR, descriptor)
    if file_id is not None:
        body += encode_ber_tlv(TAG_FILE_ID, file_id.to_bytes(2, "big"))
    if df_name is not None:
        body += encode_ber_tlv(TAG_DF_NAME, df_name)
    if proprietary is not None:
        body += encode_ber_tlv(TAG_PROPRIETARY, proprietary)
    if life_cycle is not None:
        body += encode_ber_tlv(TAG_LIFE_CYCLE, bytes((life_cycle,)))
    if security_attributes is not None:
        body += security_attributes.to_tlv_bytes()
    if pin_status is not None:
        body += pin_status.to_bytes()
    if file_size is not None:
        body += encode_ber_tlv(TAG_FILE_SIZE, _size_bytes(file_size))
    if total_file_size is not None:
        body += encode_ber_tlv(TAG_TOTAL_FILE_SIZE, _size_bytes(total_file_size))
    if file_type != "df":
        if short_file_id is None:
            body += encode_ber_tlv(TAG_SHORT_FILE_ID, b"")
        else:
            if not 0 < short_file_id <= 0x1E:
                raise ParseError(f"short file id {short_file_id} out of range 1..30")
            body += encode_ber_tlv(TAG_SHORT_FILE_ID, bytes((short_file_id << 3,)))
    return encode_ber_tlv(FCP_TEMPLATE_TAG, body)


def _size_bytes(size: int) -> bytes:
    """Sizes are at least 2 bytes on the wire, as cards send them."""
    if size < 0:
        raise ParseError(f"file size {size} is negative")
    return size.to_bytes(max(2, (size.bit_length() + 7) // 8), "big")


# --- GSM 11.11 §9.2.1 ------------------------------------------------------

_GSM_TYPE_MF = 0x01
_GSM_TYPE_DF = 0x02
_GSM_TYPE_EF = 0x04
_GSM_STRUCTURES: dict[int, Structure] = {0x00: "transparent", 0x01: "linear_fixed", 0x03: "cyclic"}
_GSM_STRUCTURE_CODES = {name: code for code, name in _GSM_STRUCTURES.items()}
_GSM_MIN_LENGTH = 13  # through byte 13, "length of the following data"
_GSM_KEY_CHV1 = 0x01
_GSM_KEY_CHV2 = 0x81


def parse_gsm_response(data: bytes) -> Fcp:
    """Decode a classic SIM SELECT/GET RESPONSE answer (GSM 11.11 §9.2.1).

    EFs map to working EFs with the same structure; MF and DFs to ``df``.
    The CHV1-disabled bit gives ``pin_status`` key reference 01 (and CHV2,
    when initialised, key reference 81, always enabled). An invalidated EF
    is reported with life cycle 04 (operational-deactivated), others with 05.
    """
    data = bytes(data)
    if len(data) < _GSM_MIN_LENGTH:
        raise ParseError(
            f"GSM SELECT response of {len(data)} bytes is shorter than {_GSM_MIN_LENGTH}", data=data
        )
    size_or_memory = int.from_bytes(data[2:4], "big")
    file_id = int.from_bytes(data[4:6], "big")
    kind = data[6]
    if kind in (_GSM_TYPE_MF, _GSM_TYPE_DF):
        return _parse_gsm_directory(data, size_or_memory, file_id)
    if kind != _GSM_TYPE_EF:
        raise ParseError(
            f"GSM type of file {kind:02X} is not MF (01), DF (02) or EF (04)", data=data, offset=6
        )
    if len(data) < 14:
        raise ParseError("GSM EF response lacks the structure byte (14)", data=data)
    structure = _GSM_STRUCTURES.get(data[13])
    if structure is None:
        raise ParseError(
            f"GSM EF structure {data[13]:02X} is not 00, 01 or 03", data=data, offset=13
        )
    record_length: int | None = None
    number_of_records: int | None = None
    if structure != "transparent":
        if len(data) < 15 or data[14] == 0:
            raise ParseError("GSM record EF response lacks a record length (byte 15)", data=data)
        record_length = data[14]
        number_of_records = size_or_memory // record_length
    status = data[11]
    gsm = GsmFileInfo(
        access_conditions=data[8:11],
        invalidated=not status & 0x01,
        readable_when_invalidated=bool(status & 0x04),
        increase_allowed=bool(data[7] & 0x40) if structure == "cyclic" else None,
    )
    return Fcp(
        file_descriptor=file_descriptor_byte("working_ef", structure),
        file_type="working_ef",
        structure=structure,
        record_length=record_length,
        number_of_records=number_of_records,
        file_id=file_id,
        life_cycle=0x04 if gsm.invalidated else 0x05,
        file_size=size_or_memory,
        short_file_id=None,
        gsm=gsm,
    )


def _parse_gsm_directory(data: bytes, free_memory: int, file_id: int) -> Fcp:
    def byte(number: int) -> int | None:
        """Byte ``number`` counted from 1 as in GSM 11.11, or None when absent."""
        return data[number - 1] if len(data) >= number else None

    def code(number: int) -> CodeStatus | None:
        value = byte(number)
        return None if value is None else CodeStatus.from_byte(value)

    gsm = GsmFileInfo(
        free_memory=free_memory,
        file_characteristics=byte(14),
        child_dfs=byte(15),
        child_efs=byte(16),
        secret_codes=byte(17),
        chv1=code(19),
        unblock_chv1=code(20),
        chv2=code(21),
        unblock_chv2=code(22),
    )
    pin_status: PinStatusTemplate | None = None
    if gsm.chv1_enabled is not None:
        entries = [PinStatusEntry(_GSM_KEY_CHV1, gsm.chv1_enabled)]
        if gsm.chv2 is not None and gsm.chv2.initialised:
            entries.append(PinStatusEntry(_GSM_KEY_CHV2, True))
        pin_status = PinStatusTemplate(tuple(entries))
    return Fcp(
        file_descriptor=_FDB_DF,
        file_type="df",
        structure=None,
        file_id=file_id,
        pin_status=pin_status,
        gsm=gsm,
    )


def build_gsm_response(
    *,
    file_id: int,
    file_type: Literal["df", "working_ef"],
    structure: Structure | None = None,
    file_size: int = 0,
    record_length: int | None = None,
    access_conditions: bytes = b"\x00\x00\x00",
    invalidated: bool = False,
    readable_when_invalidated: bool = False,
    increase_allowed: bool = False,
    free_memory: int = 0,
    file_characteristics: int = 0x00,
    chv1_enabled: bool = True,
    child_dfs: int = 0,
    child_efs: int = 0,
    secret_codes: int = 4,
    chv1: CodeStatus | None = None,
    unblock_chv1: CodeStatus | None = None,
    chv2: CodeStatus | None = None,
    unblock_chv2: CodeStatus | None = None,
) -> bytes:
    """Encode a GSM 11.11 §9.2.1 SELECT response for an EF or a directory.

    A directory whose ``file_id`` is 3F00 is typed MF (01), others DF (02).
    ``chv1_enabled=False`` sets b8 of the file characteristics byte.
    Missing code statuses default to initialised with 3 (CHV) or 10 (UNBLOCK
    CHV) attempts, as a fresh card reports them.
    """
    fid = file_id.to_bytes(2, "big")
    if file_type == "df":
        characteristics = (file_characteristics & 0x7F) | (0x00 if chv1_enabled else 0x80)
        codes = (
            chv1 or CodeStatus(True, 3),
            unblock_chv1 or CodeStatus(True, 10),
            chv2 or CodeStatus(True, 3),
            unblock_chv2 or CodeStatus(True, 10),
        )
        kind = _GSM_TYPE_MF if file_id == MF_FILE_ID else _GSM_TYPE_DF
        gsm_data = bytes(
            (
                characteristics,
                child_dfs,
                child_efs,
                secret_codes,
                0x00,
                *(c.to_byte() for c in codes),
            )
        )
        return (
            b"\x00\x00"
            + free_memory.to_bytes(2, "big")
            + fid
            + bytes((kind,))
            + bytes(5)
            + bytes((len(gsm_data),))
            + gsm_data
        )
    if structure not in _GSM_STRUCTURE_CODES:
        raise ParseError(f"a GSM EF cannot have structure {structure}")
    if len(access_conditions) != 3:
        raise ParseError("GSM access conditions are 3 bytes")
    code_byte = _GSM_STRUCTURE_CODES[structure]
    if structure != "transparent" and not record_length:
        raise ParseError("a GSM record EF needs a record length")
    byte8 = 0x40 if structure == "cyclic" and increase_allowed else 0x00
    status = (0x00 if invalidated else 0x01) | (0x04 if readable_when_invalidated else 0x00)
    return (
        b"\x00\x00"
        + file_size.to_bytes(2, "big")
        + fid
        + bytes((_GSM_TYPE_EF, byte8))
        + bytes(access_conditions)
        + bytes((status, 0x02, code_byte, record_length or 0))
    )
