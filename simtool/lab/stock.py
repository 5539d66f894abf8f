"""The card vendor's data file for the lab's cards.

A real vendor ships, with each batch of SIMs, a file with every card's
identity and secrets; the stock import reads it. ``lab stock-file`` writes
the same for the lab's virtual cards so the workflows can be tested end to
end. It holds secrets by nature: it is created with mode 0600 and its content
is never printed.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from apdu.errors import UsageError
from apdu.virtual import CardProfile, lab_profile, load_profile
from simtool.lab.errors import StockFileExistsError
from simtool.lab.layout import MAX_SLOTS

STOCK_COLUMNS = (
    "ICCID",
    "IMSI",
    "PIN1",
    "PUK1",
    "PIN2",
    "PUK2",
    "KI",
    "OPC",
    "ADM1",
    "FORM_FACTOR",
)

ProfileSource = CardProfile | str | Path


def resolve_profile(source: ProfileSource) -> CardProfile:
    """A profile object, a profile name (``profiles/<name>.json``) or a JSON file path."""
    return source if isinstance(source, CardProfile) else load_profile(source)


def lab_card_profiles(
    cards: int | None = None, profiles: Sequence[ProfileSource] = (), seed: int = 0
) -> list[CardProfile]:
    """The cards of a lab: ``profiles`` in the first slots, ``lab_profile(slot, seed)`` after.

    ``cards`` defaults to 2, or to the number of profiles when more are given.
    """
    chosen = [resolve_profile(p) for p in profiles]
    if cards is None:
        cards = max(2, len(chosen))
    if not 0 <= cards <= MAX_SLOTS:
        raise UsageError(f"a lab holds 0 to {MAX_SLOTS} cards, not {cards}")
    if len(chosen) > cards:
        raise UsageError(f"{len(chosen)} profiles given for {cards} cards")
    return chosen + [lab_profile(slot, seed) for slot in range(len(chosen), cards)]


def stock_csv(profiles: Sequence[CardProfile]) -> str:
    """The stock file text: header ``ICCID,IMSI,...,FORM_FACTOR``, one row per card."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STOCK_COLUMNS)
    for p in profiles:
        writer.writerow(
            [
                p.iccid,
                p.imsi,
                p.pin1,
                p.puk1,
                p.pin2,
                p.puk2,
                p.ki.hex().upper(),
                p.opc.hex().upper(),
                p.adm1,
                p.form_factor,
            ]
        )
    return out.getvalue()


def write_stock_file(
    path: Path, profiles: Sequence[CardProfile], *, overwrite: bool = False
) -> int:
    """Write the stock file for ``profiles`` with mode 0600; the number of rows.

    Refuses to replace an existing file unless ``overwrite``
    (:class:`StockFileExistsError`).
    """
    text = stock_csv(profiles).encode("utf-8")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise StockFileExistsError(
            f"{path} exists; choose another name, or overwrite it with --force", path=str(path)
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        # An existing file keeps its mode on O_TRUNC: make it private first.
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
    return len(profiles)
