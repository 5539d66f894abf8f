"""PC/SC readers: ``pcsc:`` (the system's pcscd) and ``lab:`` (the lab's private pcscd).

A station can have two PC/SC services up at once: the system's pcscd with its
physical readers and the lab's pcscd with virtual ones. Both number their
readers from 0, so a bare ``--reader 0`` could mean either; this module makes
sure it never silently reaches a service the user did not mean:

- ``pcsc:X`` is the system's service, ``lab:N`` the lab's, always;
- ``PCSCLITE_CSOCK_NAME`` set in the environment pins the service for bare
  readers (``simtool lab up`` tells people to export it): no guessing;
- otherwise, with one service up a bare reader is in that one, and with both
  up a bare index is refused (exit 64) with the choice spelled out, while a
  bare name, or no ``--reader``, is looked for in both and must be unique.

libpcsclite reads ``PCSCLITE_CSOCK_NAME`` once per process, on its first call,
and keeps talking to that socket: one process can use one PC/SC service only
(:func:`apdu.transport.pcsc.use_pcsc_socket` refuses to switch). To look at a
service this process is not tied to, without tying it, the reader list of
that service comes from a short subprocess (``python -m
simtool.readers.pcsc_list``, about a tenth of a second) run with the variable
set to that service's socket. Only the listing needs it; the card itself is
always used in this process, once the service is decided.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from apdu.errors import (
    NoCardError,
    ReaderNotFoundError,
    ServiceUnavailableError,
    TransportError,
    UsageError,
)
from apdu.transport.pcsc import (
    DEFAULT_PCSC_SOCKET,
    SCARD_E_NO_SERVICE,
    SOCKET_ENV,
    PcscTransport,
    ReaderState,
    bound_pcsc_socket,
    use_pcsc_socket,
)
from simtool.readers.base import OpenOptions, ReaderBackend, ReaderEntry, ReaderUrl
from simtool.readers.labstate import lab_reader

if TYPE_CHECKING:
    import subprocess

    from apdu.lab import Lab
    from apdu.transport.base import CardTransport
    from apdu.transport.trace import Tracer

#: How long listing another service's readers in a subprocess may take.
LIST_TIMEOUT = 20.0
_PROBE_TIMEOUT = 0.5


@dataclass(frozen=True)
class PcscService:
    """One pcscd: ``kind`` "system" or "lab", its socket, and the lab when it is one."""

    kind: str
    socket: str
    lab: Lab | None = None

    @property
    def label(self) -> str:
        """How ``readers`` names the service."""
        return "lab" if self.kind == "lab" else "system"

    def url(self, index: int, name: str) -> str:
        """The explicit URL of reader ``name`` (number ``index`` in this service)."""
        if self.lab is not None:
            try:
                return f"lab:{self.lab.slot_of(name)}"
            except UsageError:
                pass
        return f"{'lab' if self.kind == 'lab' else 'pcsc'}:{index}"


# --- which services exist ---------------------------------------------------------------


def _running_lab() -> Lab | None:
    from apdu.lab import Lab, LabError

    try:
        return Lab.find()
    except LabError:
        return None


def _is_lab_socket(path: str) -> bool:
    from apdu.lab import is_lab_socket

    return is_lab_socket(path)


def system_service() -> PcscService:
    """The system's pcscd: ``PCSCLITE_CSOCK_NAME`` when it names no lab, else the default."""
    chosen = os.environ.get(SOCKET_ENV)
    if chosen and not _is_lab_socket(chosen):
        return PcscService("system", chosen)
    return PcscService("system", DEFAULT_PCSC_SOCKET)


def lab_service(lab: Lab | None = None) -> PcscService | None:
    """The running lab's pcscd, or None when no lab runs."""
    lab = lab or _running_lab()
    return None if lab is None else PcscService("lab", str(lab.pcsc_socket), lab)


def pinned_service() -> PcscService | None:
    """The service ``PCSCLITE_CSOCK_NAME`` chooses, when the environment sets it."""
    chosen = os.environ.get(SOCKET_ENV)
    if not chosen:
        return None
    lab = _running_lab()
    if lab is not None and os.path.abspath(chosen) == os.path.abspath(lab.pcsc_socket):
        return PcscService("lab", chosen, lab)
    return PcscService("lab" if _is_lab_socket(chosen) else "system", chosen)


def socket_answers(path: str) -> bool:
    """Whether a pcscd accepts connections on ``path`` (no PC/SC library involved)."""
    import socket  # here: opening a lab reader needs neither socket nor subprocess

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(_PROBE_TIMEOUT)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


def services_up() -> list[PcscService]:
    """The PC/SC services a bare reader could mean, system first."""
    pinned = pinned_service()
    if pinned is not None:
        return [pinned]
    found = []
    system = system_service()
    if socket_answers(system.socket):
        found.append(system)
    lab = lab_service()
    if lab is not None:
        found.append(lab)
    return found


# --- listing readers ----------------------------------------------------------------------


def _bind(service: PcscService) -> None:
    use_pcsc_socket(service.socket)


def _in_process(service: PcscService) -> list[ReaderState]:
    from apdu.transport.pcsc import reader_states

    _bind(service)
    with pcsc_hints():
        return reader_states()


def _start_listing(service: PcscService) -> subprocess.Popen[str]:
    # A separate process, because this one may only ever use one pcscd (see
    # the module documentation).
    import subprocess

    return subprocess.Popen(
        [sys.executable, "-m", "simtool.readers.pcsc_list"],
        env={**os.environ, SOCKET_ENV: service.socket},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish_listing(service: PcscService, process: subprocess.Popen[str]) -> list[ReaderState]:
    import subprocess

    try:
        out, err = process.communicate(timeout=LIST_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise TransportError(
            f"listing the readers of the {service.label} PC/SC service ({service.socket}) "
            f"took more than {LIST_TIMEOUT:g} s"
        ) from None
    try:
        answer = json.loads(out)
    except json.JSONDecodeError:
        raise TransportError(
            f"cannot list the readers of the {service.label} PC/SC service ({service.socket}): "
            f"{err.strip() or out.strip() or process.returncode}"
        ) from None
    if "error" in answer:
        error = TransportError(answer["error"])
        error.pcsc_code = answer.get("pcsc_code")  # type: ignore[attr-defined]
        raise error
    return [
        ReaderState(
            name=r["name"],
            card_present=r["card_present"],
            atr=bytes.fromhex(r["atr"]) if r["atr"] else None,
            in_use=r["in_use"],
        )
        for r in answer["readers"]
    ]


def list_services(
    services: list[PcscService], *, may_bind: bool
) -> list[tuple[PcscService, list[ReaderState]]]:
    """The readers of each service: in this process for the service it is tied to
    (or, with ``may_bind``, the first one when it is tied to none), in a
    subprocess for the others (run side by side)."""
    local: PcscService | None = None
    bound = bound_pcsc_socket()
    for service in services:
        if bound == service.socket or (bound is None and may_bind):
            local = service
            break
    running = {
        service.socket: _start_listing(service) for service in services if service is not local
    }
    results: dict[str, list[ReaderState]] = {}
    try:
        if local is not None:
            results[local.socket] = _in_process(local)
        for service in services:
            if service is not local:
                results[service.socket] = _finish_listing(service, running.pop(service.socket))
    finally:
        for process in running.values():
            process.kill()
            process.communicate()
    return [(service, results[service.socket]) for service in services]


def _entries(service: PcscService, states: list[ReaderState]) -> list[ReaderEntry]:
    return [
        ReaderEntry(
            url=service.url(index, state.name),
            service=service.label,
            index=index,
            reader=state.name,
            card_present=state.card_present,
            atr=state.atr,
        )
        for index, state in enumerate(states)
    ]


# --- errors ---------------------------------------------------------------------------------


@contextlib.contextmanager
def pcsc_hints() -> Iterator[None]:
    """Add what the station knows to "pcscd is not running": usually a stopped lab."""
    try:
        yield
    except TransportError as error:
        socket_path = bound_pcsc_socket() or os.environ.get(SOCKET_ENV)
        if getattr(error, "pcsc_code", None) != SCARD_E_NO_SERVICE or not socket_path:
            raise
        from apdu.lab import explain_missing_service

        hint = explain_missing_service(socket_path)
        if hint is None:
            raise
        raise TransportError(f"{error}; {hint}") from error


# --- choosing a reader ------------------------------------------------------------------------


def _choices(candidates: list[tuple[PcscService, int, str]], last: str = "or") -> str:
    """``pcsc:0 (NAME), lab:0 (NAME) or lab:1 (NAME)``."""
    items = [f"{service.url(index, name)} ({name})" for service, index, name in candidates]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def _matches(target: str, states: list[ReaderState]) -> list[int]:
    names = [s.name for s in states]
    if target in names:
        return [names.index(target)]
    return [i for i, name in enumerate(names) if target.lower() in name.lower()]


def _resolve_in(service: PcscService, target: str) -> str:
    """The reader name for ``target`` (index, name, part of a name, or "" for the
    only reader with a card) in ``service``, which this process gets tied to."""
    from apdu.transport.pcsc import resolve_reader

    _bind(service)
    with pcsc_hints():
        return resolve_reader(target or None)


def _resolve_across(services: list[PcscService], url: ReaderUrl) -> tuple[PcscService, str]:
    """A bare reader when several services are up: unique across them, or refused."""
    target = url.target
    if target.isdigit():
        listed = list_services(services, may_bind=False)
        index = int(target)
        candidates = [
            (service, index, states[index].name)
            for service, states in listed
            if index < len(states)
        ]
        where = " and ".join(f"the {s.label} PC/SC service" for s in services)
        raise UsageError(
            f"reader {target} is ambiguous: {where} are both up and number their readers "
            f"from 0; choose "
            + (_choices(candidates) if candidates else "pcsc:N or lab:N (see 'simtool readers')")
        )
    listed = list_services(services, may_bind=False)
    if not target:
        found = [
            (service, i, state.name)
            for service, states in listed
            for i, state in enumerate(states)
            if state.card_present
        ]
        if not found:
            raise NoCardError(
                "no reader holds a card in "
                + " or ".join(f"the {s.label} PC/SC service" for s in services)
            )
        if len(found) > 1:
            raise ReaderNotFoundError(
                "several readers hold a card; choose one with --reader: " + _choices(found)
            )
    else:
        found = [
            (service, i, states[i].name)
            for service, states in listed
            for i in _matches(target, states)
        ]
        if not found:
            every = [(s, i, st.name) for s, states in listed for i, st in enumerate(states)]
            raise ReaderNotFoundError(
                f"no reader matches {target!r}; readers: {_choices(every, 'and') or 'none'}"
            )
        if len(found) > 1:
            raise UsageError(f"reader {target!r} is ambiguous; choose " + _choices(found))
    service, _index, name = found[0]
    _bind(service)
    return service, name


def resolve_pcsc(url: ReaderUrl) -> tuple[PcscService, str]:
    """The service and PC/SC reader name of a ``pcsc:`` or bare URL; ties this process
    to that service."""
    if not url.bare:
        service = system_service()
        return service, _resolve_in(service, url.target)
    services = services_up()
    if len(services) <= 1:
        service = services[0] if services else system_service()
        return service, _resolve_in(service, url.target)
    return _resolve_across(services, url)


def _slot_number(url: ReaderUrl) -> int:
    try:
        return int(url.target)
    except ValueError:
        raise UsageError(f"bad lab reader {str(url)!r}: use lab:SLOT or lab:all") from None


def _lab_or_fail() -> Lab:
    lab = _running_lab()
    if lab is None:
        raise ServiceUnavailableError("no lab is running; start one with 'simtool lab up'")
    return lab


def pcsc_reader_name(url: ReaderUrl) -> str:
    """The PC/SC reader name of a ``pcsc:``, bare or single ``lab:`` URL, with this
    process tied to its service (for tools that watch readers, like the bench)."""
    if url.scheme == "lab":
        lab = _lab_or_fail()
        name = lab.reader_name(_slot_number(url))
        use_pcsc_socket(lab.pcsc_socket)
        return name
    if url.scheme != "pcsc":
        raise UsageError(f"{url} is not a PC/SC reader")
    return resolve_pcsc(url)[1]


# --- the backends -------------------------------------------------------------------------------


class SystemPcscBackend(ReaderBackend):
    """``pcsc:NAME|INDEX``: a reader of the system's PC/SC service (bare readers too)."""

    scheme = "pcsc"
    summary = "a reader of the system's PC/SC service (pcscd); a bare name or index too"
    target_help = "NAME|INDEX"

    def open(self, url: ReaderUrl, options: OpenOptions, tracer: Tracer | None) -> CardTransport:
        _service, name = resolve_pcsc(url)
        if options.timeout is None:
            return PcscTransport(name, tracer=tracer)
        return PcscTransport(name, timeout=options.timeout, tracer=tracer)

    def entries(self, url: ReaderUrl | None = None) -> list[ReaderEntry]:
        """Every reader of every service up (None), or the one ``url`` names."""
        if url is None:
            services = services_up() or [system_service()]
            return [
                entry
                for service, states in list_services(services, may_bind=True)
                for entry in _entries(service, states)
            ]
        service, name = resolve_pcsc(url)
        listed = _entries(service, _in_process(service))
        return [entry for entry in listed if entry.reader == name]

    @contextlib.contextmanager
    def errors_explained(self) -> Iterator[None]:
        with pcsc_hints():
            yield


class LabBackend(ReaderBackend):
    """``lab:N`` / ``lab:all``: slots of the virtual lab (its private pcscd)."""

    scheme = "lab"
    summary = "slot N of the virtual lab (real pcscd + vpcd); lab:all is every slot"
    target_help = "N|all"

    def names_many(self, url: ReaderUrl) -> bool:
        return url.target == "all"

    def expand(self, url: ReaderUrl) -> list[ReaderUrl]:
        if url.target != "all":
            _slot_number(url)
            return [url]
        return [ReaderUrl("lab", str(info.slot)) for info in _lab_or_fail().slots]

    def open(self, url: ReaderUrl, options: OpenOptions, tracer: Tracer | None) -> CardTransport:
        slot = _slot_number(url)
        # The lab's state file answers the plain case without importing the
        # lab package (most of a card command's start-up); Lab explains the rest.
        found = lab_reader(slot)
        if found is None:
            lab = _lab_or_fail()
            found = lab.reader_name(slot), str(lab.pcsc_socket)
        name, pcsc_socket = found
        use_pcsc_socket(pcsc_socket)
        if options.timeout is None:
            return PcscTransport(name, tracer=tracer)
        return PcscTransport(name, timeout=options.timeout, tracer=tracer)

    def entries(self, url: ReaderUrl | None = None) -> list[ReaderEntry]:
        lab = _lab_or_fail()
        service = PcscService("lab", str(lab.pcsc_socket), lab)
        wanted = {str(u) for u in self.expand(url or ReaderUrl("lab", "all"))}
        [(_, states)] = list_services([service], may_bind=True)
        return [entry for entry in _entries(service, states) if entry.url in wanted]

    @contextlib.contextmanager
    def errors_explained(self) -> Iterator[None]:
        with pcsc_hints():
            yield
