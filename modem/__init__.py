"""modem package."""
