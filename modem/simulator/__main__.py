"""``python -m modem.simulator --dialect D``: serve a simulated modem on a pty.

Prints the pty path on stdout (one line, flushed), then serves until SIGTERM or
SIGINT. The same as ``simtool modem sim``, without loading the CLI.
"""

from __future__ import annotations

import argparse
import logging
import sys

from apdu.errors import SimtoolError
from modem.dialects import DIALECT_NAMES
from modem.simulator.ptyserver import serve_pty


def main(argv: list[str] | None = None) -> int:
    """Parse the options, serve, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m modem.simulator",
                                     description="Serve a simulated AT modem on a pty.")
    parser.add_argument("--dialect", default="generic", choices=DIALECT_NAMES)
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds added to every answer")
    parser.add_argument("--faults", default=None,
                        help="comma-separated faults (echo,urc,cmee-text,slow[:s],"
                             "noanswer[:cmd],garbage[:n],reboot[:cmd],cfun-apply)")
    parser.add_argument("--profile", default=None,
                        help="card profile: lab:N, a profile name or a JSON file")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")

    def ready(path: str) -> None:
        sys.stdout.write(path + "\n")
        sys.stdout.flush()

    try:
        serve_pty(args.dialect, latency=args.latency, faults=args.faults,
                  profile=args.profile, on_ready=ready)
    except SimtoolError as error:
        sys.stderr.write(f"error: {error}\n")
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
