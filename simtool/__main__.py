"""``python -m simtool`` runs the command line."""

from simtool.cli import main

main()
