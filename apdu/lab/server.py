"""The lab supervisor: pcscd and every virtual card, inside the lab's namespaces.

Started by :meth:`apdu.lab.Lab.up` as
``unshare --mount --net ... python -m apdu.lab.server --labdir DIR``. In its
private mount namespace it bind-mounts ``DIR/pcscd`` on /run/pcscd (so the
lab's pcscd puts its socket where clients outside can reach it with
``PCSCLITE_CSOCK_NAME``); in its private network namespace vpcd's listener on
0.0.0.0 is invisible to the station's network and clashes with no other lab.

The supervisor then detaches (forks; the launcher's child exits), starts
pcscd as its own child, serves one :class:`VpcdCardLink` per slot, waits until
pcscd reports every card, publishes lab.json and answers the control socket
until told to shut down. It stops only what it started: its pcscd.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from apdu.errors import SimtoolError
from apdu.lab import control
from apdu.lab.errors import LabError, SlotError
from apdu.lab.latency import CardLatency, SlowCard
from apdu.lab.layout import (
    PCSC_SOCKET_ENV,
    PCSCD_RUN_DIR,
    LabLayout,
    expected_reader_name,
    slot_port,
)
from apdu.lab.processes import find_tool, mount_namespace
from apdu.lab.state import (
    LabConfig,
    LabState,
    Phase,
    SlotInfo,
    SlotState,
    read_config,
    write_json_atomically,
)
from apdu.virtual import VirtualUicc, load_profile
from apdu.virtual.vpcd import VpcdCardLink

log = logging.getLogger("apdu.lab.server")

#: How long insert/remove/restart wait for pcscd to report the new state.
EVENT_TIMEOUT = 10.0
_LOOP_INTERVAL = 0.2
_REQUEST_TIMEOUT = 5.0


class _TerminationRequest(BaseException):
    """SIGTERM/SIGINT arrived: shut the lab down.

    A BaseException, so that no ``except Exception`` on the way swallows it.
    """


@dataclass
class _Slot:
    number: int
    port: int
    reader: str
    link: VpcdCardLink
    state: SlotState = "empty"
    profile: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    form_factor: str | None = None

    def info(self) -> SlotInfo:
        return SlotInfo(
            slot=self.number,
            reader=self.reader,
            port=self.port,
            state=self.state,
            profile=self.profile,
            iccid=self.iccid,
            imsi=self.imsi,
            form_factor=self.form_factor,
        )


class Supervisor:
    """Runs one lab until it is told to stop; see the module documentation."""

    def __init__(self, layout: LabLayout, config: LabConfig) -> None:
        self.layout = layout
        self.config = config
        self.phase: Phase = "starting"
        self.error: str | None = None
        self.pcscd: subprocess.Popen[bytes] | None = None
        self._listener: socket.socket | None = None
        self._stop_requested = False
        self._terminating = False
        # Shared by every card, so `lab up --latency` applies to cards already in.
        self.latency = CardLatency()
        self.slots = [
            _Slot(
                number=n,
                port=slot_port(n, config.base_port),
                reader=expected_reader_name(n),
                link=VpcdCardLink(
                    "127.0.0.1", slot_port(n, config.base_port), name=f"lab-slot-{n}"
                ),
            )
            for n in range(config.slots)
        ]
        # Imported here: libpcsclite reads the socket name on first use.
        os.environ[PCSC_SOCKET_ENV] = str(layout.pcsc_socket)
        from apdu.lab.presence import ReaderWatch

        self.watch = ReaderWatch()

    # --- life cycle -------------------------------------------------------------------

    def run(self) -> int:
        """Start everything, serve until told to stop, stop everything; the exit code."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        code = 0
        try:
            self._publish()
            self._start_pcscd()
            for slot in self.slots:
                if slot.number in self.config.cards:
                    self._put_card(slot)
                slot.link.start()
            self._wait_for_cards(self.config.ready_timeout)
            self._listen()
            self.phase = "ready"
            self._publish()
            log.info("lab ready: %d slots, %d cards", len(self.slots), len(self.config.cards))
            self._serve()
        except _TerminationRequest:
            log.info("terminated by signal")
        except (SimtoolError, OSError) as exc:
            self.phase, self.error = "failed", str(exc)
            log.error("lab failed: %s", exc)
            code = 1
        except Exception as exc:
            # A bug: still stop pcscd and tell the launcher, with the traceback logged.
            self.phase, self.error = "failed", f"internal error: {exc!r}"
            log.exception("lab failed")
            code = 1
        finally:
            self._terminating = True
            self._shutdown()
        return code

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._terminating:
            return
        self._terminating = True
        raise _TerminationRequest(signal.Signals(signum).name)

    def _publish(self) -> None:
        pcscd_pid = self.pcscd.pid if self.pcscd is not None and self.pcscd.poll() is None else None
        state = LabState(
            labdir=str(self.layout.root),
            phase=self.phase,
            supervisor_pid=os.getpid(),
            pcscd_pid=pcscd_pid,
            pcsc_socket=str(self.layout.pcsc_socket),
            control_socket=str(self.layout.control_socket),
            base_port=self.config.base_port,
            slots=tuple(slot.info() for slot in self.slots),
            error=self.error,
            notes=self.config.notes,
        )
        write_json_atomically(self.layout.state_file, state.to_json_dict())

    def _start_pcscd(self) -> None:
        for leftover in ("pcscd.comm", "pcscd.pid"):
            (self.layout.pcscd_dir / leftover).unlink(missing_ok=True)
        # setpriv --pdeathsig: pcscd dies with the supervisor even if it is
        # killed outright, so no lab pcscd is ever left behind.
        command = [
            find_tool("setpriv"),
            "--pdeathsig",
            "TERM",
            "--",
            find_tool("pcscd"),
            "--foreground",
            "-c",
            str(self.layout.reader_conf_dir),
        ]
        with open(self.layout.pcscd_log, "ab") as output:
            self.pcscd = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
            )
        log.info("pcscd started, pid %d", self.pcscd.pid)

    def _stop_pcscd(self) -> None:
        if self.pcscd is None:
            return
        if self.pcscd.poll() is None:
            self.pcscd.terminate()
            try:
                self.pcscd.wait(5.0)
            except subprocess.TimeoutExpired:
                log.warning("pcscd ignored SIGTERM; killing it")
                self.pcscd.kill()
                self.pcscd.wait()
        log.info("pcscd stopped (exit code %s)", self.pcscd.returncode)
        self.pcscd = None

    def _shutdown(self) -> None:
        if self.phase != "failed":
            self.phase = "stopping"
        with contextlib.suppress(OSError):
            self._publish()
        if self._listener is not None:
            self._listener.close()
            self.layout.control_socket.unlink(missing_ok=True)
        self.watch.close()
        self._stop_pcscd()
        for slot in self.slots:
            slot.link.stop()
        if self.phase != "failed":
            # A failed lab leaves lab.json behind so the launcher can say why.
            self.layout.state_file.unlink(missing_ok=True)
        log.info("lab stopped")

    # --- cards --------------------------------------------------------------------------

    def _put_card(self, slot: _Slot) -> None:
        """Insert the slot's card (profile and state from cards/) into its reader."""
        profile_path = self.layout.card_profile(slot.number)
        profile = load_profile(profile_path)
        try:
            card = VirtualUicc(profile, state_path=self.layout.card_state(slot.number))
        except SimtoolError as exc:
            raise SlotError(
                f"slot {slot.number}: the card state "
                f"{self.layout.card_state(slot.number)} cannot be used: {exc}",
                slot=slot.number,
            ) from None
        slot.link.insert(SlowCard(card, self.latency))
        slot.state = "present"
        slot.profile, slot.iccid, slot.imsi = profile.name, profile.iccid, profile.imsi
        slot.form_factor = profile.form_factor

    # --- control ------------------------------------------------------------------------

    def _listen(self) -> None:
        path = self.layout.control_socket
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(str(path))
        finally:
            os.umask(old_umask)
        listener.listen(8)
        self._listener = listener

    def _serve(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stop_requested:
                if selector.select(_LOOP_INTERVAL):
                    conn, _ = self._listener.accept()
                    with conn:
                        self._handle(conn)
                self._check_pcscd()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(_REQUEST_TIMEOUT)
        try:
            message = control.read_line(conn)
            request = json.loads(message)
            if not isinstance(request, dict):
                raise LabError("a control request must be a JSON object")
            reply = self._dispatch(request)
            reply["ok"] = True
        except SlotError as exc:
            reply = {"ok": False, "error": str(exc), "kind": "slot", "slot": exc.slot}
        except (SimtoolError, ValueError) as exc:
            reply = {"ok": False, "error": str(exc), "kind": "lab"}
        except OSError as exc:
            log.warning("control connection failed: %s", exc)
            return
        with contextlib.suppress(OSError):
            control.send_message(conn, reply)

    def _dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        log.info("control request: %s", op)
        if op == "status":
            return {}
        if op == "shutdown":
            self._stop_requested = True
            return {}
        if op == "restart_pcscd":
            self._restart_pcscd()
            return {}
        if op == "latency":
            self.latency.set(float(request.get("ms", 0.0)), float(request.get("jitter_ms", 0.0)))
            latency, jitter = self.latency.milliseconds
            return {"latency_ms": latency, "jitter_ms": jitter}
        if op in ("remove", "insert"):
            slot = self._slot(request.get("slot"))
            # wait False: return at once, as a hand does (benchmarks drive
            # many slots at a time and watch pcscd themselves).
            wait = request.get("wait", True) is not False
            if op == "remove":
                self._remove(slot, wait=wait)
            else:
                profile_file = request.get("profile_file")
                self._insert(
                    slot, None if profile_file is None else Path(str(profile_file)), wait=wait
                )
            return {"slot": slot.info().to_json_dict()}
        raise LabError(f"unknown lab operation {op!r}")

    def _slot(self, number: object) -> _Slot:
        if not isinstance(number, int) or isinstance(number, bool):
            raise LabError(f"slot must be a number, not {number!r}")
        if not 0 <= number < len(self.slots):
            raise SlotError(
                f"the lab has slots 0 to {len(self.slots) - 1}, not {number}", slot=number
            )
        return self.slots[number]

    def _remove(self, slot: _Slot, *, wait: bool = True) -> None:
        if slot.state != "present":
            raise SlotError(f"slot {slot.number} holds no card", slot=slot.number)
        slot.link.remove()
        slot.state = "removed"
        self._publish()
        if wait:
            self.watch.wait_for_presence({slot.reader: False}, EVENT_TIMEOUT, self._check_pcscd)

    def _insert(self, slot: _Slot, profile_file: Path | None, *, wait: bool = True) -> None:
        if slot.state == "present":
            raise SlotError(
                f"slot {slot.number} already holds a card (ICCID {slot.iccid}); remove it first",
                slot=slot.number,
            )
        if profile_file is not None:
            # A new card: its profile was staged in cards/ by the client; the
            # previous card of this slot and its state are gone for good.
            if profile_file.parent.resolve() != self.layout.cards_dir.resolve():
                raise SlotError(
                    f"slot {slot.number}: profile file {profile_file} is not "
                    f"staged in {self.layout.cards_dir}",
                    slot=slot.number,
                )
            load_profile(profile_file)
            os.replace(profile_file, self.layout.card_profile(slot.number))
            self.layout.card_state(slot.number).unlink(missing_ok=True)
        elif not self.layout.card_profile(slot.number).exists():
            raise SlotError(
                f"slot {slot.number} has no card to re-insert; give a profile", slot=slot.number
            )
        self._put_card(slot)
        self._publish()
        if wait:
            self.watch.wait_for_presence({slot.reader: True}, EVENT_TIMEOUT, self._check_pcscd)

    def _restart_pcscd(self) -> None:
        self.watch.close()
        self._stop_pcscd()
        self._start_pcscd()
        self._publish()
        self._wait_for_cards(EVENT_TIMEOUT)

    def _wait_for_cards(self, timeout: float) -> None:
        """Wait until pcscd lists every reader and reports each slot as it should be."""
        self.watch.wait_for_readers([s.reader for s in self.slots], timeout, self._check_pcscd)
        self.watch.wait_for_presence(
            {s.reader: s.state == "present" for s in self.slots}, timeout, self._check_pcscd
        )

    def _check_pcscd(self) -> None:
        if self.pcscd is not None and self.pcscd.poll() is not None:
            tail = self.layout.pcscd_log.read_text(errors="replace").strip().splitlines()[-5:]
            raise LabError(
                f"pcscd exited with code {self.pcscd.returncode}: {' | '.join(tail) or 'no output'}"
            )


def _check_private_namespace(config: LabConfig) -> None:
    if mount_namespace() == config.outer_mount_namespace:
        raise LabError(
            "the lab supervisor must run in its own mount namespace (started by "
            "`simtool lab up`), not in the caller's: it would take over /run/pcscd"
        )


def _prepare_namespace(layout: LabLayout) -> None:
    """Loopback up and the lab's pcscd directory on /run/pcscd (namespace-local)."""
    subprocess.run([find_tool("ip"), "link", "set", "lo", "up"], check=True, capture_output=True)
    try:
        PCSCD_RUN_DIR.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise LabError(
            f"cannot create {PCSCD_RUN_DIR} as this user; create it once as root "
            "(the pcscd package's socket unit normally does)"
        ) from None
    subprocess.run(
        [find_tool("mount"), "--bind", str(layout.pcscd_dir), str(PCSCD_RUN_DIR)],
        check=True,
        capture_output=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m apdu.lab.server``."""
    parser = argparse.ArgumentParser(
        prog="apdu.lab.server",
        description="Run a virtual SIM lab (started by `simtool lab up`).",
    )
    parser.add_argument("--labdir", required=True, type=Path)
    parser.add_argument(
        "--no-detach", action="store_true", help="stay in the foreground instead of forking"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    layout = LabLayout(args.labdir.absolute())
    try:
        config = read_config(layout.config_file)
        _check_private_namespace(config)
        _prepare_namespace(layout)
    except (SimtoolError, OSError, subprocess.CalledProcessError) as exc:
        detail = (
            exc.stderr.decode(errors="replace").strip()
            if isinstance(exc, subprocess.CalledProcessError) and exc.stderr
            else ""
        )
        log.error("cannot set up the lab's namespace: %s %s", exc, detail)
        return 2
    if not args.no_detach and os.fork() > 0:
        # The launcher waits for this parent; the child carries on as the lab.
        os._exit(0)
    started = time.monotonic()
    try:
        supervisor = Supervisor(layout, config)
    except Exception as exc:
        log.exception("cannot start the lab supervisor")
        failed = LabState(
            labdir=str(layout.root),
            phase="failed",
            supervisor_pid=os.getpid(),
            pcscd_pid=None,
            pcsc_socket=str(layout.pcsc_socket),
            control_socket=str(layout.control_socket),
            base_port=config.base_port,
            error=f"internal error: {exc!r}",
        )
        write_json_atomically(layout.state_file, failed.to_json_dict())
        return 1
    code = supervisor.run()
    log.info("supervisor exits with %d after %.1f s", code, time.monotonic() - started)
    return code


if __name__ == "__main__":
    sys.exit(main())
