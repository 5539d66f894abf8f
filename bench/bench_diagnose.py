"""Benchmark: one diagnosis (``diagnose_card``) per lab card, through real pcscd + vpcd.

Starts a private lab with cards of the profiles default, blocked-pin,
puk-blocked, auth-fault, fs-corrupt and classic-sim plus one lab stock card
missing from the stock import, imports the others into a fresh SQLite line
database, and measures for each card:
- APDUs per diagnosis (evidence, counters, authentication test when the
  database holds the keys, counters again);
- wall time per diagnosis (median, p95) including the database look-ups and
  the audit event;
then the wall time of ``simtool diagnose --json`` as a whole process, and the
time a mute card costs (the per-APDU deadline, set here to 0.5 s).

Usage: .venv/bin/python bench/bench_diagnose.py [--runs 30]
Writes bench/results/diagnose.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROFILES = ("default", "blocked-pin", "puk-blocked", "auth-fault", "fs-corrupt", "classic-sim")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main() -> None:
    """Run the benchmark and print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="Diagnoses per card.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="simtool-bench-diag-", dir="/tmp"))
    labdir = work / "lab"
    os.environ["SIMTOOL_LAB_DIR"] = str(labdir)
    from apdu.lab import Lab
    from apdu.transport.pcsc import PcscTransport, use_pcsc_socket
    from apdu.virtual import lab_profile, load_profile
    from provisioning.audit import Actor
    from provisioning.database import Database
    from provisioning.diagnosis import diagnose_card
    from provisioning.labstock import write_stock_file
    from provisioning.secrets import Keyring
    from provisioning.stock import import_stock

    profiles = [load_profile(name) for name in PROFILES]
    stranger = lab_profile(900)
    mute = load_profile("mute")
    lab = Lab.up(profiles=[*profiles, stranger, mute], labdir=labdir, fresh=True)
    try:
        use_pcsc_socket(lab.pcsc_socket)
        database = Database(str(work / "lines.db"))
        database.init()
        keyring = Keyring(key_file=work / "secrets.key")
        actor = Actor(operator="bench", station="bench-diagnose")
        stock = work / "stock.csv"
        write_stock_file(stock, [*profiles, mute])
        import_stock(database, keyring, actor, stock)

        results: dict[str, dict[str, object]] = {}
        for slot, profile in enumerate([*profiles, stranger]):
            name = "stranger" if profile is stranger else profile.name
            times: list[float] = []
            apdus: set[int] = set()
            verdict = ""
            with PcscTransport(lab.reader_name(slot)) as transport:
                for _ in range(args.runs):
                    transport.reset()
                    started = time.perf_counter()
                    diagnosis = diagnose_card(transport, database, keyring, actor)
                    times.append(time.perf_counter() - started)
                    apdus.add(diagnosis.apdus)
                    verdict = diagnosis.verdict.value
            results[name] = {
                "verdict": verdict,
                "apdus": sorted(apdus),
                "median_ms": round(statistics.median(times) * 1000, 2),
                "p95_ms": round(_p95(times) * 1000, 2),
            }

        mute_slot = len(profiles) + 1
        started = time.perf_counter()
        transport = PcscTransport(lab.reader_name(mute_slot), timeout=0.5)
        try:
            diagnosis = diagnose_card(transport, database, keyring, actor, scanned_iccid=mute.iccid)
        finally:
            transport.disconnect()
        results["mute"] = {
            "verdict": diagnosis.verdict.value,
            "apdus": [diagnosis.apdus],
            "seconds_with_0.5s_deadline": round(time.perf_counter() - started, 3),
        }
        lab.remove(mute_slot)

        env = {
            **os.environ,
            "SIMTOOL_DB": str(work / "lines.db"),
            "SIMTOOL_KEY_FILE": str(work / "secrets.key"),
            "SIMTOOL_OPERATOR": "bench",
            "SIMTOOL_STATION": "bench-diagnose",
            "SIMTOOL_CONFIG": str(work / "none.toml"),
            "PCSCLITE_CSOCK_NAME": str(lab.pcsc_socket),
        }
        process: list[float] = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "simtool", "diagnose", "--reader", "lab:0", "--json"],
                env=env,
                check=True,
                capture_output=True,
            )
            process.append(time.perf_counter() - started)
        summary = {
            "runs": args.runs,
            "cards": results,
            "process_median_s": round(statistics.median(process), 3),
        }
    finally:
        lab.down()
    out = ROOT / "bench" / "results" / "diagnose.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    for name, figures in results.items():
        print(f"{name:12} {json.dumps(figures)}")
    print(f"simtool diagnose --json (whole process): {summary['process_median_s']} s median")


if __name__ == "__main__":
    main()
