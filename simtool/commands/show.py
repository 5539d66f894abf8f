"""``simtool show``: a card's or a line's state and history."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import click

from apdu.errors import UsageError
from simtool.config import Settings, station_options
from simtool.options import json_option, reader_option
from simtool.output import emit_json, render, table, to_jsonable

if TYPE_CHECKING:  # the ORM is imported only when the fast path cannot answer
    from rich.console import Console

    from provisioning.records import BindingEntry, HistoryEntry


@click.group("show")
def show_group() -> None:
    """What the line database knows about a card or a line."""


def _bindings_table(title: str, bindings: tuple[BindingEntry, ...]) -> object:
    from simtool.i18n import format_local_time

    return table(
        title,
        ["line", "card", "reason", "fee", "from", "until"],
        [
            [
                b.service_code,
                b.iccid,
                b.reason,
                b.fee,
                format_local_time(b.bound_at),
                format_local_time(b.unbound_at) if b.unbound_at else "now",
            ]
            for b in bindings
        ],
    )


def _history_table(history: tuple[HistoryEntry, ...]) -> object:
    from simtool.i18n import format_local_time

    return table(
        "history",
        ["#", "at", "action", "result", "card", "line", "by"],
        [
            [
                e.seq,
                format_local_time(e.at),
                e.action,
                e.result,
                e.iccid,
                e.service_code,
                f"{e.operator}@{e.station}",
            ]
            for e in history
        ],
    )


@show_group.command("card")
@click.argument("card", required=False, metavar="[ICCID|IMSI]")
@reader_option
@click.option(
    "--reveal",
    type=click.Choice(["puk1", "puk2"]),
    default=None,
    help="Show this PUK (for a technician; the reveal is audited).",
)
@station_options
@json_option
def card_command(
    settings: Settings, card: str | None, reader: str | None, reveal: str | None, as_json: bool
) -> None:
    """A card by ICCID or IMSI, or the card in a reader: vendor facts, state, line, history."""
    if (card is None) == (reader is None):
        raise UsageError("name the card by its ICCID or IMSI, or give --reader (one of them)")
    if as_json and reveal is None and card is not None and _fast_show_card(settings, card):
        return
    from provisioning.records import RevealableSecret, reveal_secret, show_card

    database = settings.database()
    if card is None:
        from apdu.card import read_iccid
        from simtool.cardaccess import open_card

        with open_card(reader) as transport:
            card = read_iccid(transport)
    record = show_card(database, card)
    revealed = None
    if reveal is not None:
        revealed = reveal_secret(
            database,
            settings.keyring(),
            settings.actor(),
            record.iccid,
            cast(RevealableSecret, reveal),
        )

    def human(console: Console) -> None:
        from simtool.i18n import format_local_time

        console.print(
            f"card {record.iccid}  IMSI {record.imsi}  {record.form_factor}  type "
            f"{record.network_type}  batch {record.batch}"
        )
        console.print(
            f"state: [bold]{record.state}[/bold] since "
            f"{format_local_time(record.state_changed_at)}"
            f"{'  NEVER REUSE' if record.never_reuse else ''}"
        )
        line_state = f" ([bold]{record.line_state}[/bold])" if record.line_state else ""
        console.print(
            f"line: {record.service_code or '-'}{line_state}  usage {record.usage_mb} MB  "
            f"quota {record.quota_mb} MB"
        )
        if revealed is not None:
            console.print(f"{reveal}: {revealed}")
        if record.bindings:
            console.print(_bindings_table("lines", record.bindings))
        if record.history:
            console.print(_history_table(record.history))

    revealed_json = {} if revealed is None else {str(reveal): revealed}
    render({**to_jsonable(record), **revealed_json}, as_json, human)


def _fast_show_card(settings: Settings, card: str) -> bool:
    """``show card --json`` on a SQLite file without the ORM; False: take the ORM path."""
    from provisioning.fastread import show_card_json, sqlite_path
    from provisioning.identifiers import IMSI_LENGTH, parse_iccid, parse_imsi

    path = sqlite_path(settings.db)
    if path is None:
        return False
    value = card.strip()
    kind = "imsi" if len(value) == IMSI_LENGTH else "iccid"
    parsed = parse_imsi(value) if kind == "imsi" else parse_iccid(value)
    emit_json(show_card_json(path, kind, parsed))
    return True


@show_group.command("line")
@click.argument("line", metavar="SERVICE_CODE|PHONE")
@station_options
@json_option
def line_command(settings: Settings, line: str, as_json: bool) -> None:
    """A line by service code or phone number (070-1234-5678 or 07012345678): contract
    facts, state, current card, card history, devices, history."""
    from provisioning.records import show_line

    record = show_line(settings.database(), line)

    def human(console: Console) -> None:
        console.print(
            f"line {record.service_code}  {record.msisdn or '-'}  customer "
            f"{record.customer}  type {record.network_type} {record.function_class}"
            f"  identity {'verified' if record.identity_verified else 'not verified'}"
        )
        console.print(
            f"state: [bold]{record.state}[/bold]  card: "
            f"{record.current_iccid or '-'} ({record.current_card_state or '-'})"
        )
        if record.contract_type:
            deadline = record.type_i_deadline
            console.print(
                f"type I: {record.contract_type}, {record.activation_trigger}; "
                f"{'valid' if record.type_i_valid else 'INVALID'}"
                f"{f' (activate by {deadline})' if deadline else ''}"
            )
        if record.cards:
            console.print(_bindings_table("cards", record.cards))
        if record.devices:
            console.print(
                table(
                    "devices",
                    ["IMEI", "maker", "model", "firmware", "APN"],
                    [[d.imei, d.maker, d.model, d.firmware, d.apn_profile] for d in record.devices],
                )
            )
        console.print(_history_table(record.history))

    render(record, as_json, human)
