"""Run the real ``simtool`` command in a subprocess, as an operator or a script would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any


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


def simtool(
    *args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> CliResult:
    """``python -m simtool ARGS`` with this process's environment (plus ``env``)."""
    full_env = {**os.environ, **(env or {})}
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
