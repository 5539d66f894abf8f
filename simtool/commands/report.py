"""``simtool report``: what this station did."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime, timedelta

import click

from apdu.errors import UsageError
from provisioning.exports import SHIFT_CSV_COLUMNS, event_rule, shift_report, shift_rows
from simtool.config import Settings, station_options
from simtool.i18n import LANGUAGES, format_local_time, resolve_language, translator
from simtool.options import json_option
from simtool.output import console, emit_json, table

#: A shift, when --since is not given.
DEFAULT_SHIFT = timedelta(hours=12)


def _when(text: str | None, default: datetime) -> datetime:
    if text is None:
        return default
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise UsageError(f"not an ISO date or time: {text!r}") from error
    # A time without a zone is the station's local time, as a person types it.
    return value.astimezone(UTC) if value.tzinfo is None else value


@click.group("report")
def report_group() -> None:
    """Reports of the station's work."""


@report_group.command("shift")
@click.option(
    "--since",
    default=None,
    metavar="TIME",
    help="Start (ISO date or time, local unless a zone is given); default: 12 h ago.",
)
@click.option("--until", default=None, metavar="TIME", help="End; default: now.")
@click.option(
    "--of-station",
    "of_station",
    default=None,
    help="Report another station's work (default: this station).",
)
@click.option("--csv", "as_csv", is_flag=True, help="One CSV row per action (times in UTC).")
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default=None,
    help="Language of the table (default: SIMTOOL_LANG, then the locale); JSON and CSV keep "
    "their English keys.",
)
@station_options
@json_option
def shift_command(
    settings: Settings,
    since: str | None,
    until: str | None,
    of_station: str | None,
    as_csv: bool,
    lang: str | None,
    as_json: bool,
) -> None:
    """The station's actions in the shift, refusals included: a table (local times),
    --csv (one row per action) or --json with totals."""
    if as_csv and as_json:
        raise UsageError("give --csv or --json, not both")
    now = datetime.now(UTC)
    report = shift_report(
        settings.database(),
        of_station or settings.station,
        _when(since, now - DEFAULT_SHIFT),
        _when(until, now),
    )
    if as_json:
        emit_json(report)
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(SHIFT_CSV_COLUMNS)
        writer.writerows(shift_rows(report))
        return
    _ = translator(resolve_language(lang))
    out = console()
    out.print(
        _("Station {station}: {since} - {until}").format(
            station=report.station,
            since=format_local_time(report.since),
            until=format_local_time(report.until),
        )
    )
    columns = [
        "#",
        _("Time"),
        _("Operator"),
        _("Action"),
        _("Result"),
        _("Rule"),
        _("Card"),
        _("Line"),
    ]
    out.print(table(_("Actions"), columns, shift_rows(report, format_local_time)))
    totals = [_("Action:result"), _("Count")]
    out.print(table(_("Totals"), totals, list(report.totals.items())))
    if report.refusals:
        out.print(
            "[bold]"
            + _("{count} attempt(s) refused or failed").format(count=len(report.refusals))
            + "[/bold]: "
            + ", ".join(
                f"#{e.seq} {e.action} ({event_rule(e) or e.result})" for e in report.refusals
            )
        )
    out.print(
        _("Audit heads (keep this digest elsewhere): last event {seq}, digest {digest}").format(
            seq=report.chain_head_seq, digest=report.chain_head_hash
        )
    )
