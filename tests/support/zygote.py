"""A fork server for ``simtool`` runs in tests: a process per run, without the start-up.

Every CLI test runs the real command in a process of its own, as an operator
would. Starting Python and importing click, SQLAlchemy, rich, cryptography and
pyscard costs about 0.4 s of CPU per run, which made up most of the suite's
time. This server imports all of that once, then forks a child per request:
the child gets the request's environment, working directory, arguments and
standard streams, runs ``simtool.cli.main`` and exits with its code. Nothing
PC/SC, database or thread related is ever started in the server itself, so
each child starts as clean as a new process (libpcsclite reads its socket
variable at the first context, which only a child ever creates).

Protocol (on the file descriptors given as arguments): one JSON request per
line, ``{"args", "env", "cwd", "stdin", "stdout", "stderr", "timeout"}``
(stdin/stdout/stderr are file paths), answered by one JSON line
``{"code": N}`` or ``{"timeout": true}``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import random
import select
import signal
import sys
import traceback

PRELOAD = (
    "click",
    "rich.console",
    "rich.table",
    "sqlalchemy",
    "sqlalchemy.orm",
    "alembic.command",
    "cryptography.hazmat.primitives.ciphers.aead",
    "psycopg",
    "serial",
    "smartcard.scard",
    "simtool.cli",
    "apdu.card",
    "apdu.pin",
    "modem.modem",
    "provisioning.database",
    "provisioning.workflows",
    "provisioning.stock",
    "provisioning.records",
)


def _preload() -> None:
    for name in PRELOAD:
        # A module missing here is only slower in the child, never wrong.
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    from simtool import cli

    # The command modules are listed lazily by the CLI: import them all now.
    for target, _help in cli.COMMANDS.values():
        with contextlib.suppress(ImportError):
            importlib.import_module(target.split(":")[0])


def _child(request: dict[str, object], channel: list[int]) -> None:
    """Run one command in this (forked) process; never returns."""
    code = 1
    try:
        for fd in channel:
            os.close(fd)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        random.seed()
        os.chdir(str(request["cwd"]))
        env = request["env"]
        assert isinstance(env, dict)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in env.items()})
        for fd, key, flags in (
            (0, "stdin", os.O_RDONLY),
            (1, "stdout", os.O_WRONLY | os.O_TRUNC | os.O_CREAT),
            (2, "stderr", os.O_WRONLY | os.O_TRUNC | os.O_CREAT),
        ):
            path = request[key]
            opened = os.open(str(path) if path else os.devnull, flags, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        args = [str(a) for a in request["args"]]  # type: ignore[attr-defined]
        sys.argv = ["simtool", *args]
        from simtool.cli import main

        try:
            main(args)
            code = 0
        except SystemExit as done:
            if done.code is None:
                code = 0
            elif isinstance(done.code, int):
                code = done.code
            else:
                print(done.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:
            traceback.print_exc()
            code = 130
        except BaseException:
            # What the interpreter would print for an uncaught exception.
            traceback.print_exc()
            code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, timeout: float) -> dict[str, object]:
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"timeout": True}
        _, status = os.waitpid(pid, 0)
        return {"code": os.waitstatus_to_exitcode(status)}
    finally:
        os.close(pidfd)


def serve(read_fd: int, write_fd: int) -> None:
    """Answer requests until the client closes its end."""
    _preload()
    # The protocol must not share descriptors 0-2 with the children.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    requests = os.fdopen(read_fd, "r", encoding="utf-8")
    answers = os.fdopen(write_fd, "w", encoding="utf-8")
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request, [read_fd, write_fd, devnull])
        answers.write(json.dumps(_wait(pid, float(request["timeout"]))) + "\n")
        answers.flush()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
