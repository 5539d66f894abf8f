"""BER-TLV and compact-TLV data objects (ISO/IEC 7816-4 §5.2, ETSI TS 102 221 §8.3).

BER-TLV objects carry FCP templates, application templates in EF.DIR and most
UICC data; compact-TLV objects carry the historical bytes of an ATR. Both decode
to the same :class:`Tlv`; a compact-TLV tag is the 4-bit tag number (the
interindustry BER-TLV tag ``4X`` of the same object has the same low nibble).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from apdu.errors import ParseError

# TS 102 221 §8.3 and ISO 7816-4 let '00' and 'FF' appear before, between and
# after data objects (padding of records and erased memory); neither can begin a tag.
_PADDING = (0x00, 0xFF)
_MAX_TAG_BYTES = 3
_MAX_LENGTH_BYTES = 4
_CONSTRUCTED_BIT = 0x20


def _tag_bytes(tag: int) -> bytes:
    """Bytes of a tag number as it appears on the wire (1 to 3 bytes)."""
    if tag < 0:
        raise ParseError(f"BER-TLV tag {tag} is negative")
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def _first_tag_byte(tag: int) -> int:
    """The leading tag byte, which carries the class and constructed bit."""
    return _tag_bytes(tag)[0]


@dataclass(frozen=True, slots=True)
class Tlv:
    """One data object: its tag number (as the tag bytes read big-endian) and value."""

    tag: int
    value: bytes

    @property
    def constructed(self) -> bool:
        """True when bit b6 of the first tag byte says the value holds nested objects."""
        return bool(_first_tag_byte(self.tag) & _CONSTRUCTED_BIT)

    def children(self) -> list[Tlv]:
        """Parse the value as nested BER-TLV objects; ParseError for a primitive object."""
        if not self.constructed:
            raise ParseError(
                f"tag {self.tag:02X} is primitive and has no nested objects", data=self.value
            )
        return parse_ber_tlv(self.value)

    def to_bytes(self) -> bytes:
        """Encode as BER-TLV (shortest length form)."""
        return encode_ber_tlv(self.tag, self.value)

    def __bytes__(self) -> bytes:
        return self.to_bytes()


def encode_ber_length(length: int) -> bytes:
    """Encode a length field: one byte below 128, else ``81``..``84`` and the length."""
    if length < 0:
        raise ParseError(f"BER-TLV length {length} is negative")
    if length < 0x80:
        return bytes((length,))
    size = (length.bit_length() + 7) // 8
    if size > _MAX_LENGTH_BYTES:
        raise ParseError(f"BER-TLV length {length} needs more than {_MAX_LENGTH_BYTES} bytes")
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


def _check_tag(tag: int) -> bytes:
    """The wire bytes of ``tag``, or ParseError if a parser would not read it back."""
    raw = _tag_bytes(tag)
    if len(raw) > _MAX_TAG_BYTES:
        raise ParseError(f"BER-TLV tag {tag:X} is longer than {_MAX_TAG_BYTES} bytes")
    if raw[0] in _PADDING:
        raise ParseError(f"BER-TLV tag {tag:X} begins with padding byte {raw[0]:02X}")
    multi = (raw[0] & 0x1F) == 0x1F
    if len(raw) == 1:
        if multi:
            raise ParseError(f"BER-TLV tag {tag:02X} announces subsequent tag bytes")
        return raw
    if not multi:
        raise ParseError(f"BER-TLV tag {tag:X}: first byte does not announce more tag bytes")
    if any(not b & 0x80 for b in raw[1:-1]) or raw[-1] & 0x80:
        raise ParseError(f"BER-TLV tag {tag:X} has wrong continuation bits")
    return raw


def encode_ber_tlv(tag: int, value: bytes) -> bytes:
    """Encode one BER-TLV object; a tag that would not parse back raises ParseError."""
    return _check_tag(tag) + encode_ber_length(len(value)) + bytes(value)


def _read_tag(data: bytes, offset: int) -> tuple[int, int]:
    """Read a tag at ``offset``; return (tag, offset after it)."""
    start = offset
    first = data[offset]
    offset += 1
    tag = first
    if (first & 0x1F) == 0x1F:
        while True:
            if offset >= len(data):
                raise ParseError("BER-TLV tag truncated", data=bytes(data), offset=start)
            if offset - start >= _MAX_TAG_BYTES:
                raise ParseError(
                    f"BER-TLV tag longer than {_MAX_TAG_BYTES} bytes",
                    data=bytes(data),
                    offset=start,
                )
            byte = data[offset]
            offset += 1
            tag = (tag << 8) | byte
            if not byte & 0x80:
                break
    return tag, offset


def _read_length(data: bytes, offset: int) -> tuple[int, int]:
    """Read a length field at ``offset``; return (length, offset after it)."""
    if offset >= len(data):
        raise ParseError("BER-TLV length missing", data=bytes(data), offset=offset)
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    size = first & 0x7F
    if size == 0:
        # Indefinite length (X.690) is not allowed in ISO 7816 data objects.
        raise ParseError(
            "BER-TLV indefinite length 80 is not allowed", data=bytes(data), offset=offset
        )
    if size > _MAX_LENGTH_BYTES:
        raise ParseError(
            f"BER-TLV length field {first:02X} is not valid", data=bytes(data), offset=offset
        )
    end = offset + 1 + size
    if end > len(data):
        raise ParseError("BER-TLV length field truncated", data=bytes(data), offset=offset)
    return int.from_bytes(data[offset + 1 : end], "big"), end


def ber_spans(data: bytes) -> list[tuple[int, int, int]]:
    """(tag, value start, value end) of each BER-TLV object of ``data``, checked.

    The common object (one tag byte, a length below 128) is read inline: an
    FCP is a dozen of them and a card read decodes one per card.
    """
    out: list[tuple[int, int, int]] = []
    offset = 0
    size = len(data)
    while offset < size:
        first = data[offset]
        if first in _PADDING:
            offset += 1
            continue
        start = offset
        if first & 0x1F != 0x1F and offset + 1 < size and data[offset + 1] < 0x80:
            tag = first
            length = data[offset + 1]
            offset += 2
        else:
            tag, offset = _read_tag(data, offset)
            length, offset = _read_length(data, offset)
        end = offset + length
        if end > size:
            raise ParseError(
                f"BER-TLV object {tag:02X} at offset {start} announces {length} bytes, "
                f"only {size - offset} remain",
                data=data,
                offset=start,
            )
        out.append((tag, offset, end))
        offset = end
    return out


def parse_ber_tlv(data: bytes) -> list[Tlv]:
    """Parse a sequence of BER-TLV objects, skipping ``00``/``FF`` padding between them.

    Tags of up to 3 bytes and lengths in short form or long form ``81``..``84``
    are accepted. Anything truncated or malformed raises :class:`ParseError`
    with the offset of the object that failed.
    """
    data = bytes(data)
    return [Tlv(tag, data[start:end]) for tag, start, end in ber_spans(data)]


def find_ber_value(data: bytes, tag: int) -> bytes | None:
    """The value of the first object with ``tag`` in a BER-TLV sequence, None if absent.

    The whole sequence is checked as :func:`parse_ber_tlv` checks it (a
    malformed one raises :class:`ParseError`), without building its objects.
    """
    data = bytes(data)
    found: bytes | None = None
    for object_tag, start, end in ber_spans(data):
        if found is None and object_tag == tag:
            found = data[start:end]
    return found


def find_tlv(tlvs: Iterable[Tlv], tag: int) -> Tlv | None:
    """The first object with ``tag`` among ``tlvs`` (not searching nested objects)."""
    for tlv in tlvs:
        if tlv.tag == tag:
            return tlv
    return None


def parse_compact_tlv(data: bytes) -> list[Tlv]:
    """Parse compact-TLV objects (ISO/IEC 7816-4 §8.1.1.2): one byte ``tag<<4 | length``.

    The tag of each returned :class:`Tlv` is the 4-bit tag number. A length
    running past the end raises :class:`ParseError`.
    """
    data = bytes(data)
    out: list[Tlv] = []
    offset = 0
    while offset < len(data):
        header = data[offset]
        tag, length = header >> 4, header & 0x0F
        end = offset + 1 + length
        if end > len(data):
            raise ParseError(
                f"compact-TLV object {tag:X} at offset {offset} announces {length} bytes, "
                f"only {len(data) - offset - 1} remain",
                data=data,
                offset=offset,
            )
        out.append(Tlv(tag, data[offset + 1 : end]))
        offset = end
    return out


def encode_compact_tlv(tag: int, value: bytes) -> bytes:
    """Encode one compact-TLV object (tag and length each 0..15)."""
    if not 0 <= tag <= 0x0F:
        raise ParseError(f"compact-TLV tag {tag} is not a nibble")
    if len(value) > 0x0F:
        raise ParseError(f"compact-TLV value of {len(value)} bytes exceeds 15")
    return bytes(((tag << 4) | len(value),)) + bytes(value)
