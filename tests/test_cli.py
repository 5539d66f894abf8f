"""The command registry: every command imports, and its listed help is its own."""

from __future__ import annotations

import click
import pytest

from simtool.cli import COMMANDS, cli


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_registered_command_imports_and_has_help(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert isinstance(command, click.Command)
    assert command.help, name
    assert COMMANDS[name][1]


def test_commands_are_sorted() -> None:
    assert list(COMMANDS) == sorted(COMMANDS)


def test_json_failure_is_one_document_with_the_facts(tmp_path: object) -> None:
    from tests.support.cli import simtool

    result = simtool("atr", "3B9F9", "--json")
    assert result.code == 65
    assert result.json["ok"] is False
    assert result.json["error"]["exit_code"] == 65


def test_bad_trace_path_is_a_usage_error() -> None:
    from tests.support.cli import simtool

    result = simtool("read", "--reader", "lab:0", "--trace", "/nonexistent/dir/t.jsonl")
    assert result.code in (64, 69), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.lab
def test_stopped_lab_is_named_when_pcscd_does_not_answer(tmp_path: object) -> None:
    from pathlib import Path

    from tests.support.cli import simtool

    labdir = Path(str(tmp_path)) / "lab"
    env = {"SIMTOOL_LAB_DIR": str(labdir)}
    assert simtool("lab", "up", "--cards", "1", env=env).code == 0
    assert simtool("lab", "down", env=env).code == 0
    result = simtool(
        "readers", env={**env, "PCSCLITE_CSOCK_NAME": str(labdir / "pcscd/pcscd.comm")}
    )
    assert result.code == 3
    assert f"the lab in {labdir} is not running" in result.stderr
