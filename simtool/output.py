"""Rendering for every command: JSON for scripts, rich tables for people.

Commands build plain data (dicts, lists, dataclasses) and hand it here, so the
JSON a script sees and the table a person sees come from the same facts.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # rich is imported when a table is drawn, not for JSON output: it is
    # most of a card command's start-up time.
    from rich.console import Console
    from rich.table import Table


def to_jsonable(value: Any) -> Any:
    """Turn dataclasses, enums, bytes, paths and datetimes into JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex().upper()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


_written: list[bool] = []


def emit_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout.

    An object gets ``"ok": true`` first unless it says otherwise (failures
    carry ``"ok": false``), so every command's success reads the same to a
    script. Commands hand an object, never a bare list (``readers`` prints
    ``{"ok": true, "readers": [...]}``): a list could not say ``ok``.
    """
    document = to_jsonable(value)
    if isinstance(document, dict) and "ok" not in document:
        document = {"ok": True, **document}
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    _written.append(True)


def json_written() -> bool:
    """True once this process printed a JSON document (stdout holds one document only)."""
    return bool(_written)


def console(stderr: bool = False) -> Console:
    """A rich console; plain text when stdout is not a terminal.

    Piped output gets a wide fixed width so that tables (ATRs, ICCIDs) are not
    cut to 80 columns in logs and ``grep``.
    """
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A rich table from column names and row values (None shows as '-')."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*("-" if v is None else str(v) for v in row))
    return t


def render(value: Any, as_json: bool, human: Callable[[Console], None]) -> None:
    """Print ``value`` as JSON, or call ``human`` with a console to draw it."""
    if as_json:
        emit_json(value)
    else:
        human(console())
