"""simtool: the SIM-card tooling and provisioning station."""

__version__ = "0.1.0"
