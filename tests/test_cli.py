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
