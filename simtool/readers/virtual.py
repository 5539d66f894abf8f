"""``virtual:PROFILE``: a virtual UICC served in this process, no pcscd, no lab.

``PROFILE`` is a profile name (``default``, ``classic-sim``, ``blocked-pin``,
...) or a JSON profile file. The card is the lab's card model
(:class:`apdu.virtual.VirtualUicc`) behind :class:`InProcessTransport`.

Its non-volatile memory (PIN and PUK values and counters, enabled flags,
files written, the authentication SQN) is kept between processes like a lab
card's, in a state file per card under the user's state directory
(platformdirs: ``$XDG_STATE_HOME/simtool/virtual-cards/``, by default
``~/.local/state/simtool/virtual-cards/``), named after the profile. So two
wrong ``pin verify`` in one process leave one retry for ``pin status`` in the
next. Each process starts the card at power-on, as a real card after a
reset: no PIN verified, the MF selected. Delete the state file (or call
:func:`forget_virtual_card`) to get the card as its profile describes it.

One process at a time holds a virtual card (a lock file beside the state),
as one reader holds one card; another waits up to its deadline.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

from apdu.errors import ParseError, TransportError
from apdu.transport.base import DEFAULT_TIMEOUT
from apdu.transport.inprocess import InProcessTransport
from simtool.readers.base import OpenOptions, ReaderBackend, ReaderUrl

if TYPE_CHECKING:
    from apdu.transport.base import CardTransport
    from apdu.transport.trace import Tracer
    from apdu.virtual import CardProfile

_LOCK_POLL = 0.02


def virtual_state_dir() -> Path:
    """Where virtual cards keep their state (the user's state directory)."""
    import platformdirs

    return platformdirs.user_state_path("simtool") / "virtual-cards"


def _state_key(target: str) -> str:
    """A file name for the card ``target`` names: the profile name, or for a JSON
    file its stem and a hash of its absolute path (two files never share a card)."""
    text = target.strip()
    if text.endswith(".json") or os.sep in text:
        path = str(Path(text).expanduser().absolute())
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(text).stem) or "profile"
        return f"file-{stem}-{hashlib.sha256(path.encode()).hexdigest()[:12]}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def virtual_state_path(target: str) -> Path:
    """The state file of the virtual card ``virtual:TARGET``."""
    return virtual_state_dir() / f"{_state_key(target)}.json"


def forget_virtual_card(target: str) -> bool:
    """Delete the kept state of ``virtual:TARGET``; True if there was one."""
    path = virtual_state_path(target)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


class VirtualCardTransport(InProcessTransport):
    """A virtual UICC whose non-volatile state lives in ``state_path``.

    ``connect`` takes the card's lock, loads the state and powers the card
    on; ``disconnect`` powers it off and lets the lock go.
    """

    def __init__(
        self,
        profile: CardProfile,
        state_path: Path,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        tracer: Tracer | None = None,
        name: str = "virtual",
    ) -> None:
        super().__init__(None, timeout=timeout, tracer=tracer, name=name)
        self.profile = profile
        self.state_path = state_path
        self._lock: IO[bytes] | None = None

    def _connect(self) -> bytes:
        from apdu.virtual import VirtualUicc

        self._take_lock()
        try:
            if self.card is None:
                self.card = VirtualUicc(self.profile, state_path=self.state_path)
            atr = super()._connect()
            if getattr(self.profile, "mute", False):
                # A mute card (a lab fault profile) gives its ATR, then never
                # answers: the same here as behind vpcd.
                self.stall()
            return atr
        except ParseError as error:
            self._drop_lock()
            raise TransportError(
                f"{self.name}: the card's kept state {self.state_path} cannot be used ({error}); "
                "delete it to start the card again from its profile"
            ) from error
        except BaseException:
            self._drop_lock()
            raise

    def _disconnect(self) -> None:
        try:
            super()._disconnect()
        finally:
            self._drop_lock()

    def _take_lock(self) -> None:
        if self._lock is not None:
            return
        self.state_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.state_path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        handle = os.fdopen(fd, "r+b")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    raise TransportError(
                        f"{self.name}: the virtual card is in use by another process "
                        f"(waited {self.timeout:g} s)"
                    ) from None
                time.sleep(_LOCK_POLL)
        self._lock = handle

    def _drop_lock(self) -> None:
        if self._lock is not None:
            lock, self._lock = self._lock, None
            with contextlib.suppress(OSError):
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
            lock.close()


class VirtualBackend(ReaderBackend):
    """``virtual:PROFILE``: a virtual UICC in this process, state kept per profile."""

    scheme = "virtual"
    summary = "a virtual UICC in this process (profile name or JSON file); state is kept"
    target_help = "PROFILE"

    def open(self, url: ReaderUrl, options: OpenOptions, tracer: Tracer | None) -> CardTransport:
        from apdu.virtual import load_profile

        profile = load_profile(url.target)
        return VirtualCardTransport(
            profile,
            virtual_state_path(url.target),
            timeout=DEFAULT_TIMEOUT if options.timeout is None else options.timeout,
            tracer=tracer,
            name=str(url),
        )
