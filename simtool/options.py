"""Options shared by several commands, declared once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    """``--json``: machine-readable output on stdout."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def reader_option(func: F) -> F:
    """``--reader``: a reader by name, by index, or ``lab:N`` for lab slot N."""
    return click.option(
        "--reader",
        "-r",
        "reader",
        default=None,
        metavar="NAME|INDEX|lab:N",
        help="Reader name (or a unique part of it), index, or lab:N. Default: the only "
        "reader with a card.",
    )(func)


def trace_option(func: F) -> F:
    """``--trace FILE``: write the APDU exchange as JSON lines (secrets masked)."""
    return click.option(
        "--trace",
        "trace_path",
        type=click.Path(dir_okay=False, writable=True),
        default=None,
        help="Write every APDU exchanged as JSON lines to FILE (PINs and keys masked).",
    )(func)
