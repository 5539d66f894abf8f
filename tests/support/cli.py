"""Run the real ``simtool`` command in a process of its own, as an operator or a script would.

Each run is a separate process with its own environment, working directory
and standard streams. By default the process is forked from a server that
has already imported simtool and its libraries (``tests/support/zygote.py``),
which saves about 0.4 s of CPU per run; ``fresh=True`` (or
``SIMTOOL_TEST_FRESH_CLI=1`` for the whole suite) starts a new interpreter
instead, for tests about start-up itself.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ZYGOTE = Path(__file__).with_name("zygote.py")
FRESH_ENV = "SIMTOOL_TEST_FRESH_CLI"


@dataclass
class CliResult:
    """Exit code and output of one ``simtool`` run."""

    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        """stdout parsed as JSON."""
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        """stdout and stderr together (for secret-leak checks)."""
        return self.stdout + self.stderr


class _ForkServer:
    """One zygote per test process, started on first use, stopped at exit."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.requests: Any = None
        self.answers: Any = None

    def _start(self) -> None:
        to_server_r, to_server_w = os.pipe()
        from_server_r, from_server_w = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, str(ZYGOTE), str(to_server_r), str(from_server_w)],
            pass_fds=(to_server_r, from_server_w),
            stdin=subprocess.DEVNULL,
            env=dict(os.environ),
        )
        os.close(to_server_r)
        os.close(from_server_w)
        self.requests = os.fdopen(to_server_w, "w", encoding="utf-8")
        self.answers = os.fdopen(from_server_r, "r", encoding="utf-8")
        atexit.register(self.stop)

    def stop(self) -> None:
        if self.process is not None:
            self.requests.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None

    def run(
        self, args: list[str], input: str | None, env: dict[str, str], timeout: float
    ) -> CliResult | None:
        """Run one command; None when the server is busy (another thread) or gone."""
        if not self.lock.acquire(blocking=False):
            return None
        try:
            if self.process is None or self.process.poll() is not None:
                self._start()
            with tempfile.TemporaryDirectory(prefix="simtool-cli-") as scratch:
                streams = {name: os.path.join(scratch, name) for name in ("out", "err", "in")}
                if input is not None:
                    Path(streams["in"]).write_text(input)
                request = {
                    "args": args,
                    "env": env,
                    "cwd": os.getcwd(),
                    "stdin": streams["in"] if input is not None else None,
                    "stdout": streams["out"],
                    "stderr": streams["err"],
                    "timeout": timeout,
                }
                self.requests.write(json.dumps(request) + "\n")
                self.requests.flush()
                line = self.answers.readline()
                if not line:
                    self.process = None
                    return None
                answer = json.loads(line)
                stdout = Path(streams["out"]).read_text(errors="replace")
                stderr = Path(streams["err"]).read_text(errors="replace")
            if answer.get("timeout"):
                raise subprocess.TimeoutExpired(["simtool", *args], timeout, stdout, stderr)
            return CliResult(int(answer["code"]), stdout, stderr)
        finally:
            self.lock.release()


_server = _ForkServer()


def simtool(
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    fresh: bool = False,
) -> CliResult:
    """``simtool ARGS`` in a process of its own, with this process's environment plus ``env``."""
    full_env = {**os.environ, **(env or {})}
    if not fresh and os.environ.get(FRESH_ENV) != "1":
        result = _server.run([str(a) for a in args], input, full_env, timeout)
        if result is not None:
            return result
    proc = subprocess.run(
        [sys.executable, "-m", "simtool", *args],
        input=input,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
