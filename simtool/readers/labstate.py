"""Find a running lab's reader and socket from its state file, without the lab package.

Opening ``lab:N`` needs two facts the lab publishes in ``lab.json``: slot N's
reader name and the lab pcscd's socket. Importing :mod:`apdu.lab` for them
costs a card command more CPU than its whole read (the launcher, the card
profiles, hashlib, tempfile...), so this module reads the file itself with
what the standard library already loaded. It answers only the plain case (a
lab that is ready, its supervisor alive, the slot present) and None for
anything else: the caller then asks :class:`apdu.lab.Lab`, which explains
what is wrong. ``tests/test_read_startup.py`` checks that both agree on the
constants below.
"""

from __future__ import annotations

import json
import os

#: The environment variable that chooses the lab directory (apdu.lab.layout.LABDIR_ENV).
LABDIR_ENV = "SIMTOOL_LAB_DIR"
#: The lab's state file in its directory (apdu.lab.layout.LabLayout.state_file).
STATE_FILE = "lab.json"
#: The supervisor's module, on its command line (apdu.lab.launcher.SERVER_MODULE).
SERVER_MODULE = "apdu.lab.server"
#: The state file format this module reads (apdu.lab.state.STATE_FORMAT).
STATE_FORMAT = 1


def _labdir() -> str | None:
    chosen = os.environ.get(LABDIR_ENV)
    if chosen:
        return os.path.abspath(chosen)
    if os.geteuid() == 0:
        return "/run/simtool/lab"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(runtime, "simtool", "lab") if runtime else None


def _supervisor_alive(pid: object) -> bool:
    """Whether ``pid`` is a live (not zombie) process running the lab supervisor."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat_file:
            stat = stat_file.read()
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline_file:
            cmdline = cmdline_file.read()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    return state not in ("Z", "X") and SERVER_MODULE.encode() in cmdline


def lab_reader(slot: int) -> tuple[str, str] | None:
    """(reader name, pcscd socket) of ``slot`` of the running lab; None when unsure."""
    labdir = _labdir()
    if labdir is None:
        return None
    try:
        with open(os.path.join(labdir, STATE_FILE), encoding="utf-8") as state_file:
            state = json.load(state_file)
        if (
            state.get("format") != STATE_FORMAT
            or state.get("phase") != "ready"
            or not _supervisor_alive(state.get("supervisor_pid"))
        ):
            return None
        slots = state["slots"]
        if not 0 <= slot < len(slots) or slots[slot].get("slot") != slot:
            return None
        reader, socket = slots[slot]["reader"], state["pcsc_socket"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(reader, str) or not isinstance(socket, str):
        return None
    return reader, socket
