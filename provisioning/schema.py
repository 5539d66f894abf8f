"""The schema revisions simtool ships, known without importing Alembic.

Every command checks the database's schema before it works; that check reads
``alembic_version`` and compares it with :func:`shipped_revisions`, which
reads the migration scripts' ``revision`` lines. Alembic itself is imported
only by the ``db`` commands that change the schema.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from provisioning.errors import DatabaseError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_REVISION_LINE = re.compile(r'^(down_revision|revision)\s*=\s*(?:"([^"]*)"|None)', re.MULTILINE)


@functools.cache
def shipped_revisions() -> tuple[frozenset[str], str]:
    """Every schema revision shipped with simtool, and the newest (the head).

    Read from the migration scripts' ``revision``/``down_revision`` lines, without
    importing Alembic (a test checks that this agrees with Alembic's view).
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict(
            (name, value) for name, value in _REVISION_LINE.findall(script.read_text("utf-8"))
        )
        if found.get("revision"):
            revisions.add(found["revision"])
            if found.get("down_revision"):
                parents.add(found["down_revision"])
    heads = revisions - parents
    if len(heads) != 1:
        raise DatabaseError(
            f"simtool's migrations have {len(heads)} heads ({', '.join(sorted(heads))}); "
            "the chain must be linear (broken install)",
            url="",
        )
    return frozenset(revisions), heads.pop()
