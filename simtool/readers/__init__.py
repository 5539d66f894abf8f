"""Readers are backends chosen by name: one place maps a reader URL to a backend.

A reader URL is ``SCHEME:TARGET``:

==================  ===========================================================
``pcsc:NAME|INDEX``  a reader of the system's PC/SC service (pcscd); a bare
                     ``NAME`` or ``INDEX`` (no scheme) means this too
``lab:N``, ``lab:all``  slot N (or every slot) of the virtual lab's private pcscd
``virtual:PROFILE``  a virtual UICC served in this process (a profile name or a
                     JSON profile file); no pcscd, no lab; its state is kept
``replay:TRACE``     the answers recorded in a ``--trace`` file
``modem:PORT``       the SIM inside an LTE modem, through ``AT+CSIM``
==================  ===========================================================

As in python-can's interface registry, :data:`BACKENDS` maps each scheme to
the module and class that implement it, imported only when the scheme is
used; a plug-in package adds a scheme with an entry point in the group
``simtool.readers`` (``scheme = "package.module:BackendClass"``), looked up
only for a scheme that is not built in. So resolving a URL loads its own
backend and nothing else: ``virtual:`` never loads pyscard, and no URL loads
rich or SQLAlchemy.

The commands use :func:`open_reader` (through ``simtool.cardaccess.open_card``);
tools working on many readers at once (the bench) use :func:`expand_readers`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from apdu.errors import SimtoolError, UsageError
from simtool.readers.base import (
    DEFAULT_READER,
    OpenOptions,
    ReaderBackend,
    ReaderEntry,
    ReaderUrl,
)

if TYPE_CHECKING:
    from apdu.transport.base import CardTransport

__all__ = [
    "BACKENDS",
    "DEFAULT_READER",
    "ENTRY_POINT_GROUP",
    "OpenOptions",
    "ReaderBackend",
    "ReaderEntry",
    "ReaderUrl",
    "backend_for",
    "expand_readers",
    "known_schemes",
    "open_reader",
    "parse_reader_url",
    "resolve_single",
]

#: The entry point group a plug-in package registers its reader backends in.
ENTRY_POINT_GROUP = "simtool.readers"

#: scheme -> (module, class) of the built-in backends, imported on first use.
BACKENDS: dict[str, tuple[str, str]] = {
    "pcsc": ("simtool.readers.pcsc", "SystemPcscBackend"),
    "lab": ("simtool.readers.pcsc", "LabBackend"),
    "virtual": ("simtool.readers.virtual", "VirtualBackend"),
    "replay": ("simtool.readers.replay", "ReplayBackend"),
    "modem": ("simtool.readers.modem", "ModemBackend"),
}

# What looks like a URL scheme (RFC 3986 letters) before the first colon. A
# PC/SC reader name with such a prefix and a colon must be written pcsc:NAME.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(.*)", re.DOTALL)

_instances: dict[str, ReaderBackend] = {}
_plugins: dict[str, tuple[str, str]] | None = None


def _plugin_backends() -> dict[str, tuple[str, str]]:
    """scheme -> (module, class) from the ``simtool.readers`` entry points (read once)."""
    global _plugins  # noqa: PLW0603 - a per-process cache of installed plug-ins
    if _plugins is None:
        from importlib.metadata import entry_points

        found: dict[str, tuple[str, str]] = {}
        for point in entry_points(group=ENTRY_POINT_GROUP):
            module, _, attr = point.value.partition(":")
            found[point.name.lower()] = (module.strip(), attr.strip())
        _plugins = found
    return _plugins


def known_schemes() -> list[str]:
    """Every scheme a reader URL may use: the built-in ones and the plug-ins'."""
    return sorted(set(BACKENDS) | set(_plugin_backends()))


def _location(scheme: str) -> tuple[str, str] | None:
    if scheme in BACKENDS:
        return BACKENDS[scheme]
    return _plugin_backends().get(scheme)


def backend_for(scheme: str) -> ReaderBackend:
    """The backend serving ``scheme`` (imported and created on first use)."""
    scheme = scheme.lower()
    backend = _instances.get(scheme)
    if backend is not None:
        return backend
    location = _location(scheme)
    if location is None:
        raise UsageError(
            f"unknown reader scheme {scheme!r}; known: {', '.join(known_schemes())} "
            "(a PC/SC reader name with a colon is written pcsc:NAME)"
        )
    module_name, attr = location
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise UsageError(
            f"the reader backend for {scheme!r} ({module_name}:{attr}) cannot be loaded: {error}"
        ) from error
    if not (isinstance(cls, type) and issubclass(cls, ReaderBackend)):
        raise UsageError(f"{module_name}:{attr} (scheme {scheme!r}) is not a ReaderBackend")
    backend = cls()
    _instances[scheme] = backend
    return backend


def parse_reader_url(text: str) -> ReaderUrl:
    """``SCHEME:TARGET`` as a :class:`ReaderUrl`; a bare name or index is ``pcsc``.

    A prefix that looks like a scheme but is none (``lba:0``) is a usage
    error naming the known schemes, not a PC/SC name that matches nothing.
    """
    spec = text.strip()
    if not spec:
        raise UsageError("empty reader: give a reader URL such as lab:0 or virtual:default")
    match = _SCHEME.fullmatch(spec)
    if match is None:
        return ReaderUrl("pcsc", spec, bare=True)
    scheme, target = match.group(1).lower(), match.group(2)
    if _location(scheme) is None:
        raise UsageError(
            f"unknown reader scheme {scheme!r} in {spec!r}; known: {', '.join(known_schemes())} "
            "(a PC/SC reader name with a colon is written pcsc:NAME)"
        )
    if not target:
        raise UsageError(f"reader {spec!r} names no reader after '{scheme}:'")
    return ReaderUrl(scheme, target)


def expand_readers(spec: str) -> list[ReaderUrl]:
    """Every single reader ``spec`` names: ``lab:all`` is each lab slot, others themselves."""
    url = parse_reader_url(spec)
    return backend_for(url.scheme).expand(url)


def resolve_single(spec: str | None) -> ReaderUrl | None:
    """The one reader a single-card command was given (None: the default reader).

    A URL naming several readers (``lab:all``) is a usage error.
    """
    if spec is None:
        return None
    url = parse_reader_url(spec)
    backend = backend_for(url.scheme)
    if backend.names_many(url):
        try:
            count = f"{len(backend.expand(url))} readers"
        except SimtoolError:
            count = "several readers"
        raise UsageError(
            f"{spec} names {count}, and this command works on one card: give one reader "
            f"(for example {url.scheme}:0)"
        )
    return url


@contextmanager
def open_reader(
    spec: str | None,
    *,
    options: OpenOptions | None = None,
) -> Iterator[CardTransport]:
    """A connected transport to the card ``spec`` names; closed (trace flushed) on exit.

    ``spec`` None is the default reader: the only PC/SC reader holding a card.
    """
    opts = options or OpenOptions()
    url = resolve_single(spec) or DEFAULT_READER
    backend = backend_for(url.scheme)
    tracer = None
    if opts.trace_path:
        from apdu.transport.trace import Tracer  # only with --trace: start-up time counts

        tracer = Tracer.to_path(opts.trace_path)
    try:
        with backend.errors_explained():
            transport = backend.open(url, opts, tracer)
        try:
            with backend.errors_explained():
                transport.connect()
            yield transport
        finally:
            transport.disconnect()
    finally:
        if tracer is not None:
            tracer.close()
