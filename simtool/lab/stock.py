"""The card vendor's data file for the lab's cards.

A real vendor ships, with each batch of SIMs, a file with every card's
identity and secrets; the stock import reads it. ``lab stock-file`` writes
the same for the lab's virtual cards so the workflows can be tested end to
end. It holds secrets by nature: it is created with mode 0600 and its content
is never printed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apdu.errors import UsageError
from apdu.virtual import CardProfile, lab_profile, load_profile
from simtool.lab.errors import StockFileExistsError
from simtool.lab.layout import MAX_SLOTS

if TYPE_CHECKING:
    from provisioning.stockfile import StockRow

__all__ = ["lab_card_profiles", "stock_csv", "stock_row", "write_stock_file"]

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


def stock_row(profile: CardProfile, line: int = 2) -> StockRow:
    """A lab card as the vendor's stock file describes it."""
    from provisioning.lifecycle import FormFactor
    from provisioning.secrets import CardSecrets
    from provisioning.stockfile import StockRow

    return StockRow(
        line=line,
        iccid=profile.iccid,
        imsi=profile.imsi,
        form_factor=FormFactor(profile.form_factor),
        secrets=CardSecrets(
            pin1=profile.pin1,
            puk1=profile.puk1,
            pin2=profile.pin2,
            puk2=profile.puk2,
            adm1=profile.adm1,
            ki=profile.ki,
            opc=profile.opc,
        ),
    )


def stock_csv(profiles: Sequence[CardProfile]) -> str:
    """The stock file text, in the one format the importer reads
    (:mod:`provisioning.stockfile`): header ``ICCID,IMSI,...,FORM_FACTOR``, a row per card."""
    from provisioning.stockfile import stock_csv_text

    return stock_csv_text(stock_row(p, line) for line, p in enumerate(profiles, start=2))


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


def __getattr__(name: str) -> Any:
    # provisioning (and with it the cryptography package) is imported when a
    # stock file is written, not by every command that finds the lab.
    if name == "STOCK_COLUMNS":
        from provisioning.stockfile import STOCK_COLUMNS

        return STOCK_COLUMNS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
