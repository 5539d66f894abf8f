"""``simtool audit``: check the hash-chained audit trail."""

from __future__ import annotations

import click
from rich.console import Console

from provisioning.audit import verify_audit
from simtool.config import Settings, station_options
from simtool.options import json_option
from simtool.output import render


@click.group("audit")
def audit_group() -> None:
    """The audit trail of every station action."""


@audit_group.command("verify")
@station_options
@json_option
def verify_command(settings: Settings, as_json: bool) -> None:
    """Recompute every station's chain; name the first edited, inserted or deleted event."""
    verification = verify_audit(settings.database())

    def human(console: Console) -> None:
        if verification.ok:
            console.print(
                f"audit trail intact: {verification.events} events on "
                f"{verification.chains} station chains, last event {verification.head_seq}, "
                f"heads digest {verification.head_hash}"
            )
        else:
            console.print(
                f"audit chain BROKEN at event {verification.problem_seq} "
                f"({verification.problem_kind}): {verification.problem}"
            )

    render(verification, as_json, human)
    verification.raise_if_broken()
