"""``simtool stock``: import the card vendor's data files, list the batches."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console

from provisioning.lifecycle import FormFactor, NetworkType
from provisioning.stock import import_stock, list_batches
from simtool.config import Settings, station_options
from simtool.i18n import format_local_time
from simtool.options import json_option
from simtool.output import console, render, table


@click.group("stock")
def stock_group() -> None:
    """Card stock: vendor data files in, batches and their cards' states out."""


@contextmanager
def _progress_bar(file: Path) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal (a person waits); else nothing."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        "[progress.percentage]{task.percentage:>3.0f}%",
        TimeRemainingColumn(),
        console=console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(f"importing {file.name}", total=max(file.stat().st_size, 1))

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, 1))

        yield advance


@stock_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--form-factor",
    type=click.Choice([f.value for f in FormFactor]),
    default=None,
    help="Form factor of every card (when the file has no FORM_FACTOR column).",
)
@click.option(
    "--type",
    "network_type",
    type=click.Choice([t.value for t in NetworkType]),
    default=NetworkType.D.value,
    show_default=True,
    help="Network type of the cards.",
)
@click.option("--batch", default=None, help="Batch name (default: file name + content hash).")
@station_options
@json_option
def import_command(
    settings: Settings,
    file: Path,
    form_factor: str | None,
    network_type: str,
    batch: str | None,
    as_json: bool,
) -> None:
    """Import a stock file (CSV with a header, or the vendor's output file): all or nothing.

    Every bad row is named with its line, field and reason, and nothing is
    imported. Importing the same file again changes nothing.
    """
    database, keyring, actor = settings.database(), settings.keyring(), settings.actor()
    with _progress_bar(file) as progress:
        result = import_stock(
            database,
            keyring,
            actor,
            file,
            network_type=NetworkType(network_type),
            form_factor=FormFactor(form_factor) if form_factor else None,
            batch=batch,
            progress=progress,
        )

    def human(console: Console) -> None:
        if result.already_imported:
            console.print(
                f"{file} was imported before as batch {result.batch} "
                f"({result.cards} cards); nothing changed"
            )
            return
        kinds = ", ".join(f"{n} {ff}" for ff, n in sorted(result.form_factors.items()))
        console.print(
            f"imported {result.cards} type {result.network_type} cards ({kinds}) as "
            f"batch {result.batch} in {result.seconds:.1f} s"
        )
        if result.ignored_columns:
            console.print(f"columns not kept: {', '.join(result.ignored_columns)}")

    render(result, as_json, human)


@stock_group.command("list")
@station_options
@json_option
def list_command(settings: Settings, as_json: bool) -> None:
    """Stock batches, with their cards counted by state."""
    batches = list_batches(settings.database())
    render(
        # An object, not a bare list: every --json success carries "ok": true.
        {"batches": batches},
        as_json,
        lambda console: console.print(
            table(
                "stock batches",
                ["batch", "imported", "type", "cards", "states", "by"],
                [
                    [
                        b.name,
                        format_local_time(b.imported_at),
                        b.network_type,
                        b.cards,
                        ", ".join(f"{state} {n}" for state, n in sorted(b.states.items())),
                        f"{b.operator}@{b.station}",
                    ]
                    for b in batches
                ],
            )
        ),
    )
