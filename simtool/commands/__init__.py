"""Command modules of the simtool CLI, one per area."""
