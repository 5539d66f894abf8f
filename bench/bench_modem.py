"""Benchmark: AT round trips and configure + verify per dialect, through a real pty.

The simulated modem runs as its own process (``python -m modem.simulator``)
with a simulated latency per command (default 20 ms), as a USB modem's AT
port would answer; the client opens the pty with pyserial. Measured:

- AT round trip (``AT+CSQ``): median and p95 wall time, and the overhead of
  the station's channel on top of the simulated latency;
- per dialect: wall time and AT round trips (command lines; chained
  commands count once) of the first ``configure`` (read, write, apply, read
  back) and of a second run (which writes nothing where every field reads
  back equal, and rewrites the credentials in place, without a detach or a
  radio cycle, where the modem cannot read the password back), the ratio of
  the wall time to the round-trip floor (round trips x latency), whether the
  second run cycled the radio, a ``connect`` (activation, address, and
  deactivation) and ``info``;
- the same first configure at 0 ms latency (the station's own cost).

The SIM is the default card profile with PIN1 disabled, as in a router that
attaches by itself, so every dialect applies its settings and connects.

Nothing sleeps: every wait is on data. Usage:
    .venv/bin/python bench/bench_modem.py [--latency 0.02] [--round-trips 200]
Writes bench/results/modem.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Simulator:
    """A simulator process on a pty; stopped with SIGTERM."""

    def __init__(self, dialect: str, latency: float, profile: str | None = None) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modem.simulator",
                "--dialect",
                dialect,
                "--latency",
                str(latency),
                *(["--profile", profile] if profile else []),
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 15.0)
        if not ready:
            self.process.kill()
            raise SystemExit(f"simulator for {dialect} did not start")
        self.path = self.process.stdout.readline().strip()

    def stop(self) -> None:
        """End the simulator process."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)


def round_trips(path: str, count: int, latency: float) -> dict[str, Any]:
    """Time ``count`` AT+CSQ exchanges on an open modem."""
    from modem.modem import Modem

    with Modem.open(path) as modem:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            modem.channel.execute("AT+CSQ")
            times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {
        "count": count,
        "median_ms": round(median * 1000, 3),
        "p95_ms": round(percentile(times, 0.95) * 1000, 3),
        "overhead_median_ms": round((median - latency) * 1000, 3),
    }


def pin_off_profile() -> str:
    """A card profile file: the default card with PIN1 disabled."""
    profile = json.loads((ROOT / "apdu" / "virtual" / "profiles" / "default.json").read_text())
    profile["pin1_enabled"] = False
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(profile, handle)
    return handle.name


def configure_runs(dialect: str, latency: float, profile: str) -> dict[str, Any]:
    """Configure twice, connect and read info against a fresh simulator of ``dialect``."""
    from modem.configure import configure
    from modem.connect import connect
    from modem.info import gather_info
    from modem.modem import Modem
    from modem.profiles import IJMIO

    sim = Simulator(dialect, latency, profile)
    try:
        figures: dict[str, Any] = {}
        for run in ("first", "second"):
            started = time.perf_counter()
            with Modem.open(sim.path) as modem:
                result = configure(modem, IJMIO)
                commands = modem.channel.stats.commands
            elapsed = time.perf_counter() - started
            assert result.verified, result
            figures[run] = {
                "seconds": round(elapsed, 4),
                "at_commands": commands,
                "floor_ratio": round(elapsed / (commands * latency), 2) if latency else None,
                "written": len(result.written),
                "applied": result.applied,
                "radio_cycled": result.applied is not None,
                "rewritten_in_place": result.rewritten_in_place,
                "password": result.password_status,
            }
        started = time.perf_counter()
        with Modem.open(sim.path) as modem:
            connection = connect(modem)
            commands = modem.channel.stats.commands
        assert connection.connected, connection
        figures["connect"] = {
            "seconds": round(time.perf_counter() - started, 4),
            "at_commands": commands,
            "ipv4": connection.ipv4,
        }
        started = time.perf_counter()
        with Modem.open(sim.path) as modem:
            info = gather_info(modem)
            commands = modem.channel.stats.commands
        figures["info"] = {
            "seconds": round(time.perf_counter() - started, 4),
            "at_commands": commands,
            "iccid": info.sim.iccid,
        }
        return figures
    finally:
        sim.stop()


def main() -> None:
    """Run every measurement and write bench/results/modem.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--round-trips", type=int, default=200)
    args = parser.parse_args()
    from modem.dialects import DIALECT_NAMES

    results: dict[str, Any] = {"latency_s": args.latency}
    sim = Simulator("generic", args.latency)
    try:
        results["round_trip"] = round_trips(sim.path, args.round_trips, args.latency)
    finally:
        sim.stop()
    sim = Simulator("generic", 0.0)
    try:
        results["round_trip_no_latency"] = round_trips(sim.path, args.round_trips, 0.0)
    finally:
        sim.stop()
    profile = pin_off_profile()
    try:
        results["dialects"] = {d: configure_runs(d, args.latency, profile) for d in DIALECT_NAMES}
        results["dialects_no_latency"] = {
            d: configure_runs(d, 0.0, profile)["first"] for d in DIALECT_NAMES
        }
    finally:
        Path(profile).unlink()

    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "modem.json").write_text(json.dumps(results, indent=2) + "\n")
    rt, rt0 = results["round_trip"], results["round_trip_no_latency"]
    print(
        f"AT round trip at {args.latency * 1000:g} ms latency: median {rt['median_ms']} ms, "
        f"p95 {rt['p95_ms']} ms (channel overhead {rt['overhead_median_ms']} ms); "
        f"at 0 ms: median {rt0['median_ms']} ms, p95 {rt0['p95_ms']} ms"
    )
    print(
        f"{'dialect':9} {'configure':>10} {'trips':>5} {'x floor':>7} {'rerun':>8} {'trips':>5} "
        f"{'radio':>6} {'connect':>8} {'trips':>5} {'info':>8} {'trips':>5} {'@0ms':>8}"
    )
    for name, figures in results["dialects"].items():
        zero = results["dialects_no_latency"][name]
        first, second = figures["first"], figures["second"]
        print(
            f"{name:9} {first['seconds']:>9.3f}s {first['at_commands']:>5} "
            f"{first['floor_ratio'] or 0:>7.2f} {second['seconds']:>7.3f}s "
            f"{second['at_commands']:>5} {'cycled' if second['radio_cycled'] else 'kept':>6} "
            f"{figures['connect']['seconds']:>7.3f}s {figures['connect']['at_commands']:>5} "
            f"{figures['info']['seconds']:>7.3f}s {figures['info']['at_commands']:>5} "
            f"{zero['seconds']:>7.3f}s"
        )


if __name__ == "__main__":
    main()
