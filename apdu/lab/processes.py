"""Processes the lab starts, and how it recognises them before it signals one.

The lab only ever signals a pid it recorded *and* whose command line still
shows it is that process (a pid can be reused once a process is gone).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from apdu.lab.errors import LabError

# Root's tools live in sbin, which a non-root PATH often lacks.
_EXTRA_PATH = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


def find_tool(name: str) -> str:
    """The full path of a system tool the lab needs, or a LabError naming its package."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *_EXTRA_PATH])
    found = shutil.which(name, path=search)
    if found is None:
        package = {"pcscd": "pcscd", "ip": "iproute2"}.get(name, "util-linux")
        raise LabError(f"the lab needs {name!r}, which is not installed (Debian package {package})")
    return found


def mount_namespace(pid: int | str = "self") -> str:
    """An identifier of a process's mount namespace (like ``mnt:[4026531841]``)."""
    return os.readlink(f"/proc/{pid}/ns/mnt")


def command_line(pid: int) -> list[str] | None:
    """The arguments of a live process; None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # The state letter follows the parenthesised command name, which may
    # itself contain spaces or parentheses.
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    if state in ("Z", "X"):
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_lab_process(pid: int | None, marker: str) -> bool:
    """Whether ``pid`` is alive and its command line contains ``marker``."""
    if pid is None or pid <= 0:
        return False
    args = command_line(pid)
    return args is not None and any(marker in arg for arg in args)


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has exited (or is a zombie); True if it did in time."""
    deadline = time.monotonic() + timeout
    while command_line(pid) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def stop_process(pid: int, marker: str, timeout: float = 5.0) -> bool:
    """SIGTERM, then SIGKILL, a process that is ours (``marker`` in its command line).

    Returns True when the process is gone; does nothing to a process that
    does not carry the marker.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not is_lab_process(pid, marker):
            return True
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError as exc:
            raise LabError(f"not allowed to stop process {pid}: {exc.strerror}") from None
        if wait_gone(pid, timeout):
            return True
    return False


@dataclass(frozen=True)
class SystemPcscd:
    """A pcscd serving this machine's own namespace (real readers), not the lab's.

    ``pids`` are pcscd processes in the caller's mount namespace;
    ``socket_answers`` tells whether /run/pcscd/pcscd.comm accepts connections.
    """

    pids: tuple[int, ...]
    socket_answers: bool

    def describe(self) -> str:
        """Plain words for the operator."""
        where = f"pid {', '.join(map(str, self.pids))}" if self.pids else "socket answering"
        return (
            f"a system pcscd is running ({where}); the lab runs its own pcscd in a "
            "private namespace and leaves it alone"
        )


def find_system_pcscd(run_dir: Path = Path("/run/pcscd")) -> SystemPcscd | None:
    """The pcscd of the caller's own namespace, if one is running."""
    answers = False
    path = run_dir / "pcscd.comm"
    if path.exists():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            try:
                probe.connect(str(path))
                answers = True
            except OSError:
                answers = False
    pids = []
    own = mount_namespace()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "pcscd":
                continue
            if mount_namespace(entry.name) != own:
                continue
        except OSError:
            continue
        pids.append(int(entry.name))
    if not pids and not answers:
        return None
    return SystemPcscd(tuple(sorted(pids)), answers)
