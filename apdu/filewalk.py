"""Walk a card's file system as far as its access rules allow, decoding what is known.

A UICC has no "list directory" command, so the walk follows the files the
standards define (TS 102 221 §13 under the MF, TS 51.011 §10 under DF.TELECOM
and DF.GSM, TS 31.102 §4.2 under ADF.USIM): each is selected with its FCP
(type, structure, size, records), then read; a file the card protects
(6982/9804) or does not have is reported as such, never fought with. Nothing
here presents a PIN: the walk only sees what is readable now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apdu import files as f
from apdu.card import Card
from apdu.errors import FileNotFoundOnCardError, ParseError, SecurityStatusError, StatusWordError
from apdu.fcp import Fcp
from apdu.status import describe_sw
from apdu.transport.base import CardTransport

#: The most records read from one file (EF.SMS has up to 255 of 176 bytes).
MAX_RECORDS = 32


def _spn(raw: bytes) -> Any:
    spn = f.decode_spn(raw)
    return {"name": spn.name, "display_condition": spn.display_condition}


def _msisdn(record: bytes) -> Any:
    decoded = f.decode_msisdn(record)
    return None if decoded is None else {"alpha": decoded.alpha, "number": decoded.number}


def _dir(record: bytes) -> Any:
    app = f.decode_dir_record(record)
    return None if app is None else {"aid": app.aid.hex().upper(), "label": app.label}


def _ad(raw: bytes) -> Any:
    ad = f.decode_ad(raw)
    return {"mnc_length": ad.mnc_length}


#: Decoders by file name: transparent files get the content, record files
#: each record.
DECODERS: dict[str, Callable[[bytes], Any]] = {
    "EF.ICCID": f.decode_iccid,
    "EF.IMSI": f.decode_imsi,
    "EF.SPN": _spn,
    "EF.AD": _ad,
    "EF.MSISDN": _msisdn,
    "EF.ADN": _msisdn,
    "EF.FDN": _msisdn,
    "EF.DIR": _dir,
    "EF.PL": f.decode_languages,
    "EF.LI": f.decode_languages,
    "EF.UST": lambda raw: sorted(f.decode_service_table(raw)),
}

# (directory path from the MF, its files). ADF.USIM is reached by AID.
_TREE: list[tuple[str, list[int], list[f.FileRef]]] = [
    ("MF", [], [f.EF_ICCID, f.EF_DIR, f.EF_PL, f.EF_ARR_MF]),
    (
        "DF.TELECOM",
        [f.DF_TELECOM.fid],
        [f.EF_ADN, f.EF_FDN, f.EF_SMS, f.EF_MSISDN, f.EF_SMSP, f.EF_SMSS, f.EF_EXT1],
    ),
    (
        "DF.GSM",
        [f.DF_GSM.fid],
        [
            f.EF_GSM_LP,
            f.EF_IMSI,
            f.EF_GSM_KC,
            f.EF_GSM_PLMNSEL,
            f.EF_GSM_HPLMN,
            f.EF_GSM_SST,
            f.EF_SPN,
            f.EF_ACC,
            f.EF_FPLMN,
            f.EF_LOCI,
            f.EF_AD,
        ],
    ),
]
_USIM_FILES: list[f.FileRef] = [
    f.EF_LI,
    f.EF_IMSI,
    f.EF_KEYS,
    f.EF_KEYSPS,
    f.EF_PLMNWACT,
    f.EF_HPPLMN,
    f.EF_UST,
    f.EF_SPN,
    f.EF_MSISDN,
    f.EF_EST,
    f.EF_START_HFN,
    f.EF_THRESHOLD,
    f.EF_OPLMNWACT,
    f.EF_HPLMNWACT,
    f.EF_ARR_USIM,
    f.EF_PSLOCI,
    f.EF_ACC,
    f.EF_FPLMN,
    f.EF_LOCI,
    f.EF_AD,
    f.EF_ECC,
    f.EF_NETPAR,
    f.EF_EPSLOCI,
    f.EF_EPSNSC,
]


@dataclass
class FileEntry:
    """One file found on the card: where, what its FCP says, and what could be read.

    ``status`` is "read", "protected" (access condition not met),
    "absent" or "error" (with ``sw`` and ``meaning``).
    """

    path: str
    name: str
    fid: str
    status: str
    structure: str | None = None
    size: int | None = None
    record_length: int | None = None
    records: int | None = None
    content: str | list[str] | None = None
    decoded: Any = None
    sw: str | None = None
    meaning: str | None = None


@dataclass
class FileTree:
    """The walk's result: the files in walk order, and the directories reached."""

    directories: list[str] = field(default_factory=list)
    files: list[FileEntry] = field(default_factory=list)


def walk_files(transport: CardTransport) -> FileTree:
    """Select and read every known file the access rules allow; spends no PIN attempt."""
    tree = FileTree()
    with transport.transaction():
        card = Card(transport)
        card.detect()
        if card.card_type == "sim":
            raise ParseError("files walks UICCs (CLA 00); this card only speaks TS 51.011")
        for label, path, refs in _TREE:
            try:
                card.select_path(path) if path else card.select(f.MF.fid)
            except StatusWordError:
                continue
            tree.directories.append(label)
            for ref in refs:
                tree.files.append(_entry(card, label, [*path, ref.fid], ref))
        try:
            card.select_aid(f.USIM_AID_PREFIX, fcp=False)
        except StatusWordError:
            return tree
        tree.directories.append("ADF.USIM")
        for ref in _USIM_FILES:
            tree.files.append(_entry(card, "ADF.USIM", None, ref))
    return tree


def _entry(card: Card, directory: str, path: list[int] | None, ref: f.FileRef) -> FileEntry:
    entry = FileEntry(directory, ref.name, f"{ref.fid:04X}", "read")
    try:
        # Under the MF: SELECT by path (the current DF may be anywhere);
        # under ADF.USIM: by file id, the ADF being current.
        fcp = (
            card.select_path(path, fcp=True) if path is not None else card.select(ref.fid, fcp=True)
        )
    except FileNotFoundOnCardError:
        entry.status = "absent"
        return entry
    except StatusWordError as error:
        return _failed(entry, error)
    assert isinstance(fcp, Fcp)
    entry.structure = fcp.structure
    entry.size = fcp.file_size
    entry.record_length = fcp.record_length
    entry.records = fcp.number_of_records
    try:
        if fcp.record_length:
            count = min(fcp.number_of_records or 1, MAX_RECORDS)
            records = [card.read_record(n, fcp.record_length) for n in range(1, count + 1)]
            entry.content = [r.hex().upper() for r in records]
            decoder = DECODERS.get(ref.name)
            if decoder is not None:
                entry.decoded = [_decode(decoder, r) for r in records]
        else:
            raw = card.read_binary(fcp.file_size) if fcp.file_size else b""
            entry.content = raw.hex().upper()
            decoder = DECODERS.get(ref.name)
            if decoder is not None:
                entry.decoded = _decode(decoder, raw)
    except SecurityStatusError as error:
        entry.status, entry.sw = "protected", f"{error.sw:04X}"
        entry.meaning = describe_sw(error.sw)
    except StatusWordError as error:
        return _failed(entry, error)
    return entry


def _failed(entry: FileEntry, error: StatusWordError) -> FileEntry:
    entry.status = "protected" if isinstance(error, SecurityStatusError) else "error"
    entry.sw, entry.meaning = f"{error.sw:04X}", describe_sw(error.sw)
    return entry


def _decode(decoder: Callable[[bytes], Any], raw: bytes) -> Any:
    if raw and raw.count(0xFF) == len(raw):
        return None  # an erased file or record
    try:
        return decoder(raw)
    except ParseError as error:
        return {"undecodable": str(error)}
