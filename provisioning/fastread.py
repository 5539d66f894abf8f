"""The reads a person waits for, on SQLite, without SQLAlchemy or Alembic.

``simtool show card --json`` runs as a whole process many times a shift; most
of its time used to go into importing the ORM and Alembic for one SELECT.
This module answers it with the standard library's ``sqlite3`` alone and
gives exactly the JSON of :func:`provisioning.records.show_card` (a test holds
the two to it). It checks the schema as the ORM path does, and never creates
a file. Other databases, and anything that writes (a PUK reveal is audited),
take the ORM path.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provisioning.errors import DatabaseError, NotFoundError
from provisioning.schema import shipped_revisions

_HISTORY_LIMIT = 200
_NEVER_REUSE = ("lost", "lost-found")


def sqlite_path(url_or_path: str) -> Path | None:
    """The file of a plain ``--db`` path (the SQLite default), else None (use the ORM)."""
    text = url_or_path.strip()
    if not text or "://" in text:
        return None
    return Path(text).expanduser()


def _time(value: Any) -> str | None:
    """A stored UTC time (naive ISO text on SQLite) as the ORM path prints it."""
    if value is None:
        return None
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC).isoformat()


def _uri_path(path: Path) -> str:
    """``path`` for a ``file:`` URI (urllib.parse costs more to import than this does)."""
    return str(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")


def _connect(path: Path) -> sqlite3.Connection:
    display = f"sqlite:///{path}"
    if not path.is_file():
        raise DatabaseError(f"no line database at {path} (run simtool db init)", url=display)
    try:
        connection = sqlite3.connect(f"file:{_uri_path(path)}?mode=ro", uri=True, timeout=30)
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error as error:
        message = str(error)
        if "no such table" in message:
            raise DatabaseError(
                f"database {display} is not initialised; run 'simtool db init'", url=display
            ) from error
        raise DatabaseError(f"database {display} cannot be used: {message}", url=display) from error
    revisions, head = shipped_revisions()
    current = row[0] if row else None
    if current is None:
        raise DatabaseError(
            f"database {display} is not initialised; run 'simtool db init'", url=display
        )
    if current not in revisions:
        raise DatabaseError(
            f"database {display} has schema {current}, which this simtool does not know (it "
            f"knows up to {head}): the database is newer than this simtool; use a newer simtool",
            url=display,
        )
    if current != head:
        raise DatabaseError(
            f"database {display} has schema {current}, simtool needs {head}; run "
            "'simtool db upgrade'",
            url=display,
        )
    return connection


def show_card_json(path: Path, kind: str, value: str) -> dict[str, Any]:
    """The JSON form of a card's record, found by ``kind`` ("iccid" or "imsi")."""
    connection = _connect(path)
    try:
        return _card(connection, kind, value)
    except sqlite3.Error as error:
        raise DatabaseError(
            f"database sqlite:///{path} cannot be used: {error}", url=f"sqlite:///{path}"
        ) from error
    finally:
        connection.close()


def _card(connection: sqlite3.Connection, kind: str, value: str) -> dict[str, Any]:
    column = "imsi" if kind == "imsi" else "iccid"
    card = connection.execute(
        "SELECT c.id, c.iccid, c.imsi, c.form_factor, c.network_type, b.name, c.state, "
        "c.state_changed_at, c.usage_mb, c.quota_mb FROM cards c JOIN stock_batches b "
        f"ON b.id = c.batch_id WHERE c.{column} = ?",
        (value,),
    ).fetchone()
    if card is None:
        raise NotFoundError(
            f"card {kind.upper()} {value} is not in the database", kind="card", key=value
        )
    card_id, iccid = card[0], card[1]
    bindings = [
        {
            "service_code": code,
            "iccid": iccid,
            "reason": reason,
            "fee": fee,
            "bound_at": _time(bound_at),
            "unbound_at": _time(unbound_at),
        }
        for code, reason, fee, bound_at, unbound_at in connection.execute(
            "SELECT l.service_code, b.reason, b.fee, b.bound_at, b.unbound_at FROM bindings b "
            "JOIN lines l ON l.id = b.line_id WHERE b.card_id = ? ORDER BY b.id",
            (card_id,),
        )
    ]
    events = connection.execute(
        "SELECT seq, at, action, result, iccid, service_code, operator, station, details "
        "FROM audit_events WHERE iccid = ? ORDER BY seq DESC LIMIT ?",
        (iccid, _HISTORY_LIMIT),
    ).fetchall()
    line_state = connection.execute(
        "SELECT l.state FROM lines l JOIN bindings b ON b.line_id = l.id "
        "WHERE b.card_id = ? AND b.unbound_at IS NULL",
        (card_id,),
    ).fetchone()
    current = next((b["service_code"] for b in bindings if b["unbound_at"] is None), None)
    return {
        "ok": True,
        "iccid": iccid,
        "imsi": card[2],
        "form_factor": card[3],
        "network_type": card[4],
        "batch": card[5],
        "state": card[6],
        "state_changed_at": _time(card[7]),
        "never_reuse": card[6] in _NEVER_REUSE,
        "return_required": card[4] != "I",
        "service_code": current,
        "usage_mb": card[8],
        "quota_mb": card[9],
        "bindings": bindings,
        "history": [
            {
                "seq": seq,
                "at": _time(at),
                "action": action,
                "result": result,
                "iccid": event_iccid,
                "service_code": code,
                "operator": operator,
                "station": station,
                "details": json.loads(details),
            }
            for seq, at, action, result, event_iccid, code, operator, station, details in reversed(
                events
            )
        ],
        "line_state": line_state[0] if line_state else None,
    }
