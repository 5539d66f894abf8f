"""``simtool db``: create, upgrade and check the line database's schema."""

from __future__ import annotations

import click
from rich.console import Console

from provisioning.database import Database, SchemaStatus
from simtool.config import Settings, station_options
from simtool.options import json_option
from simtool.output import render


@click.group("db")
def db_group() -> None:
    """The line database: create it, upgrade its schema, show where it stands."""


def _show(status: SchemaStatus, as_json: bool) -> None:
    def human(console: Console) -> None:
        console.print(f"database: {status.url} ({status.dialect})")
        console.print(
            f"schema:   {status.current or 'none (not initialised)'}"
            f"{'' if status.is_current else f' -> {status.head} available'}"
        )
        if status.pending:
            console.print(f"pending:  {', '.join(status.pending)}")

    render({**status.__dict__, "is_current": status.is_current}, as_json, human)


@db_group.command("init")
@station_options
@json_option
def init_command(settings: Settings, as_json: bool) -> None:
    """Create the schema in an empty database (harmless on an initialised one)."""
    _show(Database(settings.db).init(), as_json)


@db_group.command("upgrade")
@station_options
@json_option
def upgrade_command(settings: Settings, as_json: bool) -> None:
    """Apply the pending schema migrations, in one transaction."""
    _show(Database(settings.db).upgrade(), as_json)


@db_group.command("status")
@station_options
@json_option
def status_command(settings: Settings, as_json: bool) -> None:
    """The database's schema revision and what is pending."""
    _show(Database(settings.db).status(), as_json)
