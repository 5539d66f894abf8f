"""``simtool export``: lists that leave the station."""

from __future__ import annotations

import csv
import sys

import click
from rich.console import Console

from apdu.errors import UsageError
from provisioning.exports import IMEI_CSV_COLUMNS, export_imei_list, imei_rows
from simtool.config import Settings, station_options
from simtool.options import json_option
from simtool.output import render, table


@click.group("export")
def export_group() -> None:
    """Lists for customers and the operator."""


@export_group.command("imei-list")
@click.option("--customer", required=True, help="The customer's mioID (MA...).")
@click.option(
    "--csv", "as_csv", is_flag=True, help="CSV: one value per row (service codes, then IMEIs)."
)
@station_options
@json_option
def imei_list_command(settings: Settings, customer: str, as_csv: bool, as_json: bool) -> None:
    """The bundled-device list: the customer's service codes and device IMEIs, each
    sorted on its own, with nothing that pairs a card with a device (§11-2-4)."""
    if as_csv and as_json:
        raise UsageError("give --csv or --json, not both")
    listing = export_imei_list(settings.database(), settings.actor(), customer)
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(IMEI_CSV_COLUMNS)
        writer.writerows(imei_rows(listing))
        return

    def human(console: Console) -> None:
        # Two separate tables: rows side by side would read as pairs.
        console.print(
            table(
                f"service codes of {listing.customer}",
                ["service code"],
                [[code] for code in listing.service_codes],
            )
        )
        console.print(
            table(
                f"device IMEIs of {listing.customer}", ["IMEI"], [[imei] for imei in listing.imeis]
            )
        )

    render(listing, as_json, human)
