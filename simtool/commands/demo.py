"""``simtool demo``: the station's main job on its embedded defaults."""

from __future__ import annotations

import click
from rich.console import Console

from simtool.config import Settings, load_settings, station_options
from simtool.options import json_option
from simtool.output import render, table, to_jsonable


@click.command("demo")
@click.option(
    "--cards",
    type=click.IntRange(1, 16),
    default=6,
    show_default=True,
    help="Virtual cards in the lab (one order each).",
)
@click.option(
    "--dialect",
    default="quectel",
    show_default=True,
    help="Dialect of the simulated bundled router.",
)
@click.option("--keep-lab", is_flag=True, help="Leave the lab running afterwards.")
@json_option
@station_options
def demo_command(
    cards: int, dialect: str, keep_lab: bool, as_json: bool, settings: Settings
) -> None:
    """Run a provisioning pass over virtual cards, end to end.

    Brings up the virtual SIM lab, imports the card vendor's stock file into a
    new SQLite line database (or --db), creates one order per card, checks and
    binds each card in its reader (PIN1 proven to be 0000), configures a
    simulated LTE router for the first line over its AT port, refuses one order
    placed with the wrong form factor, and verifies the audit chain.
    """
    from simtool.config import default_database_path
    from simtool.station import default_demo_database, run_pass

    # The pass gets a database of its own unless one was chosen (flag, environment
    # or config file): the station's real line database is never filled with lab cards.
    if settings.db == str(default_database_path()):
        settings = load_settings(
            db=default_demo_database(settings),
            operator=settings.operator,
            station=settings.station,
            key_file=settings.key_file,
        )
    result = run_pass(settings, cards=cards, dialect=dialect, keep_lab=keep_lab)
    data = {"ok": result.ok, "provisioned": result.provisioned, **to_jsonable(result)}

    def human(console: Console) -> None:
        console.print(f"Line database: {result.database}")
        console.print(
            f"Vendor stock file imported: {result.stock_cards} cards; simulated "
            f"router on {result.modem_port} ({dialect})"
        )
        console.print(
            table(
                "Provisioning pass",
                [
                    "slot",
                    "ICCID",
                    "line",
                    "function",
                    "form factor",
                    "result",
                    "PIN1",
                    "router IMEI",
                    "s",
                ],
                [
                    (
                        o.slot,
                        o.iccid,
                        o.service_code,
                        o.function_class,
                        o.form_factor,
                        o.outcome,
                        o.pin,
                        o.device_imei,
                        f"{o.seconds:.2f}",
                    )
                    for o in result.orders
                ],
            )
        )
        for order in result.orders:
            if order.outcome != "provisioned":
                console.print(f"slot {order.slot}, {order.form_factor} asked: {order.detail}")
        rate = result.provisioned / result.seconds * 60 if result.seconds else 0.0
        console.print(
            f"{result.provisioned} cards provisioned in {result.seconds:.1f} s "
            f"({rate:.0f} cards/min, lab start included); audit chain "
            f"{'verified' if result.audit_ok else 'BROKEN'} "
            f"({result.audit_events} events)"
        )
        console.print(
            f"Look at a card: simtool show card {result.orders[0].iccid} --db {result.database}"
        )

    render(data, as_json, human)
    if not result.ok:
        raise SystemExit(1)
