"""One spelling of the exit codes: the ``ExitCode`` enum, and the README's table of it."""

from __future__ import annotations

import re
from pathlib import Path

from apdu.errors import ExitCode, SimtoolError

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_table() -> dict[int, str]:
    """The rows of the README's exit-code table: code -> meaning."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    return {
        int(code): meaning.strip()
        for code, meaning in re.findall(r"^\| (\d+) \| (.+) \|$", section, re.MULTILINE)
    }


def test_readme_table_is_the_enum() -> None:
    table = readme_table()
    assert sorted(table) == sorted(code.value for code in ExitCode)
    assert list(table) == sorted(table)  # in order, as a reader looks things up
    assert all(table.values())


def _subclasses(cls: type[SimtoolError]) -> list[type[SimtoolError]]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def test_every_error_exits_with_a_member_of_the_enum() -> None:
    # Import every package that defines errors, so that all subclasses exist.
    import apdu.lab.errors
    import apdu.pin
    import modem.errors
    import provisioning.errors

    assert apdu.pin and modem.errors and provisioning.errors and apdu.lab.errors
    errors: list[type[SimtoolError]] = [SimtoolError, *_subclasses(SimtoolError)]
    for error in errors:
        assert isinstance(error.exit_code, ExitCode), (error, error.exit_code)


def test_no_other_spelling_of_exit_codes() -> None:
    """No ``EXIT_*`` constants and no bare ``exit_code = <number>`` in the packages."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for package in ("apdu", "modem", "provisioning", "simtool"):
        for source in (root / package).rglob("*.py"):
            text = source.read_text(encoding="utf-8")
            for pattern in (r"^\s*EXIT_[A-Z_]+\s*=", r"exit_code\s*=\s*\d", r"sys\.exit\(\d"):
                offenders += [
                    f"{source.relative_to(root)}: {m.group(0).strip()}"
                    for m in re.finditer(pattern, text, re.MULTILINE)
                ]
    assert offenders == []
