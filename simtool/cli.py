"""The ``simtool`` command line.

Commands are registered by dotted path and imported only when used, so that
``simtool read`` does not pay for SQLAlchemy and ``simtool db`` does not pay for
pyscard. Every command module parses, calls one API function and renders; the
one error handler here maps the project's exception tree to words and exit
codes.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from apdu.errors import SimtoolError

# name -> "module:attribute" of a click command or group. Each area adds its own
# line; keep the list sorted by name.
COMMANDS: dict[str, str] = {
    "atr": "simtool.commands.card:atr_command",
    "audit": "simtool.commands.audit:audit_group",
    "change-form-factor": "simtool.commands.workflow:change_form_factor_command",
    "db": "simtool.commands.db:db_group",
    "export": "simtool.commands.export:export_group",
    "keys": "simtool.commands.keys:keys_group",
    "lab": "simtool.commands.lab:lab_group",
    "line": "simtool.commands.line:line_group",
    "lost": "simtool.commands.workflow:lost_command",
    "modem": "simtool.commands.modem:modem_group",
    "pin": "simtool.commands.pin:pin_group",
    "provision": "simtool.commands.workflow:provision_command",
    "read": "simtool.commands.card:read_command",
    "readers": "simtool.commands.card:readers_command",
    "reissue": "simtool.commands.workflow:reissue_command",
    "report": "simtool.commands.report:report_group",
    "resume": "simtool.commands.workflow:resume_command",
    "return": "simtool.commands.workflow:return_command",
    "show": "simtool.commands.show:show_group",
    "stock": "simtool.commands.stock:stock_group",
    "suspend": "simtool.commands.workflow:suspend_command",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module_name, attr = self._lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self._lazy[cmd_name]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="simtool")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """SIM-card tooling and provisioning station.

    Reads and checks SIM cards through PC/SC readers, configures LTE modems over
    AT commands, and registers every result in the line database.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _describe(error: SimtoolError) -> str:
    text = str(error) or type(error).__name__
    return f"error: {text}"


def main(argv: list[str] | None = None) -> None:
    """Run the command line; project errors become a message and an exit code."""
    try:
        cli.main(args=argv, prog_name="simtool", standalone_mode=False)
    except SimtoolError as error:
        click.echo(_describe(error), err=True)
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(0)


if __name__ == "__main__":
    main()
