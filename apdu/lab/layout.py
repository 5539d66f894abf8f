"""Where a lab keeps its files, and how its readers are named and configured.

A lab lives in one directory (the *labdir*)::

    lab.json            state for clients: pids, sockets, slots (no secrets)
    config.json         what the supervisor is asked to start
    control.sock        the supervisor's control socket
    pcscd/              bind-mounted on /run/pcscd inside the lab's namespace:
                        pcscd.comm there is the PC/SC socket clients use
    reader.conf.d/      the private reader configuration pcscd reads
    drivers/            one copy of the vpcd driver per reader unit
    cards/<slot>.profile.json   the card in (or last in) the slot (0600, secrets)
    cards/<slot>.json           its non-volatile state (PIN counters ...)
    supervisor.log, pcscd.log
    lock                one `lab up` / `lab down` at a time

Slots come in pairs: one vpcd configuration entry (a *reader unit*) gives two
slots on ports P and P+1. pcscd takes at most 8 entries, so 16 slots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from apdu.lab.errors import LabError
from apdu.virtual.vpcd import VPCD_DEFAULT_PORT

#: The most slots one pcscd serves (8 vpcd entries of 2 slots each).
MAX_SLOTS = 16
SLOTS_PER_UNIT = 2
#: Every lab reader's name starts with this.
READER_PREFIX = "Simtool Lab"
#: The packaged vpcd driver; each reader unit gets its own copy (docs/lab.md).
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so.0.8")
#: Where pcscd puts its socket and pid file; hard-coded in pcscd.
PCSCD_RUN_DIR = Path("/run/pcscd")
#: sun_path holds 108 bytes including the terminating NUL.
UNIX_SOCKET_PATH_MAX = 107
#: The environment variable libpcsclite reads for the pcscd socket path.
PCSC_SOCKET_ENV = "PCSCLITE_CSOCK_NAME"
#: The environment variable that chooses the lab directory.
LABDIR_ENV = "SIMTOOL_LAB_DIR"
BASE_PORT = VPCD_DEFAULT_PORT


def default_labdir() -> Path:
    """``$SIMTOOL_LAB_DIR``, else /run/simtool/lab as root, else under $XDG_RUNTIME_DIR."""
    chosen = os.environ.get(LABDIR_ENV)
    if chosen:
        return Path(chosen).absolute()
    if os.geteuid() == 0:
        return Path("/run/simtool/lab")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime:
        raise LabError(f"no lab directory: set {LABDIR_ENV} (XDG_RUNTIME_DIR is not set either)")
    return Path(runtime) / "simtool" / "lab"


def unit_of(slot: int) -> int:
    """The reader unit (vpcd configuration entry) serving ``slot``."""
    return slot // SLOTS_PER_UNIT


def slot_port(slot: int, base_port: int = BASE_PORT) -> int:
    """The TCP port vpcd listens on for ``slot``."""
    return base_port + slot


def unit_friendly_name(unit: int) -> str:
    """The FRIENDLYNAME of a reader unit.

    Each unit needs a name of its own: units sharing one name all get the
    reader number 00 from pcscd, so their readers' names would collide.
    """
    return f"{READER_PREFIX} {unit}"


def expected_reader_name(slot: int) -> str:
    """The name pcscd gives ``slot``'s reader: FRIENDLYNAME, reader number, slot."""
    return f"{unit_friendly_name(unit_of(slot))} 00 {slot % SLOTS_PER_UNIT:02X}"


def check_slot_count(slots: int) -> None:
    """Refuse a slot count pcscd cannot serve."""
    if not 1 <= slots <= MAX_SLOTS:
        raise LabError(f"a lab has 1 to {MAX_SLOTS} slots, not {slots}")


@dataclass(frozen=True)
class LabLayout:
    """The files of the lab in ``root``."""

    root: Path

    @property
    def state_file(self) -> Path:
        """lab.json: what clients read to find the lab."""
        return self.root / "lab.json"

    @property
    def config_file(self) -> Path:
        """config.json: what the supervisor is asked to start."""
        return self.root / "config.json"

    @property
    def control_socket(self) -> Path:
        """The supervisor's control socket."""
        return self.root / "control.sock"

    @property
    def pcscd_dir(self) -> Path:
        """Mounted on /run/pcscd inside the lab's namespace."""
        return self.root / "pcscd"

    @property
    def pcsc_socket(self) -> Path:
        """The PC/SC socket, as seen from outside the namespace."""
        return self.pcscd_dir / "pcscd.comm"

    @property
    def reader_conf_dir(self) -> Path:
        """The private reader.conf.d pcscd reads."""
        return self.root / "reader.conf.d"

    @property
    def reader_conf_file(self) -> Path:
        """The one file holding every reader unit (readers list in file order)."""
        return self.reader_conf_dir / "simtool-lab"

    @property
    def drivers_dir(self) -> Path:
        """The per-unit copies of the vpcd driver."""
        return self.root / "drivers"

    @property
    def cards_dir(self) -> Path:
        """Card profiles and card states, per slot."""
        return self.root / "cards"

    @property
    def supervisor_log(self) -> Path:
        """The supervisor's log."""
        return self.root / "supervisor.log"

    @property
    def pcscd_log(self) -> Path:
        """pcscd's own output."""
        return self.root / "pcscd.log"

    def driver(self, unit: int) -> Path:
        """The driver copy of reader unit ``unit``."""
        return self.drivers_dir / f"libifdvpcd-{unit}.so"

    def card_profile(self, slot: int) -> Path:
        """The profile of the card in (or last in) ``slot``; contains secrets."""
        return self.cards_dir / f"{slot}.profile.json"

    def card_state(self, slot: int) -> Path:
        """The non-volatile state of the card in (or last in) ``slot``."""
        return self.cards_dir / f"{slot}.json"

    def check_socket_paths(self) -> None:
        """Refuse a lab directory whose socket paths do not fit in sun_path."""
        for path in (self.control_socket, self.pcsc_socket):
            size = len(os.fsencode(path))
            if size > UNIX_SOCKET_PATH_MAX:
                raise LabError(
                    f"lab directory {self.root} is too long: the socket path {path} has "
                    f"{size} bytes, a unix socket path has at most {UNIX_SOCKET_PATH_MAX}; "
                    f"choose a shorter {LABDIR_ENV}",
                    labdir=str(self.root),
                )


def reader_conf_text(layout: LabLayout, slots: int, base_port: int = BASE_PORT) -> str:
    """The reader.conf entries for ``slots`` slots (one entry per two slots)."""
    check_slot_count(slots)
    units = (slots + SLOTS_PER_UNIT - 1) // SLOTS_PER_UNIT
    entries = []
    for unit in range(units):
        # vpcd takes its first port from the DEVICENAME suffix (CHANNELID is
        # ignored) and serves the second slot on the next port.
        entries.append(
            f'FRIENDLYNAME "{unit_friendly_name(unit)}"\n'
            f"DEVICENAME /dev/null:{slot_port(unit * SLOTS_PER_UNIT, base_port)}\n"
            f"LIBPATH {layout.driver(unit)}\n"
        )
    return "# Written by simtool lab; replaced on every `lab up`.\n\n" + "\n".join(entries)


def unit_count(slots: int) -> int:
    """How many reader units serve ``slots`` slots."""
    return (slots + SLOTS_PER_UNIT - 1) // SLOTS_PER_UNIT
