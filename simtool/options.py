"""Options shared by several commands, declared once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    """``--json``: machine-readable output on stdout."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


#: What ``--reader`` accepts, for help texts (the registry in simtool.readers).
READER_HELP = (
    "Reader URL: pcsc:NAME|INDEX (the system's PC/SC service; a bare name or index "
    "too), lab:N (lab slot N), virtual:PROFILE (an in-process virtual card: a profile "
    "name or JSON file), replay:TRACE.jsonl (answers from a --trace file), modem:PORT "
    "(the SIM in a modem, AT+CSIM). Default: the only reader with a card."
)


def reader_option(func: F) -> F:
    """``--reader URL``: one reader, resolved by :mod:`simtool.readers` when used."""
    return click.option(
        "--reader",
        "-r",
        "reader",
        default=None,
        metavar="URL",
        help=READER_HELP,
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
