"""What a reader backend is: the class a scheme of the registry names.

Kept free of heavy imports (no pyscard, no rich): the registry imports this
module for every card command.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from apdu.transport.base import CardTransport
    from apdu.transport.trace import Tracer


@dataclass(frozen=True, slots=True)
class ReaderUrl:
    """One reader named by URL: ``scheme:target``.

    ``bare`` is True when the user gave only a PC/SC name or index, without
    ``pcsc:``: such a reader may be looked for in every PC/SC service that is
    up, and is refused when it could mean more than one. An empty ``target``
    (only for ``pcsc``) is the default reader: the only one holding a card.
    """

    scheme: str
    target: str
    bare: bool = False

    def __str__(self) -> str:
        if self.bare:
            return self.target or "(the reader with a card)"
        return f"{self.scheme}:{self.target}"


#: The reader of a command given no ``--reader``: the only PC/SC reader with a card.
DEFAULT_READER = ReaderUrl("pcsc", "", bare=True)


@dataclass(frozen=True, slots=True)
class OpenOptions:
    """How a command wants its card link: deadline, trace, modem dialect.

    ``timeout`` None leaves each backend its own default deadline (a modem's
    AT channel has a longer one than a PC/SC reader).
    """

    timeout: float | None = None
    trace_path: str | None = None
    dialect: str | None = None


@dataclass(frozen=True, slots=True)
class ReaderEntry:
    """One line of ``simtool readers``: a reader, its service and what is in it."""

    url: str
    service: str
    index: int
    reader: str
    card_present: bool
    atr: bytes | None


class ReaderBackend(ABC):
    """A kind of reader: opens a card transport for each URL of its scheme.

    A backend is created once per process, on the first use of its scheme.
    ``summary`` and ``target_help`` are for help texts and errors.
    """

    scheme: ClassVar[str]
    summary: ClassVar[str] = ""
    target_help: ClassVar[str] = "TARGET"

    @abstractmethod
    def open(self, url: ReaderUrl, options: OpenOptions, tracer: Tracer | None) -> CardTransport:
        """A transport to the card at ``url``, not yet connected.

        Raise :class:`apdu.errors.UsageError` for a malformed target and the
        transport errors (:class:`ReaderNotFoundError`, :class:`NoCardError`,
        ...) for a reader that is not there.
        """

    def names_many(self, url: ReaderUrl) -> bool:
        """Whether ``url`` names several readers (``lab:all``); False by default."""
        return False

    def expand(self, url: ReaderUrl) -> list[ReaderUrl]:
        """The single readers ``url`` names; by default itself."""
        return [url]

    def entries(self, url: ReaderUrl | None = None) -> list[ReaderEntry]:
        """What ``simtool readers`` shows for ``url`` (or for every reader, when None).

        The default opens the card to read its ATR, for a single URL only.
        """
        if url is None:
            return []
        from apdu.errors import NoCardError

        transport = self.open(url, OpenOptions(), None)
        try:
            atr: bytes | None = transport.connect()
        except NoCardError:
            atr = None
        finally:
            transport.disconnect()
        return [ReaderEntry(str(url), self.scheme, 0, str(url), atr is not None, atr or None)]

    @contextlib.contextmanager
    def errors_explained(self) -> Iterator[None]:
        """Wraps opening and connecting: a backend may add hints to errors here."""
        yield

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.scheme}:>"

    def describe(self) -> dict[str, Any]:
        """Scheme, summary and target syntax (for help and docs)."""
        return {"scheme": self.scheme, "summary": self.summary, "target": self.target_help}
