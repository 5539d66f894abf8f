"""Benchmark: reading lab cards through real pcscd + vpcd.

Measures, for ``read_card`` on one lab card:
- APDUs per full read (and per ICCID-only read);
- wall time per read (median, p95) through simtool's transport (deadline,
  tracing hooks, T=0 chores) next to the floor, interleaved read by read in
  the same run: the same APDU sequence sent with bare pyscard
  ``SCardTransmit`` inside one ``SCardBeginTransaction``/``EndTransaction``
  (the same pcscd calls), and without the transaction;
- wall time and CPU time (user + system) of ``simtool read --json`` as a whole
  process, next to a bare pyscard script sending the same APDUs;
- cards per minute with several readers read in parallel threads.

Usage: .venv/bin/python bench/bench_card_read.py [--reads 200] [--readers 8]
Writes bench/results/card_read.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# A bare pyscard script doing the same read as ``simtool read --json``: one
# context, one connection, one transaction, the APDUs, JSON out.
BARE_READ = """
import json, sys
from smartcard import scard
reader, commands = sys.argv[1], [bytes.fromhex(c) for c in sys.argv[2:]]
_, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
_, card, proto = scard.SCardConnect(ctx, reader, scard.SCARD_SHARE_SHARED, 3)
pci = scard.SCARD_PCI_T1 if proto == scard.SCARD_PROTOCOL_T1 else scard.SCARD_PCI_T0
scard.SCardBeginTransaction(card)
out = [bytes(scard.SCardTransmit(card, pci, list(c))[1]).hex() for c in commands]
scard.SCardEndTransaction(card, scard.SCARD_LEAVE_CARD)
scard.SCardDisconnect(card, scard.SCARD_RESET_CARD)
scard.SCardReleaseContext(ctx)
print(json.dumps(out))
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--processes", type=int, default=10)
    args = parser.parse_args()

    labdir = Path(tempfile.mkdtemp(prefix="simtool-bench-"))
    os.environ["SIMTOOL_LAB_DIR"] = str(labdir)
    from apdu.lab import Lab

    lab = Lab.up(cards=args.readers, labdir=labdir)
    os.environ["PCSCLITE_CSOCK_NAME"] = str(lab.pcsc_socket)
    try:
        results = run(lab, args)
    finally:
        lab.down()
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "card_read.json").write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:40s} {value}")


def run(lab: object, args: argparse.Namespace) -> dict[str, object]:
    from smartcard import scard

    from apdu.card import read_card, read_iccid
    from apdu.transport.pcsc import PcscTransport
    from apdu.transport.trace import Tracer

    reader = lab.reader_name(0)  # type: ignore[attr-defined]
    # Record the exact APDU sequence of one read (unmasked, in memory) for the floor.
    sequence: list[bytes] = []

    class Recorder(Tracer):
        def record(self, command: bytes, response: bytes, seconds: float, reader: str = "") -> None:
            sequence.append(command)

    import io

    transport = PcscTransport(reader, tracer=Recorder(io.StringIO()))
    identity = read_card(transport)
    transport.disconnect()

    iccid_transport = PcscTransport(reader)
    iccid_transport.connect()
    before = iccid_transport.stats.apdus
    assert read_iccid(iccid_transport) == identity.iccid
    iccid_apdus = iccid_transport.stats.apdus - before
    iccid_transport.disconnect()

    # Interleaved: one simtool read, then the same APDUs bare, and so on, so
    # that host load affects both alike.
    transport = PcscTransport(reader)
    transport.connect()
    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hresult == 0
    hresult, card, _protocol = scard.SCardConnect(
        ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0
    )
    assert hresult == 0
    # The same reads through the per-APDU worker thread the deadline used
    # before (kept as the fallback where a context's socket is unknown).
    handoff = PcscTransport(lab.reader_name(1 % args.readers))  # type: ignore[attr-defined]
    handoff.connect()
    handoff.needs_watchdog = True
    times: list[float] = []
    handoff_times: list[float] = []
    floor: list[float] = []
    floor_bare: list[float] = []
    for _ in range(args.reads):
        transport.reset()
        started = time.perf_counter()
        read_card(transport)
        times.append(time.perf_counter() - started)
        handoff.reset()
        started = time.perf_counter()
        read_card(handoff)
        handoff_times.append(time.perf_counter() - started)
        for with_transaction, into in ((True, floor), (False, floor_bare)):
            scard.SCardReconnect(
                card, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0, scard.SCARD_RESET_CARD
            )
            started = time.perf_counter()
            if with_transaction:
                scard.SCardBeginTransaction(card)
            for command in sequence:
                scard.SCardTransmit(card, scard.SCARD_PCI_T0, list(command))
            if with_transaction:
                scard.SCardEndTransaction(card, scard.SCARD_LEAVE_CARD)
            into.append(time.perf_counter() - started)
    transport.disconnect()
    handoff.disconnect()
    scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
    scard.SCardReleaseContext(ctx)
    ratios = sorted(t / f for t, f in zip(times, floor, strict=True))

    def process_runs(command: list[str], env: dict[str, str]) -> tuple[list[float], float]:
        """Wall times of ``command`` and its median CPU time (user + system, children)."""
        subprocess.run(command, check=True, capture_output=True, env=env)  # warm caches
        out = []
        cpu = []
        for _ in range(args.processes):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env)
            out.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        return out, statistics.median(cpu)

    simtool_read = [sys.executable, "-m", "simtool", "read", "--reader", "lab:0", "--json"]
    bare_script = [sys.executable, "-c", BARE_READ, reader, *(c.hex() for c in sequence)]
    # With bytecode caching (a normal install) and without (PYTHONDONTWRITEBYTECODE=1,
    # as on this project's CI machines, where every run compiles every module).
    cached_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    process_times, process_cpu = process_runs(simtool_read, cached_env)
    bare_times, bare_cpu = process_runs(bare_script, cached_env)
    uncached_times, _ = process_runs(simtool_read, {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})

    # Parallel readers: one thread per reader, each reading its card repeatedly.
    per_reader = max(10, args.reads // 4)
    counts = [0] * args.readers

    def worker(slot: int) -> None:
        t = PcscTransport(lab.reader_name(slot))  # type: ignore[attr-defined]
        t.connect()
        for _ in range(per_reader):
            t.reset()
            read_card(t)
            counts[slot] += 1
        t.disconnect()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started

    return {
        "apdus_full_read": identity.apdu_count,
        "apdus_iccid_only": iccid_apdus,
        "read_ms_median": round(statistics.median(times) * 1000, 3),
        "read_ms_p95": round(percentile(times, 0.95) * 1000, 3),
        "read_with_worker_handoff_ms_median": round(statistics.median(handoff_times) * 1000, 3),
        "floor_pyscard_same_calls_ms_median": round(statistics.median(floor) * 1000, 3),
        "floor_pyscard_same_calls_ms_p95": round(percentile(floor, 0.95) * 1000, 3),
        "floor_pyscard_apdus_only_ms_median": round(statistics.median(floor_bare) * 1000, 3),
        "read_over_floor_median": round(statistics.median(ratios), 3),
        "read_over_apdus_only_floor": round(
            statistics.median(times) / statistics.median(floor_bare), 3
        ),
        "process_simtool_read_ms_median": round(statistics.median(process_times) * 1000, 1),
        "process_bare_pyscard_ms_median": round(statistics.median(bare_times) * 1000, 1),
        "process_simtool_read_cpu_ms": round(process_cpu * 1000, 1),
        "process_bare_pyscard_cpu_ms": round(bare_cpu * 1000, 1),
        "process_cpu_ratio": round(process_cpu / bare_cpu, 2),
        "process_simtool_read_no_bytecode_ms_median": round(
            statistics.median(uncached_times) * 1000, 1
        ),
        "parallel_readers": args.readers,
        "parallel_cards_per_minute": round(sum(counts) / elapsed * 60),
    }


if __name__ == "__main__":
    main()
