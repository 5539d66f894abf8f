"""The ``simtool`` command line.

Commands are registered by dotted path and imported only when used, so that
``simtool read`` does not pay for SQLAlchemy and ``simtool db`` does not pay for
pyscard. Every command module parses, calls one API function and renders; the
one error handler here maps the project's exception tree to words and exit
codes.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from apdu.errors import ExitCode, SimtoolError

# name -> ("module:attribute" of a click command or group, one-line help). The
# help is here so that listing the commands imports none of them. Each area
# adds its own line; keep the list sorted by name.
COMMANDS: dict[str, tuple[str, str]] = {
    "apdu": (
        "simtool.commands.cardtools:apdu_command",
        "Send raw APDUs to a card; status words explained.",
    ),
    "atr": (
        "simtool.commands.card:atr_command",
        "Analyse an ATR (ISO 7816-3) from hex or a reader.",
    ),
    "audit": ("simtool.commands.audit:audit_group", "Verify the hash-chained audit trail."),
    "bench": (
        "simtool.commands.bench:bench_group",
        "The bench: watch readers, PASS or FAIL per card, every result recorded.",
    ),
    "change-form-factor": (
        "simtool.commands.workflow:change_form_factor_command",
        "Replace a line's card with one of another form factor.",
    ),
    "db": ("simtool.commands.db:db_group", "Create, upgrade and inspect the line database."),
    "demo": (
        "simtool.commands.demo:demo_command",
        "Run a provisioning pass over virtual cards, end to end.",
    ),
    "diagnose": (
        "simtool.commands.diagnose:diagnose_command",
        "A technician's verdict on a returned card, with a report.",
    ),
    "export": (
        "simtool.commands.export:export_group",
        "Exports for the operator (bundled-device IMEI list).",
    ),
    "files": (
        "simtool.commands.cardtools:files_command",
        "Walk a card's file system as far as access rules allow; decode known files.",
    ),
    "keys": ("simtool.commands.keys:keys_group", "The secrets key: status and rotation."),
    "lab": (
        "simtool.commands.lab:lab_group",
        "The virtual SIM lab: private pcscd with virtual cards.",
    ),
    "line": ("simtool.commands.line:line_group", "Add, import and update lines (orders)."),
    "lost": (
        "simtool.commands.workflow:lost_command",
        "Report a line's card lost and suspend the line.",
    ),
    "modem": (
        "simtool.commands.modem:modem_group",
        "LTE modems over AT commands: list, info, configure, simulate.",
    ),
    "pin": (
        "simtool.commands.pin:pin_group",
        "PIN status and operations that never block a card by accident.",
    ),
    "provision": (
        "simtool.commands.workflow:provision_command",
        "Check the card in a reader and bind it to a line.",
    ),
    "read": (
        "simtool.commands.card:read_command",
        "Read a card's identity and PIN counters (no attempt spent).",
    ),
    "readers": (
        "simtool.commands.card:readers_command",
        "List PC/SC readers, cards present, ATRs and card names.",
    ),
    "reissue": (
        "simtool.commands.workflow:reissue_command",
        "A new card for a line (faulty or lost), same phone number.",
    ),
    "report": ("simtool.commands.report:report_group", "What this station did (shift report)."),
    "resume": ("simtool.commands.workflow:resume_command", "Resume a suspended line."),
    "return": ("simtool.commands.workflow:return_command", "Take in a returned card."),
    "show": ("simtool.commands.show:show_group", "Current state and history of a card or a line."),
    "stock": (
        "simtool.commands.stock:stock_group",
        "Import the card vendor's stock file; list batches.",
    ),
    "suspend": ("simtool.commands.workflow:suspend_command", "Suspend a line."),
    "watch": (
        "simtool.commands.cardtools:watch_command",
        "Reader and card events as they happen (like pcsc_scan).",
    ),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module_name, attr = self._lazy[cmd_name][0].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self._lazy[cmd_name][0]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (name, self._lazy[name][1]) for name in self.list_commands(ctx) if name in self._lazy
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="simtool")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """SIM-card tooling and provisioning station.

    Reads and checks SIM cards through PC/SC readers, configures LTE modems over
    AT commands, and registers every result in the line database.
    """
    import logging  # here, not at the top: a command's start-up time counts

    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _describe(error: SimtoolError) -> str:
    text = str(error) or type(error).__name__
    return f"error: {text}"


# Attributes of project errors that may go into ``--json`` output. An
# allow-list, because some errors carry a modem's raw answer lines.
_JSON_ERROR_FIELDS = (
    "rule",
    "retries_before",
    "retries_after",
    "which",
    "operation",
    "sw",
    "iccid",
    "service_code",
    "state",
    "timeout",
    "problems",
    "checks",
    "written",
)


def error_json(error: SimtoolError) -> dict[str, Any]:
    """The ``--json`` form of a failure: scripts keep the facts (counters, rule, checks)."""
    from simtool.output import to_jsonable

    details: dict[str, Any] = {
        "type": type(error).__name__,
        "message": str(error),
        "exit_code": error.exit_code,
    }
    for name in _JSON_ERROR_FIELDS:
        value = getattr(error, name, None)
        if value is not None:
            details[name] = (
                f"{value:04X}" if name == "sw" and isinstance(value, int) else to_jsonable(value)
            )
    return {"ok": False, "error": details}


def click_exit_code(error: click.ClickException) -> ExitCode:
    """The table's code for click's own errors, the same for every command.

    A value an option does not accept is a bad request (64); an unknown
    option, a missing argument or a stray word is command-line syntax (2).
    """
    if isinstance(error, click.BadParameter) or error.exit_code == ExitCode.USAGE:
        return ExitCode.USAGE
    if isinstance(error, click.UsageError):
        return ExitCode.SYNTAX
    return ExitCode.FAILED


def main(argv: list[str] | None = None) -> None:
    """Run the command line; project errors become a message and an exit code.

    With ``--json`` a failure also prints ``{"ok": false, "error": {...}}`` on
    stdout, so scripts get the counters, rule or checks without parsing text.
    """
    args = sys.argv[1:] if argv is None else argv
    try:
        cli.main(args=args, prog_name="simtool", standalone_mode=False)
    except SimtoolError as error:
        click.echo(_describe(error), err=True)
        if "--json" in args:
            from simtool.output import emit_json, json_written

            # A command that already printed its verdict (audit verify) keeps it.
            if not json_written():
                emit_json(error_json(error))
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except click.ClickException as error:
        error.show()
        code = click_exit_code(error)
        if "--json" in args:
            from simtool.output import emit_json, json_written

            if not json_written():
                emit_json(
                    {
                        "ok": False,
                        "error": {
                            "type": "UsageError",
                            "message": error.format_message(),
                            "exit_code": code,
                        },
                    }
                )
        sys.exit(code)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    sys.exit(ExitCode.OK)


if __name__ == "__main__":
    main()
