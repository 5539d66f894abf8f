"""``simtool lab``: the virtual SIM lab (a private pcscd with virtual cards)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from apdu.errors import UsageError
from apdu.lab import Lab, SlotInfo
from apdu.lab.latency import MAX_LATENCY_MS
from apdu.lab.layout import MAX_SLOTS, PCSC_SOCKET_ENV
from provisioning.labstock import write_lab_stock_file
from simtool.options import json_option
from simtool.output import console, render, table


def _labdir(ctx: click.Context) -> Path | None:
    value = ctx.find_root().meta.get("apdu.lab.labdir")
    return None if value is None else Path(value)


def _slot_rows(slots: list[SlotInfo]) -> list[tuple[Any, ...]]:
    return [(s.slot, s.reader, s.state, s.iccid, s.imsi, s.form_factor, s.profile) for s in slots]


def _print_slots(out: Console, title: str, slots: list[SlotInfo]) -> None:
    if not out.is_terminal:
        # Piped or logged: one line per slot rather than cells wrapped at 80 columns.
        out.width = max(out.width, 140)
    out.print(_slots_table(title, slots))


def _slots_table(title: str, slots: list[SlotInfo]) -> Any:
    return table(
        title,
        ["slot", "reader", "card", "ICCID", "IMSI", "form factor", "profile"],
        _slot_rows(slots),
    )


def _lab_json(lab: Lab) -> dict[str, Any]:
    return {
        "labdir": str(lab.labdir),
        "pcsc_socket": str(lab.pcsc_socket),
        "environment": lab.pcsc_environment(),
        "supervisor_pid": lab.supervisor_pid,
        "pcscd_pid": lab.pcscd_pid,
        "notes": list(lab.notes),
        "slots": [s.to_json_dict() for s in lab.slots],
    }


@click.group("lab")
@click.option(
    "--labdir",
    type=click.Path(file_okay=False),
    default=None,
    help="Lab directory (default: $SIMTOOL_LAB_DIR, /run/simtool/lab as root, "
    "else $XDG_RUNTIME_DIR/simtool/lab).",
)
@click.pass_context
def lab_group(ctx: click.Context, labdir: str | None) -> None:
    """The virtual SIM lab: virtual cards in virtual readers, through a private pcscd.

    A system pcscd serving real readers is never touched. Programs reach the
    lab's readers with PCSCLITE_CSOCK_NAME set to the lab's socket (`lab up`
    prints the line).
    """
    ctx.find_root().meta["apdu.lab.labdir"] = labdir


@lab_group.command("up")
@click.option(
    "--cards",
    type=click.IntRange(0, MAX_SLOTS),
    default=None,
    help="Number of virtual cards (default 2, or one per --profile).",
)
@click.option(
    "--slots",
    type=click.IntRange(1, MAX_SLOTS),
    default=None,
    help="Number of reader slots (default: the cards, rounded up to even).",
)
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    metavar="FILE|NAME",
    help="Card profile for the next slot (repeatable); other slots get lab stock.",
)
@click.option(
    "--seed",
    type=click.IntRange(0),
    default=None,
    help="Seed of the lab stock cards' identities and secrets (default 0).",
)
@click.option(
    "--fresh", is_flag=True, help="Start every card with fresh state (forget blocked PINs etc.)."
)
@click.option(
    "--timeout",
    type=click.FloatRange(1.0),
    default=20.0,
    show_default=True,
    help="Seconds to wait for every card to be seen.",
)
@click.option(
    "--latency",
    type=click.FloatRange(0.0, MAX_LATENCY_MS),
    default=None,
    metavar="MS",
    help="Every card answers each command APDU after MS milliseconds, as real SIMs do "
    "(default 0; also changes a running lab).",
)
@click.option(
    "--jitter",
    type=click.FloatRange(0.0, MAX_LATENCY_MS),
    default=0.0,
    metavar="MS",
    help="With --latency: a uniform random +-MS on each delay.",
)
@json_option
@click.pass_context
def up_command(
    ctx: click.Context,
    cards: int | None,
    slots: int | None,
    profiles: tuple[str, ...],
    seed: int | None,
    fresh: bool,
    timeout: float,
    latency: float | None,
    jitter: float,
    as_json: bool,
) -> None:
    """Start the lab: a private pcscd and one virtual card per slot.

    When a lab is already up it is left as it is if it has what the options
    given ask for (the cards, profiles, seed, slots; fresh cards); if not,
    this fails and says what differs: run `lab down` first.
    """
    if jitter and latency is None:
        raise UsageError("--jitter goes with --latency")
    lab = Lab.up(
        cards, profiles, seed=seed, slots=slots, labdir=_labdir(ctx), fresh=fresh, timeout=timeout
    )
    applied = None if latency is None else lab.set_latency(latency, jitter)

    def human(out: Console) -> None:
        if not lab.started:
            out.print(
                f"The lab is already up in {lab.labdir} with what was asked (left unchanged)."
            )
        for note in lab.notes:
            out.print(f"note: {note}")
        if applied is not None:
            out.print(f"Cards answer each APDU after {applied[0]:g} ms (jitter {applied[1]:g} ms).")
        _print_slots(out, f"Lab in {lab.labdir}", lab.slots)
        out.print("Use the lab's readers from a shell with:")
        out.print(f"export {PCSC_SOCKET_ENV}={lab.pcsc_socket}")

    latency_json = None if applied is None else {"ms": applied[0], "jitter_ms": applied[1]}
    render({**_lab_json(lab), "started": lab.started, "latency": latency_json}, as_json, human)


@lab_group.command("status")
@json_option
@click.pass_context
def status_command(ctx: click.Context, as_json: bool) -> None:
    """Slots, readers and the card in each (ICCID, IMSI, form factor)."""
    lab = Lab.running(_labdir(ctx))

    def human(out: Console) -> None:
        for note in lab.notes:
            out.print(f"note: {note}")
        _print_slots(out, f"Lab in {lab.labdir}", lab.slots)
        out.print(f"export {PCSC_SOCKET_ENV}={lab.pcsc_socket}")

    render(_lab_json(lab), as_json, human)


@lab_group.command("remove")
@click.argument("slot", type=click.IntRange(0, MAX_SLOTS - 1))
@json_option
@click.pass_context
def remove_command(ctx: click.Context, slot: int, as_json: bool) -> None:
    """Pull the card out of SLOT (it keeps its state; `insert SLOT` puts it back)."""
    info = Lab.running(_labdir(ctx)).remove(slot)
    render(
        info.to_json_dict(),
        as_json,
        lambda out: out.print(f"slot {slot} ({info.reader}): card {info.iccid} removed"),
    )


@lab_group.command("insert")
@click.argument("slot", type=click.IntRange(0, MAX_SLOTS - 1))
@click.option(
    "--profile",
    default=None,
    metavar="FILE|NAME",
    help="Insert a NEW card with this profile (fresh state) instead of the card "
    "that was in the slot.",
)
@json_option
@click.pass_context
def insert_command(ctx: click.Context, slot: int, profile: str | None, as_json: bool) -> None:
    """Insert a card into SLOT: the one removed from it, or a new one (--profile)."""
    info = Lab.running(_labdir(ctx)).insert(slot, profile)
    render(
        info.to_json_dict(),
        as_json,
        lambda out: out.print(f"slot {slot} ({info.reader}): card {info.iccid} inserted"),
    )


@lab_group.command("down")
@click.pass_context
def down_command(ctx: click.Context) -> None:
    """Stop the lab: its pcscd and its virtual cards, nothing else."""
    lab = Lab.find(_labdir(ctx))
    if lab is None:
        console().print("No lab is running.")
        return
    lab.down()
    console().print(f"The lab in {lab.labdir} is down.")


@lab_group.command("stock-file")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@click.option(
    "--cards",
    type=click.IntRange(0, MAX_SLOTS),
    default=None,
    help="Describe the cards `lab up --cards N` makes (no lab needed).",
)
@click.option(
    "--seed",
    type=click.IntRange(0),
    default=None,
    help="With --cards: the seed `lab up` would use (default 0).",
)
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    metavar="FILE|NAME",
    help="With --cards: the profiles `lab up` would be given.",
)
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@click.pass_context
def stock_file_command(
    ctx: click.Context,
    out: str,
    cards: int | None,
    seed: int | None,
    profiles: tuple[str, ...],
    force: bool,
) -> None:
    """Write the card vendor's data file (CSV, with secrets) for the lab's cards.

    Without --cards/--seed/--profile it describes the cards of the running lab.
    The file is created with mode 0600 and its content is never printed.
    """
    rows = write_lab_stock_file(
        out, cards=cards, seed=seed, profiles=profiles, labdir=_labdir(ctx), overwrite=force
    )
    console().print(f"Wrote {rows} cards to {out} (mode 0600: it holds PINs, PUKs and keys).")
