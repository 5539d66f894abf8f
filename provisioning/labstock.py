"""The card vendor's data file for the lab's cards.

A real vendor ships, with each batch of SIMs, a file with every card's
identity and secrets; the stock import reads it. ``lab stock-file`` writes
the same for the lab's virtual cards, in the one format the importer reads
(:mod:`provisioning.stockfile`), so the workflows can be tested end to end.
It holds secrets by nature: it is created with mode 0600 and its content is
never printed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from apdu.errors import UsageError
from apdu.lab import Lab
from apdu.lab.cards import ProfileSource, lab_card_profiles
from apdu.lab.errors import StockFileExistsError
from apdu.virtual import CardProfile
from provisioning.lifecycle import FormFactor
from provisioning.secrets import CardSecrets
from provisioning.stockfile import StockRow, stock_csv_text

__all__ = ["stock_csv", "stock_row", "write_lab_stock_file", "write_stock_file"]


def stock_row(profile: CardProfile, line: int = 2) -> StockRow:
    """A lab card as the vendor's stock file describes it."""
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


def write_lab_stock_file(
    path: Path | str,
    *,
    cards: int | None = None,
    seed: int | None = None,
    profiles: Sequence[ProfileSource] = (),
    labdir: Path | str | None = None,
    overwrite: bool = False,
) -> int:
    """Write the vendor stock file (mode 0600) for the lab's cards; the number of rows.

    With ``cards``, ``seed`` or ``profiles`` the cards are the ones ``Lab.up``
    would create with them (no lab needed); otherwise they are the cards the
    running lab holds, present or removed.
    """
    if cards is not None or seed is not None or profiles:
        chosen = lab_card_profiles(cards, profiles, seed or 0)
    else:
        chosen = Lab.running(labdir).card_profiles()
    return write_stock_file(Path(path), chosen, overwrite=overwrite)
