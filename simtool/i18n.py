"""Operator-facing text in Japanese and English, and times in the operator's zone.

The people at the benches read Japanese; the code and the logs speak English.
Every string an operator or technician reads (bench screen, diagnosis report)
is written in English in the code, wrapped in ``_()`` (or marked with ``N_()``
where it is only translated later), and looked up here in a gettext catalog.

Catalogs are plain ``.po`` files under ``simtool/locale/<lang>/``, one file per
area (``bench.po``, ``diagnose.po``, ...), all merged into one catalog per
language. They are read directly, with no compile step: an editable install and
a wheel behave the same, and no ``.mo`` build output is kept in the repository.
Babel extracts the messages (``pybabel extract -F babel.cfg``); a test checks
that every message the code marks has a Japanese translation.

Lower layers (``apdu``, ``modem``, ``provisioning``) return codes and data, not
sentences for people; the front ends turn them into words here.
"""

from __future__ import annotations

import ast
import functools
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apdu.errors import UsageError

LANGUAGES = ("ja", "en")
#: The operator's zone: the MVNO's warehouses are in Japan.
DEFAULT_TIMEZONE = "Asia/Tokyo"
ENV_LANG = "SIMTOOL_LANG"
ENV_TIMEZONE = "SIMTOOL_TZ"
LOCALE_DIR = Path(__file__).with_name("locale")

Translate = Callable[[str], str]


def N_(message: str) -> str:  # noqa: N802 - the gettext convention extractors know
    """Mark ``message`` for extraction without translating it now."""
    return message


def resolve_language(option: str | None = None) -> str:
    """The display language: ``--lang``, else ``SIMTOOL_LANG``, else the locale.

    The locale variables are read in POSIX order (``LC_ALL``, ``LC_MESSAGES``,
    ``LANG``); a Japanese locale (``ja_JP.UTF-8``) gives ``ja``, anything else
    ``en``.
    """
    for value in (option, os.environ.get(ENV_LANG)):
        if value:
            lang = value.strip().lower().replace("-", "_").split("_")[0]
            if lang not in LANGUAGES:
                raise UsageError(
                    f"unknown language {value!r}: choose one of {', '.join(LANGUAGES)}"
                )
            return lang
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if value:
            return "ja" if value.lower().startswith("ja") else "en"
    return "en"


def _unquote(text: str, where: str) -> str:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as error:
        raise ValueError(f"{where}: not a quoted PO string: {text!r}") from error
    if not isinstance(value, str):
        raise ValueError(f"{where}: not a quoted PO string: {text!r}")
    return value


def parse_po(text: str, source: str = "<po>") -> dict[str, str]:
    """The translated entries of a ``.po`` file: ``{msgid: msgstr}``.

    Handles what Babel and xgettext write: comments, ``msgctxt``-free entries,
    strings continued over several lines, and fuzzy entries (skipped, as
    gettext does). Untranslated entries (empty ``msgstr``) are left out, so the
    English text shows instead.
    """
    catalog: dict[str, str] = {}
    msgid: list[str] = []
    msgstr: list[str] = []
    current: list[str] | None = None
    fuzzy = False

    def flush() -> None:
        nonlocal fuzzy
        key, value = "".join(msgid), "".join(msgstr)
        if key and value and not fuzzy:
            catalog[key] = value
        msgid.clear()
        msgstr.clear()
        fuzzy = False

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{source}:{number}"
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("#,") and "fuzzy" in line:
                # The flag belongs to the entry that follows: close the one before.
                if msgid:
                    flush()
                fuzzy = True
            continue
        if line.startswith("msgid "):
            if msgid:
                flush()
            msgid.append(_unquote(line[6:], where))
            current = msgid
        elif line.startswith("msgstr "):
            msgstr.clear()
            msgstr.append(_unquote(line[7:], where))
            current = msgstr
        elif line.startswith('"') and current is not None:
            current.append(_unquote(line, where))
        else:
            raise ValueError(f"{where}: unexpected line in a PO file: {raw!r}")
    if msgid:
        flush()
    return catalog


def catalog_files(lang: str) -> Iterator[Path]:
    """The ``.po`` files that make up ``lang``'s catalog, in a stable order."""
    folder = LOCALE_DIR / lang
    if folder.is_dir():
        yield from sorted(folder.glob("*.po"))


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    """``lang``'s merged catalog (English has none: the code's text is English)."""
    merged: dict[str, str] = {}
    for path in catalog_files(lang):
        merged.update(parse_po(path.read_text(encoding="utf-8"), str(path.name)))
    return merged


def translator(lang: str | None = None) -> Translate:
    """A ``_()`` for ``lang`` (resolved with :func:`resolve_language` when None)."""
    entries = catalog(resolve_language(lang))
    return lambda message: entries.get(message, message)


def operator_timezone(name: str | None = None) -> ZoneInfo:
    """The zone times are shown in: ``name``, else ``SIMTOOL_TZ``, else Asia/Tokyo."""
    zone = name or os.environ.get(ENV_TIMEZONE) or DEFAULT_TIMEZONE
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise UsageError(f"unknown time zone {zone!r}") from error


def local_time(moment: datetime, zone: str | None = None) -> datetime:
    """``moment`` (stored in UTC; a naive value is taken as UTC) in the operator's zone."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(operator_timezone(zone))


def format_local_time(moment: datetime, zone: str | None = None) -> str:
    """``2026-12-02 20:15:03 JST``: what an operator reads on a screen or a report."""
    shown = local_time(moment, zone)
    return f"{shown:%Y-%m-%d %H:%M:%S} {shown.tzname()}"
