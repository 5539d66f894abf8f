"""Alembic migrations of the line database, run by :mod:`provisioning.database`."""
