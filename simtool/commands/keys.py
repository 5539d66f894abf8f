"""``simtool keys``: the secrets key of the card data (status, rotation)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from provisioning.keys import key_status, rotate_key
from simtool.config import Settings, station_options
from simtool.options import json_option
from simtool.output import render


@click.group("keys")
def keys_group() -> None:
    """The key that seals every card's PINs, PUKs, ADM1, Ki and OPc."""


@keys_group.command("status")
@station_options
@json_option
def status_command(settings: Settings, as_json: bool) -> None:
    """Which key this station has and which the database needs (key ids, never keys)."""
    status = key_status(settings.database(), settings.keyring())

    def human(console: Console) -> None:
        console.print(f"key source:        {status.source}")
        console.print(f"station key id:    {status.key_id or 'none'}")
        console.print(f"database key id:   {status.database_key_id or 'none (no secrets yet)'}")
        console.print("match" if status.matches else "[bold]MISMATCH[/bold]")

    render(status, as_json, human)


@keys_group.command("rotate")
@click.option(
    "--new-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the new key when the current one comes from SIMTOOL_KEY.",
)
@station_options
@json_option
def rotate_command(settings: Settings, new_key_file: Path | None, as_json: bool) -> None:
    """Re-seal every card's secrets under a new key, in one transaction."""
    rotation = rotate_key(
        settings.database(), settings.keyring(), settings.actor(), new_key_file=new_key_file
    )
    render(
        rotation,
        as_json,
        lambda c: c.print(
            f"re-sealed {rotation.cards} cards: key {rotation.old_key_id} -> "
            f"{rotation.new_key_id}; the key is in {rotation.key_file}"
        ),
    )
