"""``simtool diagnose``: a technician's verdict on a returned card, with a report.

The command opens the reader, calls :func:`provisioning.diagnosis.diagnose_card`
(evidence without spending any PIN/PUK attempt, the authentication test, one
audit event with the report id) and renders the verdict: on the screen in the
technician's language, as JSON, and as a printable HTML report.

Exit code 0 means a verdict was delivered, whatever it is (``ok``,
``recoverable``, ``blocked``, ``faulty``, ``not-ours``: read it from the output
or the JSON); the other codes are the station's errors (no card, database
unavailable, bad option...).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from apdu.errors import UsageError
from simtool.config import Settings, station_options
from simtool.options import json_option, reader_option, trace_option
from simtool.output import render, to_jsonable

#: Per-APDU deadline of a diagnosis: a healthy SIM answers in well under a
#: second (AUTHENTICATE included); a mute card should not keep the bench waiting.
DEFAULT_DEADLINE = 3.0


@click.command("diagnose")
@reader_option
@click.option(
    "--scan",
    "scanned_iccid",
    default=None,
    metavar="ICCID",
    help="The ICCID scanned from the card's label: checked against the chip, and the "
    "card's identity when the chip is mute.",
)
@click.option(
    "--modem",
    default=None,
    metavar="PORT",
    help="A modem holding the customer's card: registration state and signal, to tell a "
    "line or coverage problem from a card fault.",
)
@click.option("--dialect", default=None, help="The modem's dialect (default: detect).")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE.html",
    help="Write the printable report (self-contained HTML, A4).",
)
@click.option(
    "--lang",
    default=None,
    metavar="ja|en",
    help="Language of the screen and the report [env SIMTOOL_LANG; default: the locale].",
)
@click.option(
    "--deadline",
    type=click.FloatRange(0.1, 60.0),
    default=DEFAULT_DEADLINE,
    show_default=True,
    help="Seconds the card has to answer each command; a card that does not is mute.",
)
@click.option(
    "--no-pin",
    "no_pin",
    is_flag=True,
    help="Never present PIN1, not even the station's value on a full counter "
    "(the authentication test is then skipped on a card whose PIN1 is enabled).",
)
@trace_option
@station_options
@json_option
def diagnose_command(
    settings: Settings,
    reader: str | None,
    scanned_iccid: str | None,
    modem: str | None,
    dialect: str | None,
    report_path: Path | None,
    lang: str | None,
    deadline: float,
    no_pin: bool,
    trace_path: str | None,
    as_json: bool,
) -> None:
    """Diagnose the card in the reader: ok, recoverable, blocked, faulty or not-ours.

    Nothing is written to the card and no PUK is sent. PIN1 is presented only
    when the authentication test needs it, with the value the station knows,
    on a full counter (see --no-pin). Exit code 0: a verdict was delivered.
    """
    from provisioning.diagnosis import diagnose_card, read_modem_evidence
    from simtool.cardaccess import open_card
    from simtool.diagnose_report import print_diagnosis, render_html
    from simtool.i18n import resolve_language

    language = resolve_language(lang)
    if report_path is not None:
        _check_writable(report_path)
    database = settings.database()
    modem_evidence = read_modem_evidence(modem, dialect=dialect) if modem else None
    with open_card(reader, trace_path=trace_path, timeout=deadline) as transport:
        diagnosis = diagnose_card(
            transport,
            database,
            settings.keyring(),
            settings.actor(),
            scanned_iccid=scanned_iccid,
            modem=modem_evidence,
            present_pin=not no_pin,
        )
    if report_path is not None:
        report_path.write_text(render_html(diagnosis, language), encoding="utf-8")
    document: dict[str, Any] = to_jsonable(diagnosis)
    document["report"] = str(report_path) if report_path is not None else None

    def human(out: Console) -> None:
        print_diagnosis(diagnosis, out, language)
        if report_path is not None:
            out.print(str(report_path), markup=False)

    render(document, as_json, human)


def _check_writable(path: Path) -> None:
    """Refuse an unwritable report path before the card is touched."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"cannot write the report {path}: no directory {parent}")
    target = path if path.exists() else parent
    if path.is_dir() or not os.access(target, os.W_OK):
        raise UsageError(f"cannot write the report {path}: not writable")
