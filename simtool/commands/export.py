"""``simtool export``: lists that leave the station."""

from __future__ import annotations

import click
from rich.console import Console

from provisioning.exports import export_imei_list
from simtool.config import Settings, station_options
from simtool.options import json_option
from simtool.output import render, table


@click.group("export")
def export_group() -> None:
    """Lists for customers and the operator."""


@export_group.command("imei-list")
@click.option("--customer", required=True, help="The customer's mioID (MA...).")
@station_options
@json_option
def imei_list_command(settings: Settings, customer: str, as_json: bool) -> None:
    """The bundled-device list: the customer's service codes and device IMEIs, each
    sorted on its own, with nothing that pairs a card with a device (§11-2-4)."""
    listing = export_imei_list(settings.database(), settings.actor(), customer)

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
