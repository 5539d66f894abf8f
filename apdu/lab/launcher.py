"""Starting, finding, driving and stopping a lab: the API behind ``simtool lab``.

>>> lab = Lab.up(cards=8, slots=16)          # doctest: +SKIP
>>> os.environ.update(lab.pcsc_environment())  # before the first pyscard use
>>> lab.reader_name(0), lab.remove(0), lab.insert(0)
>>> lab.down()

The lab runs a private pcscd (see :mod:`apdu.lab.server`); a process
reaches it by setting ``PCSCLITE_CSOCK_NAME`` to :attr:`Lab.pcsc_socket`
before libpcsclite is first used. A system pcscd serving real readers is
never stopped, replaced or reconfigured.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from apdu.errors import ParseError, SimtoolError, UsageError
from apdu.lab import control
from apdu.lab.cards import ProfileSource, lab_card_profiles, resolve_profile
from apdu.lab.errors import (
    LabConflictError,
    LabError,
    LabNotRunningError,
    LabPermissionError,
    LabStartError,
)
from apdu.lab.layout import (
    BASE_PORT,
    MAX_SLOTS,
    PCSC_SOCKET_ENV,
    PCSCD_RUN_DIR,
    SLOTS_PER_UNIT,
    VPCD_DRIVER,
    LabLayout,
    default_labdir,
    reader_conf_text,
    unit_count,
)
from apdu.lab.processes import (
    find_system_pcscd,
    find_tool,
    is_lab_process,
    mount_namespace,
    stop_process,
    wait_gone,
)
from apdu.lab.state import LabConfig, LabState, SlotInfo, read_state, write_json_atomically
from apdu.virtual import CardProfile, lab_profile, load_profile, save_profile

SERVER_MODULE = "apdu.lab.server"
DEFAULT_READY_TIMEOUT = 20.0
_LOG_TAIL_LINES = 15


def _log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _namespace_command() -> list[str]:
    """unshare with the namespaces the lab needs, for this user."""
    command = [find_tool("unshare"), "--mount", "--net", "--propagation", "private"]
    if os.geteuid() == 0:
        return command
    # Without root, a user namespace maps us to root inside it. The mapped root
    # cannot create /run/pcscd on the real /run, so that directory must exist.
    if not PCSCD_RUN_DIR.is_dir():
        raise LabPermissionError(
            f"the lab needs root, or (as a normal user) user namespaces and an existing "
            f"{PCSCD_RUN_DIR} directory; {PCSCD_RUN_DIR} does not exist. Run `simtool lab up` "
            f"as root, or create {PCSCD_RUN_DIR} once as root"
        )
    probe = subprocess.run(
        [*command, "--user", "--map-root-user", "true"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        raise LabPermissionError(
            "the lab needs root, or user namespaces for this user, to run its private pcscd; "
            f"unshare --user failed: {probe.stderr.strip() or probe.returncode}"
        )
    return [*command, "--user", "--map-root-user"]


class Lab:
    """A running virtual lab in a lab directory.

    ``started`` tells whether this call of :meth:`up` started it (False when
    it was already up with what was asked; meaningless for a lab found by
    :meth:`find`); ``notes`` are remarks for the operator (a system pcscd
    found, ...).
    """

    def __init__(
        self,
        layout: LabLayout,
        state: LabState,
        *,
        started: bool = False,
        notes: Sequence[str] = (),
    ) -> None:
        self.layout = layout
        self._state = state
        self.started = started
        self.notes = tuple(notes) or state.notes

    def __repr__(self) -> str:
        return f"Lab({str(self.layout.root)!r}, slots={len(self._state.slots)})"

    # --- finding and starting ------------------------------------------------------------

    @classmethod
    def find(cls, labdir: Path | str | None = None) -> Lab | None:
        """The lab running in ``labdir`` (default: :func:`default_labdir`), or None."""
        layout = LabLayout(Path(labdir).absolute() if labdir is not None else default_labdir())
        try:
            state = read_state(layout.state_file)
        except ParseError:
            return None
        if state is None or state.phase != "ready":
            return None
        if not is_lab_process(state.supervisor_pid, SERVER_MODULE):
            return None
        return cls(layout, state)

    @classmethod
    def running(cls, labdir: Path | str | None = None) -> Lab:
        """The lab running in ``labdir``; LabNotRunningError when there is none."""
        lab = cls.find(labdir)
        if lab is None:
            where = Path(labdir).absolute() if labdir is not None else default_labdir()
            raise LabNotRunningError(
                f"no lab is running in {where}; start one with `simtool lab up`", labdir=str(where)
            )
        return lab

    @classmethod
    def up(
        cls,
        cards: int | None = None,
        profiles: Sequence[ProfileSource] = (),
        *,
        seed: int | None = None,
        slots: int | None = None,
        labdir: Path | str | None = None,
        fresh: bool = False,
        timeout: float = DEFAULT_READY_TIMEOUT,
    ) -> Lab:
        """Start a lab, or return the one already running in ``labdir`` if it fits.

        ``cards`` virtual cards (default 2): ``profiles`` (objects, names or
        JSON files) fill the first slots, ``lab_profile(slot, seed)`` (seed
        default 0) the rest. ``slots`` readers (default: ``cards`` rounded up
        to even; at most 16). A card keeps its saved state (PIN counters ...)
        from an earlier lab in the same directory if it is the same card
        (ICCID), unless ``fresh``. Returns once pcscd reports every card present.

        A running lab is returned unchanged (``started`` False) when it has
        what the arguments given ask for; arguments left out ask for nothing.
        ``cards`` (or ``seed``): slots 0 to cards-1 hold exactly the cards a
        fresh start would put there, present; ``profiles``: those cards lead;
        ``slots``: at least that many; ``fresh``: those cards carry no state
        from use. Otherwise :class:`LabConflictError` says what differs.
        """
        layout = LabLayout(Path(labdir).absolute() if labdir is not None else default_labdir())
        layout.check_socket_paths()
        with _exclusive(layout):
            return cls._up(
                layout, cards, profiles, seed=seed, slots=slots, fresh=fresh, timeout=timeout
            )

    @classmethod
    def _up(
        cls,
        layout: LabLayout,
        cards: int | None,
        profiles: Sequence[ProfileSource],
        *,
        seed: int | None,
        slots: int | None,
        fresh: bool,
        timeout: float,
    ) -> Lab:
        card_profiles = lab_card_profiles(cards, profiles, seed or 0)
        running = cls.find(layout.root)
        if running is not None:
            # Without cards or seed the lab stock slots were not asked for.
            wanted = (
                card_profiles
                if cards is not None or seed is not None
                else card_profiles[: len(profiles)]
            )
            running._check_request(
                wanted, stock_from=len(profiles), seed=seed or 0, slots=slots, fresh=fresh
            )
            running.started = False
            return running
        slot_count = max(len(card_profiles), slots or 0, 1)
        if slot_count > MAX_SLOTS:
            raise UsageError(f"a lab has at most {MAX_SLOTS} slots, not {slot_count}")
        slot_count = unit_count(slot_count) * SLOTS_PER_UNIT
        namespace = _namespace_command()
        for tool in ("pcscd", "ip", "mount", "setpriv"):
            find_tool(tool)
        if not VPCD_DRIVER.is_file():
            raise LabError(
                f"the vpcd driver {VPCD_DRIVER} is missing (Debian package vsmartcard-vpcd)"
            )
        notes: list[str] = []
        system = find_system_pcscd()
        if system is not None:
            notes.append(system.describe())
        for label, values in (
            ("ICCID", [p.iccid for p in card_profiles]),
            ("IMSI", [p.imsi for p in card_profiles]),
        ):
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                notes.append(f"several cards share the {label} {', '.join(duplicates)}")

        _clear_stale(layout)
        _prepare_directory(layout, slot_count, card_profiles, fresh=fresh)
        config = LabConfig(
            slots=slot_count,
            base_port=BASE_PORT,
            cards=tuple(range(len(card_profiles))),
            outer_mount_namespace=mount_namespace(),
            ready_timeout=timeout,
            notes=tuple(notes),
        )
        write_json_atomically(layout.config_file, config.to_json_dict())

        state = _launch(layout, namespace, timeout)
        return cls(layout, state, started=True, notes=notes)

    def _check_request(
        self,
        wanted: Sequence[CardProfile],
        *,
        stock_from: int,
        seed: int,
        slots: int | None,
        fresh: bool,
    ) -> None:
        """Raise LabConflictError unless this lab has what was asked.

        That is: the cards ``wanted`` present in its first slots, at least
        ``slots`` slots, and with ``fresh`` those cards (or all, when none are
        wanted) without state from use. ``wanted[stock_from:]`` are the lab
        stock cards of ``seed``, which the message names as such.
        """
        infos = self.slots
        held = [info for info in infos if info.state != "empty"]
        asked: list[str] = []
        missing = [
            slot
            for slot in range(len(wanted))
            if slot >= len(infos) or infos[slot].state == "empty"
        ]
        if missing:
            asked.append(f"{len(wanted)} cards")
        if slots is not None and unit_count(slots) * SLOTS_PER_UNIT > len(infos):
            asked.append(f"{slots} slots (it has {len(infos)})")
        differ: list[str] = []
        other_seeds: dict[int, list[int]] = {}
        for slot, want in enumerate(wanted):
            if slot in missing:
                continue
            have = self.profile(slot)
            if have is None or have != want:
                other_seed = None
                if have is not None and slot >= stock_from:
                    other_seed = _stock_seed(have, slot)
                if other_seed is not None:
                    other_seeds.setdefault(other_seed, []).append(slot)
                    continue
                what = want.name if slot < stock_from else f"{want.name} of seed {seed}"
                if have is not None and have.name == want.name:
                    what += f" (ICCID {want.iccid})"
                holds = "no readable card" if have is None else (f"{have.name}, ICCID {have.iccid}")
                differ.append(f"{what} in slot {slot} (it holds {holds})")
            elif infos[slot].state == "removed":
                differ.append(
                    f"a card present in slot {slot} (its card {have.name} was "
                    f"removed; 'simtool lab insert {slot}' puts it back)"
                )
        shown = 4
        asked += differ[:shown]
        if len(differ) > shown:
            asked.append(f"{len(differ) - shown} more slots that differ")
        for other_seed, seed_slots in other_seeds.items():
            asked.append(
                f"lab stock of seed {seed} in slot{'' if len(seed_slots) == 1 else 's'}"
                f" {', '.join(map(str, seed_slots))} (it holds the lab stock of seed "
                f"{other_seed})"
            )
        if fresh:
            checked = range(len(wanted)) if wanted else [info.slot for info in held]
            used = [
                str(slot)
                for slot in checked
                if slot not in missing and self.layout.card_state(slot).exists()
            ]
            if used:
                asked.append(
                    f"fresh cards (slot {', '.join(used)}: PIN counters or files "
                    "changed since the card was new)"
                )
        if not asked:
            return
        running = f"a lab with {len(held)} card{'' if len(held) == 1 else 's'}"
        raise LabConflictError(
            f"{running} is already up in {self.layout.root}; asked for {'; '.join(asked)}: "
            "run 'simtool lab down' first",
            labdir=str(self.layout.root),
            running=f"{running} in {len(infos)} slots",
            asked=tuple(asked),
        )

    # --- what clients need ---------------------------------------------------------------

    @property
    def labdir(self) -> Path:
        """The lab directory."""
        return self.layout.root

    @property
    def pcsc_socket(self) -> Path:
        """The lab pcscd's socket: the value for ``PCSCLITE_CSOCK_NAME``."""
        return Path(self._state.pcsc_socket)

    @property
    def supervisor_pid(self) -> int:
        """The supervisor process (inside the lab's namespaces)."""
        return self._state.supervisor_pid

    @property
    def pcscd_pid(self) -> int | None:
        """The lab's pcscd."""
        return self._refresh().pcscd_pid

    def pcsc_environment(self) -> dict[str, str]:
        """The environment a process needs to use the lab's readers."""
        return {PCSC_SOCKET_ENV: str(self.pcsc_socket)}

    @property
    def slots(self) -> list[SlotInfo]:
        """Every slot, in order, as the supervisor last published it."""
        return list(self._refresh().slots)

    def slot(self, slot: int) -> SlotInfo:
        """One slot; LabError when the lab has no such slot."""
        slots = self.slots
        if not 0 <= slot < len(slots):
            raise UsageError(f"the lab has slots 0 to {len(slots) - 1}, not {slot}")
        return slots[slot]

    def reader_name(self, slot: int) -> str:
        """The PC/SC reader name of ``slot``."""
        return self.slot(slot).reader

    def slot_of(self, reader: str) -> int:
        """The slot whose reader is named ``reader``; UsageError for another reader."""
        for info in self.slots:
            if info.reader == reader:
                return info.slot
        raise UsageError(f"{reader!r} is not a reader of the lab in {self.layout.root}")

    def profile(self, slot: int) -> CardProfile | None:
        """The profile (with secrets) of the card in, or last in, ``slot``."""
        path = self.layout.card_profile(slot)
        return load_profile(path) if path.exists() else None

    def card_profiles(self) -> list[CardProfile]:
        """The cards the lab holds (present or removed), in slot order."""
        found = (self.profile(info.slot) for info in self.slots if info.state != "empty")
        return [p for p in found if p is not None]

    def _refresh(self) -> LabState:
        state = read_state(self.layout.state_file)
        if state is None or not is_lab_process(state.supervisor_pid, SERVER_MODULE):
            raise LabNotRunningError(
                f"the lab in {self.layout.root} is not running", labdir=str(self.layout.root)
            )
        self._state = state
        return state

    # --- driving -------------------------------------------------------------------------

    def remove(self, slot: int, *, wait: bool = True) -> SlotInfo:
        """Pull the card out of ``slot``; returns once pcscd sees the slot empty
        (at once with ``wait`` False)."""
        reply = control.request(self.layout.control_socket, "remove", slot=slot, wait=wait)
        return SlotInfo.from_json_dict(reply["slot"])

    def insert(
        self, slot: int, profile: ProfileSource | None = None, *, wait: bool = True
    ) -> SlotInfo:
        """Insert a card into ``slot``; returns once pcscd sees it (at once with ``wait``
        False).

        Without ``profile`` the card that was there goes back in, with its
        state. With one, a new card (fresh state) replaces it for good.
        """
        staged: Path | None = None
        if profile is not None:
            card = resolve_profile(profile)
            # Secrets travel as a private file, never over the socket.
            fd, name = tempfile.mkstemp(
                prefix=f".incoming-{slot}-", suffix=".json", dir=self.layout.cards_dir
            )
            os.close(fd)
            staged = Path(name)
            save_profile(card, staged)
        try:
            reply = control.request(
                self.layout.control_socket,
                "insert",
                slot=slot,
                profile_file=None if staged is None else str(staged),
                wait=wait,
            )
        finally:
            if staged is not None:
                staged.unlink(missing_ok=True)
        return SlotInfo.from_json_dict(reply["slot"])

    def restart_pcscd(self) -> None:
        """Restart the lab's pcscd (cards reconnect), as a station may see in the field."""
        control.request(self.layout.control_socket, "restart_pcscd")

    def set_latency(self, latency_ms: float, jitter_ms: float = 0.0) -> tuple[float, float]:
        """Make every card answer each command APDU after ``latency_ms`` (± ``jitter_ms``),
        as real SIMs do; 0 is the virtual cards' own speed. Returns what the lab set."""
        reply = control.request(
            self.layout.control_socket, "latency", ms=latency_ms, jitter_ms=jitter_ms
        )
        return float(reply["latency_ms"]), float(reply["jitter_ms"])

    def down(self, timeout: float = 10.0) -> None:
        """Stop the lab: its pcscd and its supervisor, nothing else."""
        with _exclusive(self.layout):
            state = read_state(self.layout.state_file) or self._state
            _stop(self.layout, state, timeout)


@contextlib.contextmanager
def _exclusive(layout: LabLayout) -> Iterator[None]:
    """Hold the lab directory's lock: one `up` or `down` at a time per lab."""
    layout.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(layout.root / "lock", "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _clear_stale(layout: LabLayout) -> None:
    """Remove what a lab that died left behind (stopping only its own processes)."""
    try:
        state = read_state(layout.state_file)
    except ParseError:
        state = None
    if state is not None:
        if is_lab_process(state.supervisor_pid, SERVER_MODULE) and state.phase != "failed":
            raise LabError(
                f"a lab is still starting or stopping in {layout.root} "
                f"(supervisor pid {state.supervisor_pid}); try again shortly",
                labdir=str(layout.root),
            )
        _stop(layout, state, timeout=5.0)
    for leftover in (
        layout.state_file,
        layout.control_socket,
        layout.pcscd_dir / "pcscd.comm",
        layout.pcscd_dir / "pcscd.pid",
    ):
        leftover.unlink(missing_ok=True)


def _prepare_directory(
    layout: LabLayout, slots: int, profiles: Sequence[CardProfile], *, fresh: bool
) -> None:
    for directory in (
        layout.root,
        layout.pcscd_dir,
        layout.reader_conf_dir,
        layout.drivers_dir,
        layout.cards_dir,
    ):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # pcscd inside must reach its socket directory; clients outside, the socket.
    os.chmod(layout.pcscd_dir, 0o755)
    for unit in range(unit_count(slots)):
        # A copy per unit, not a link: units sharing one driver file mix up slots.
        shutil.copyfile(VPCD_DRIVER, layout.driver(unit))
    layout.reader_conf_file.write_text(reader_conf_text(layout, slots), encoding="utf-8")
    for slot in range(MAX_SLOTS):
        profile_path, state_path = layout.card_profile(slot), layout.card_state(slot)
        if slot >= len(profiles):
            profile_path.unlink(missing_ok=True)
            state_path.unlink(missing_ok=True)
            continue
        same_card = False
        if profile_path.exists() and not fresh:
            try:
                same_card = load_profile(profile_path).iccid == profiles[slot].iccid
            except (ParseError, UsageError):
                same_card = False
        if not same_card:
            state_path.unlink(missing_ok=True)
        save_profile(profiles[slot], profile_path)


def _launch(layout: LabLayout, namespace: list[str], timeout: float) -> LabState:
    command = [*namespace, "--", sys.executable, "-m", SERVER_MODULE, "--labdir", str(layout.root)]
    env = {k: v for k, v in os.environ.items() if k != PCSC_SOCKET_ENV}
    with open(layout.supervisor_log, "ab") as log_file:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd="/",
            env=env,
            start_new_session=True,
        )
    try:
        # The supervisor forks once its namespace is set up; this is the parent.
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise LabStartError(
            "the lab supervisor did not detach in time",
            labdir=str(layout.root),
            log_tail=_log_tail(layout.supervisor_log),
        ) from None
    if code != 0:
        tail = _log_tail(layout.supervisor_log)
        raise LabStartError(
            f"the lab could not start (exit code {code}):\n{tail}",
            labdir=str(layout.root),
            log_tail=tail,
        )
    deadline = time.monotonic() + timeout + 5.0
    while True:
        try:
            state = read_state(layout.state_file)
        except ParseError:
            state = None
        if state is not None:
            if state.phase == "ready":
                return state
            alive = is_lab_process(state.supervisor_pid, SERVER_MODULE)
            if state.phase == "failed" or not alive:
                wait_gone(state.supervisor_pid, 5.0)
                tail = _log_tail(layout.supervisor_log)
                raise LabStartError(
                    f"the lab could not start: {state.error or 'see the log'}\n{tail}",
                    labdir=str(layout.root),
                    log_tail=tail,
                )
        if time.monotonic() > deadline:
            if state is not None:
                _stop(layout, state, 5.0)
            tail = _log_tail(layout.supervisor_log)
            raise LabStartError(
                f"the lab was not ready within {timeout:g} s:\n{tail}",
                labdir=str(layout.root),
                log_tail=tail,
            )
        time.sleep(0.02)


def _stop(layout: LabLayout, state: LabState, timeout: float) -> None:
    """Stop the lab's supervisor and pcscd, asking first, then by signal."""
    supervisor_alive = is_lab_process(state.supervisor_pid, SERVER_MODULE)
    if supervisor_alive:
        # When it does not answer, the signals below stop it.
        with contextlib.suppress(LabError):
            control.request(layout.control_socket, "shutdown", timeout=timeout)
        if not wait_gone(state.supervisor_pid, timeout) and not stop_process(
            state.supervisor_pid, SERVER_MODULE
        ):
            raise LabError(
                f"the lab supervisor (pid {state.supervisor_pid}) does not stop",
                labdir=str(layout.root),
            )
    # pcscd dies with its supervisor (parent-death signal); this catches the
    # case where it did not, and only if it is the lab's own pcscd.
    if state.pcscd_pid is not None and not stop_process(
        state.pcscd_pid, str(layout.reader_conf_dir)
    ):
        raise LabError(
            f"the lab's pcscd (pid {state.pcscd_pid}) does not stop", labdir=str(layout.root)
        )
    for leftover in (
        layout.state_file,
        layout.control_socket,
        layout.pcscd_dir / "pcscd.comm",
        layout.pcscd_dir / "pcscd.pid",
    ):
        leftover.unlink(missing_ok=True)


def _stock_seed(profile: CardProfile, slot: int) -> int | None:
    """The seed whose lab stock card for ``slot`` is ``profile``, when it is one."""
    # The ICCID carries the seed's batch number (seed mod 1000): try that seed.
    batch = profile.iccid[6:9]
    if not batch.isdigit():
        return None
    return int(batch) if profile == lab_profile(slot, int(batch)) else None


def _enclosing_labdir(path: Path) -> Path | None:
    """The lab directory ``path`` lies in (its socket is ``DIR/pcscd/pcscd.comm``), if any."""
    for candidate in (path.parent.parent, path.parent):
        layout = LabLayout(candidate)
        # After `lab down` lab.json is gone but the reader configuration stays.
        if layout.state_file.is_file() or layout.reader_conf_file.is_file():
            return candidate
    return None


def is_lab_socket(socket_path: str | os.PathLike[str]) -> bool:
    """Whether ``socket_path`` is the PC/SC socket of a lab directory (running or not)."""
    try:
        path = Path(socket_path).absolute()
        return path.name == "pcscd.comm" and _enclosing_labdir(path) is not None
    except (OSError, ValueError):
        return False


def explain_missing_service(socket_path: str) -> str | None:
    """Why no pcscd answers on ``socket_path`` when it is a lab's socket; None otherwise.

    For the card commands' error path: ``socket_path`` is the value of
    ``PCSCLITE_CSOCK_NAME``. When it lies in a lab directory (a running or a
    former lab), the hint says that the lab is not running, how to start it
    and that unsetting the variable reaches the system pcscd instead. Never
    raises.
    """
    if not socket_path:
        return None
    try:
        path = Path(socket_path).absolute()
        labdir = _enclosing_labdir(path)
        if labdir is None:
            return None
        running = Lab.find(labdir)
        try:
            is_default = labdir == default_labdir()
        except LabError:
            is_default = False
    except (OSError, ValueError, SimtoolError):
        return None
    option = "" if is_default else f" --labdir {labdir}"
    if running is not None:
        return (
            f"the lab in {labdir} is up but its pcscd does not answer on {path} (see "
            f"{running.layout.pcscd_log}; restart the lab with 'simtool lab{option} down' "
            f"and 'simtool lab{option} up', or unset {PCSC_SOCKET_ENV})"
        )
    return (
        f"the lab in {labdir} is not running (start it with 'simtool lab{option} up', "
        f"or unset {PCSC_SOCKET_ENV})"
    )


def pcsc_environment(labdir: Path | str | None = None) -> dict[str, str]:
    """The environment for the lab running in ``labdir``; LabNotRunningError if none."""
    return Lab.running(labdir).pcsc_environment()
