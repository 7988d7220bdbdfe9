"""The audit log: one ``record`` call per state change, in the same transaction as the change."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, bindparam, cast, delete, func, insert, literal_column, select, true, update
from sqlalchemy.orm import Session

from passport.audit.models import AuditChainHead, AuditEvent
from passport.clock import rfc3339
from passport.identity.masking import mask_mapping
from passport.origin import Origin  # services name it audit.Origin

GENESIS = "0" * 64


_FIELDS = ("seq", "at", "actor_type", "actor_id", "subject_type", "subject_id", "action", "result", "ip",
           "user_agent", "details", "prev_hash")
_events = AuditEvent.__table__
_head = AuditChainHead.__table__
_LAST = select(_events.c.seq, _events.c.hash).order_by(_events.c.seq.desc()).limit(1)
# The head row orders appends. On PostgreSQL, FOR UPDATE waits for the appender before us and then
# reads the row as it committed it; the event and the moved head go in one statement. SQLite
# writers are serial (BEGIN IMMEDIATE), so plain statements do.
_HEAD = select(_head.c.seq, _head.c.hash).where(_head.c.id == 1)
_HEAD_LOCKED = _HEAD.with_for_update()
_INSERT = insert(_events)
_MOVE_HEAD = update(_head).where(_head.c.id == 1).values(seq=bindparam("seq"), hash=bindparam("hash"))
_APPEND = _MOVE_HEAD.add_cte(insert(_events).values(
    {column.name: bindparam(column.name, type_=column.type) for column in _events.c}).cte("appended"))


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(event) -> bytes:
    """The bytes the hash covers: every field but the hash, as sorted compact JSON."""
    fields = {name: getattr(event, name) if isinstance(event, AuditEvent) else event[name] for name in _FIELDS}
    fields["at"] = rfc3339(fields["at"])
    return _json(fields).encode()


def _postgres(db: Session) -> bool:
    return db.get_bind().dialect.name == "postgresql"


def record(db: Session, *, at: datetime, action: str, origin: Origin, result: str = "ok",
           actor_type: str = "anonymous", actor_id: str | None = None, subject_type: str | None = None,
           subject_id: str | None = None, details: dict[str, Any] | None = None) -> dict:
    """Append one event to the chain, in the caller's transaction. Returns the row as written."""
    postgres = _postgres(db)
    last = db.execute(_HEAD_LOCKED if postgres else _HEAD).one()
    row = _event(at=at, action=action, origin=origin, result=result, actor_type=actor_type, actor_id=actor_id,
                 subject_type=subject_type, subject_id=subject_id, details=details)
    row["seq"], row["prev_hash"] = last.seq + 1, last.hash
    row["hash"] = hashlib.sha256(canonical(row)).hexdigest()
    if postgres:
        db.execute(_APPEND, row)
    else:
        db.execute(_INSERT, row)
        db.execute(_MOVE_HEAD, {"seq": row["seq"], "hash": row["hash"]})
    return row


def _event(*, at: datetime, action: str, origin: Origin, result: str, actor_type: str, actor_id: str | None,
           subject_type: str | None, subject_id: str | None, details: dict[str, Any] | None) -> dict:
    """An event's fields but its place in the chain (seq, prev_hash, hash)."""
    return {
        "at": at, "actor_type": actor_type, "actor_id": actor_id, "subject_type": subject_type,
        "subject_id": subject_id, "action": action, "result": result, "ip": origin.ip,
        "user_agent": (origin.user_agent or "")[:512] or None,
        "details": json.dumps(mask_mapping(details or {}) | {"channel": origin.channel},
                              sort_keys=True, ensure_ascii=False),
    }


# --- appending inside another statement (PostgreSQL) -------------------------------------------------
#
# A hot path that changes one thing and records it (a login: start a session, append
# login.succeeded) can do both in ONE autocommit statement: no BEGIN, no COMMIT, no separate head
# read, and the head stays locked for that one statement only. PostgreSQL then computes the hash,
# because only it knows the head's seq and hash at that moment. The bytes it hashes are exactly
# ``canonical``'s: the sorted JSON splits around the two values it fills in, prev_hash and seq
# (keys sort as ... ip < prev_hash < result < seq < subject_id ...), so ``verify`` needs no
# second definition.

_BEFORE_PREV = ("action", "actor_id", "actor_type", "at", "details", "ip")
_AFTER_SEQ = ("subject_id", "subject_type", "user_agent")


def canonical_parts(row: dict) -> tuple[str, str, str]:
    """(c1, c2, c3) with ``canonical(row) == (c1 + prev_hash + c2 + str(seq) + c3).encode()``."""
    head = {name: row[name] for name in _BEFORE_PREV} | {"at": rfc3339(row["at"])}
    tail = {name: row[name] for name in _AFTER_SEQ}
    return (_json(head)[:-1] + ',"prev_hash":"', '","result":' + _json(row["result"]) + ',"seq":',
            "," + _json(tail)[1:])


_PARAM_FIELDS = ("at", "actor_type", "actor_id", "subject_type", "subject_id", "action", "result", "ip",
                 "user_agent", "details")


def appending_after(gate) -> Any:
    """A statement that appends one event if and only if the CTE ``gate`` yields a row, and moves the
    head; it returns the new head seq (no row: nothing appended). Bind its event with ``append_params``.
    The head is read ``FOR UPDATE``: a concurrent appender's row is waited for and then read as it
    committed it, as in ``record``."""
    head = _HEAD_LOCKED.cte("chain_head")
    seq = head.c.seq + 1
    hashed = (bindparam("a_c1", type_=Text) + head.c.hash + bindparam("a_c2", type_=Text) + cast(seq, Text)
              + bindparam("a_c3", type_=Text))
    digest = func.encode(func.sha256(func.convert_to(hashed, literal_column("'UTF8'"))), literal_column("'hex'"))
    names = ["seq", *_PARAM_FIELDS, "prev_hash", "hash"]
    values = [seq, *(bindparam(f"a_{name}", type_=_events.c[name].type) for name in _PARAM_FIELDS),
              head.c.hash, digest]
    appended = (insert(_events).from_select(names, select(*values).select_from(head.join(gate, true())))
                .returning(_events.c.seq, _events.c.hash).cte("appended"))
    return (update(_head).where(_head.c.id == 1, appended.c.seq > _head.c.seq)
            .values(seq=appended.c.seq, hash=appended.c.hash).returning(_head.c.seq))


def append_params(*, at: datetime, action: str, origin: Origin, result: str = "ok",
                  actor_type: str = "anonymous", actor_id: str | None = None, subject_type: str | None = None,
                  subject_id: str | None = None, details: dict[str, Any] | None = None) -> dict:
    """The bind parameters of an ``appending_after`` statement for one event (``record``'s arguments)."""
    row = _event(at=at, action=action, origin=origin, result=result, actor_type=actor_type, actor_id=actor_id,
                 subject_type=subject_type, subject_id=subject_id, details=details)
    c1, c2, c3 = canonical_parts(row)
    return {f"a_{name}": row[name] for name in _PARAM_FIELDS} | {"a_c1": c1, "a_c2": c2, "a_c3": c3}


def activity_of(db: Session, account_id: str, *, before: int | None = None, limit: int = 50) -> list[dict]:
    """The account's trail as staff see it, newest first: what it did and what was done to it, with
    who did it. The account holder sees it only through ``user_view`` (``user_activity``).
    Page with ``before`` = the smallest ``seq`` of the previous page."""
    condition = (_events.c.actor_id == account_id) | (
        (_events.c.subject_type == "account") & (_events.c.subject_id == account_id))
    if before is not None:
        condition &= _events.c.seq < before
    rows = db.execute(select(_events.c.seq, _events.c.at, _events.c.action, _events.c.result, _events.c.actor_type,
                             _events.c.actor_id, _events.c.ip, _events.c.user_agent, _events.c.details)
                      .where(condition).order_by(_events.c.seq.desc()).limit(max(1, min(limit, 200)))).all()
    return [{"seq": r.seq, "at": rfc3339(r.at), "action": r.action, "result": r.result, "actor_type": r.actor_type,
             "actor_id": r.actor_id, "ip": r.ip, "user_agent": r.user_agent, "details": json.loads(r.details)}
            for r in rows]


# Actions whose ``reason`` the user was told (the notice of a staff action, a revoked or refused
# real-name verification): the only reasons of others the holder's view shows. Any other reason of
# staff (a reveal's, a review note) is internal.
PUBLIC_REASON_ACTIONS = ("account.action.", "realname.revoked", "realname.rejected")
_ACTOR_KINDS = {"staff": "staff", "system": "system"}


def user_view(event: dict, account_id: str) -> dict:
    """How the account holder sees one event of its trail: the activity API and page and the
    personal-data export all show this, so they cannot drift. What the account did itself is whole
    (``actor`` "self", its IP, browser and masked details). What others did (staff, the system,
    someone trying its login) is theirs in part: only the action, its time, its result, the kind of
    actor ("staff", "system", "other": never an id, login, IP or browser) and a reason the user was
    told; a staff member's internal reason is never shown."""
    base = {"seq": event["seq"], "at": event["at"], "action": event["action"], "result": event["result"]}
    if event["actor_type"] == "user" and event["actor_id"] == account_id:
        return base | {"actor": "self", "ip": event["ip"], "user_agent": event["user_agent"],
                       "details": event["details"]}
    reason = (event.get("details") or {}).get("reason")
    if not isinstance(reason, str) or (event["actor_type"] == "staff"
                                       and not event["action"].startswith(PUBLIC_REASON_ACTIONS)):
        reason = None
    return base | {"actor": _ACTOR_KINDS.get(event["actor_type"], "other"), "reason": reason}


def user_activity(db: Session, account_id: str, *, before: int | None = None, limit: int = 50) -> list[dict]:
    """The account's own trail as its holder sees it (``user_view`` of each event), newest first
    (COMPLIANCE C3). Page with ``before`` = the smallest ``seq`` of the previous page."""
    return [user_view(event, account_id) for event in activity_of(db, account_id, before=before, limit=limit)]


CHECKPOINT = "audit.retention_checkpoint"


@dataclass(frozen=True)
class ChainReport:
    """What ``verify`` found: ``first_bad`` is the seq of the first record that does not fit the
    chain (for a deleted record: the one after the gap) and ``reason`` says why."""

    ok: bool
    checked: int
    first_bad: int | None = None
    reason: str | None = None


def _checkpoint_links(db: Session) -> set[tuple[int, str]]:
    """(last removed seq, its hash) of every retention checkpoint still in the chain."""
    links = set()
    for details in db.scalars(select(_events.c.details).where(_events.c.action == CHECKPOINT)):
        data = json.loads(details)
        if isinstance(data.get("last_removed_seq"), int) and isinstance(data.get("last_removed_hash"), str):
            links.add((data["last_removed_seq"], data["last_removed_hash"]))
    return links


def verify(db: Session, batch: int = 2000) -> ChainReport:
    """Recompute every hash in seq order, streaming ``batch`` rows at a time. The first remaining
    record may start after genesis only where a retention checkpoint names the record before it
    and that record's hash; any other break (edited row, deleted row, broken link) is reported, and
    so is a chain that stops short of the head (its newest records removed).

    The head is read first: records appended while this runs lie beyond it and are left for the
    next check."""
    head = db.execute(_HEAD).one()
    expected_seq, prev, checked = None, GENESIS, 0
    rows = db.execute(select(_events).where(_events.c.seq <= head.seq).order_by(_events.c.seq)
                      .execution_options(yield_per=batch))
    for event in rows:
        if expected_seq is None:
            if (event.seq != 1 or event.prev_hash != GENESIS) and (
                    (event.seq - 1, event.prev_hash) not in _checkpoint_links(db)):
                return ChainReport(False, checked, event.seq,
                                   "the first record neither starts the chain nor follows a retention checkpoint")
        elif event.seq != expected_seq:
            missing = f"{expected_seq}" if event.seq == expected_seq + 1 else f"{expected_seq}-{event.seq - 1}"
            return ChainReport(False, checked, event.seq, f"gap in seq: record {missing} missing")
        elif event.prev_hash != prev:
            return ChainReport(False, checked, event.seq, "broken link: prev_hash is not the previous record's hash")
        if hashlib.sha256(canonical(event._mapping)).hexdigest() != event.hash:
            return ChainReport(False, checked, event.seq, "hash mismatch: the record was changed")
        expected_seq, prev, checked = event.seq + 1, event.hash, checked + 1
    newest = (expected_seq - 1) if expected_seq is not None else 0
    if head.seq and (newest, prev) != (head.seq, head.hash):
        return ChainReport(False, checked, newest + 1,
                           f"records {newest + 1}-{head.seq} missing: the chain head names record {head.seq}"
                           if newest < head.seq else "the chain head does not match the newest record")
    return ChainReport(True, checked)


def verify_chain(db: Session) -> tuple[bool, int, int | None]:
    """Recompute every hash in order. Returns (ok, records checked, first bad seq)."""
    report = verify(db)
    return report.ok, report.checked, report.first_bad


def sweep_expired(rt, db: Session) -> dict[str, Any] | None:
    """Remove the records older than ``audit_retention_days`` (COMPLIANCE L1), oldest first as one
    unbroken prefix of the chain, and append a checkpoint naming what went and the last removed
    hash, in the caller's transaction. Returns the checkpoint details, or None if nothing expired."""
    now = rt.clock.now()
    cutoff = now - timedelta(days=rt.settings.audit_retention_days)
    db.execute(_HEAD_LOCKED if _postgres(db) else _HEAD)  # no append runs while the prefix goes
    first_kept = db.scalar(select(func.min(_events.c.seq)).where(_events.c.at >= cutoff))
    upto = (first_kept - 1) if first_kept is not None else db.scalar(select(func.max(_events.c.seq)))
    if upto is None:
        return None
    first, count = db.execute(select(func.min(_events.c.seq), func.count()).where(_events.c.seq <= upto)).one()
    if not count:
        return None
    last = db.execute(select(_events.c.seq, _events.c.hash, _events.c.at).where(_events.c.seq == upto)).one()
    details = {"first_removed_seq": first, "last_removed_seq": last.seq, "removed": count,
               "last_removed_hash": last.hash, "last_removed_at": rfc3339(last.at), "cutoff": rfc3339(cutoff),
               "retention_days": rt.settings.audit_retention_days}
    # The checkpoint joins the chain after the newest record, then the expired prefix goes.
    record(db, at=now, action=CHECKPOINT, origin=Origin(channel="worker"), actor_type="system", details=details)
    db.execute(delete(_events).where(_events.c.seq <= upto))
    return details


def _conditions(subject: str | None = None, action: str | None = None, actor: str | None = None,
                since: datetime | None = None, until: datetime | None = None, before: int | None = None) -> list:
    conditions = []
    if subject:
        conditions.append(_events.c.subject_id == subject)
    if action:
        conditions.append(_events.c.action == action)
    if actor:
        conditions.append(_events.c.actor_id == actor)
    if since is not None:
        conditions.append(_events.c.at >= since)
    if until is not None:
        conditions.append(_events.c.at < until)
    if before is not None:
        conditions.append(_events.c.seq < before)
    return conditions


def as_dict(row) -> dict[str, Any]:
    """A record as auditors see it (details are masked when written)."""
    return {"seq": row.seq, "at": rfc3339(row.at), "actor_type": row.actor_type, "actor_id": row.actor_id,
            "subject_type": row.subject_type, "subject_id": row.subject_id, "action": row.action,
            "result": row.result, "ip": row.ip, "user_agent": row.user_agent, "details": json.loads(row.details),
            "prev_hash": row.prev_hash, "hash": row.hash}


def search(db: Session, *, limit: int = 50, **filters: Any) -> list[dict[str, Any]]:
    """Records matching the filters, newest first by seq; page with ``before`` = the smallest seq seen."""
    rows = db.execute(select(_events).where(*_conditions(**filters)).order_by(_events.c.seq.desc())
                      .limit(max(1, min(limit, 500)))).all()
    return [as_dict(r) for r in rows]


def export_rows(db: Session, *, since: datetime | None = None, until: datetime | None = None,
                batch: int = 2000) -> Iterator[dict[str, Any]]:
    """Every record in the period, oldest first, streamed ``batch`` rows at a time."""
    rows = db.execute(select(_events).where(*_conditions(since=since, until=until)).order_by(_events.c.seq)
                      .execution_options(yield_per=batch))
    for row in rows:
        yield as_dict(row)


EXPORT_COLUMNS = ("seq", "at", "actor_type", "actor_id", "subject_type", "subject_id", "action", "result", "ip",
                  "user_agent", "details", "prev_hash", "hash")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection): text that starts
    with = + - @ TAB or CR gets a leading apostrophe. User agents and details are user-controlled."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def export_lines(records: Iterable[dict[str, Any]], fmt: str) -> Iterator[str]:
    """JSON lines (values as stored), or CSV with a header row (``details`` as compact JSON, cells made
    spreadsheet-safe)."""
    if fmt == "jsonl":
        for item in records:
            yield json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n"
        return
    if fmt != "csv":
        raise ValueError(f"unknown export format {fmt!r}")
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: CRLF rows, so a field holding CR or LF is quoted
    writer.writerow(EXPORT_COLUMNS)
    for item in records:
        writer.writerow([spreadsheet_safe(json.dumps(item[c], ensure_ascii=False, separators=(",", ":")))
                         if c == "details" else ("" if item[c] is None else spreadsheet_safe(item[c]))
                         for c in EXPORT_COLUMNS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def filters_for_record(**filters: Any) -> dict[str, Any]:
    """The filters an auditor used, for the ``audit.searched`` / ``audit.exported`` record."""
    return {k: (rfc3339(v) if isinstance(v, datetime) else v) for k, v in filters.items() if v not in (None, "")}


def staff_search(rt, origin: Origin, staff_id: str, *, limit: int = 50, **filters: Any) -> list[dict[str, Any]]:
    """A staff search of the log, itself recorded as ``audit.searched`` with the filters used."""
    with rt.db.write() as db:
        record(db, at=rt.clock.now(), action="audit.searched", origin=origin, actor_type="staff", actor_id=staff_id,
               details=filters_for_record(**filters, limit=limit))
    with rt.db.read() as db:
        return search(db, limit=limit, **filters)


def staff_export(rt, origin: Origin, staff_id: str, *, fmt: str, since: datetime | None = None,
                 until: datetime | None = None) -> Iterator[str]:
    """Record ``audit.exported``, then return the export as a lazy stream of text chunks."""
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"unknown export format {fmt!r}")
    with rt.db.write() as db:
        record(db, at=rt.clock.now(), action="audit.exported", origin=origin, actor_type="staff", actor_id=staff_id,
               details=filters_for_record(since=since, until=until, format=fmt))

    def stream() -> Iterator[str]:
        with rt.db.read() as db:
            yield from export_lines(export_rows(db, since=since, until=until), fmt)

    return stream()


def staff_verify(rt, origin: Origin, staff_id: str) -> ChainReport:
    """Verify the chain for a staff member; the check is recorded with its outcome."""
    with rt.db.read() as db:
        report = verify(db)
    with rt.db.write() as db:
        record(db, at=rt.clock.now(), action="audit.verified", origin=origin, actor_type="staff", actor_id=staff_id,
               result="ok" if report.ok else "failed",
               details={"checked": report.checked, "first_bad": report.first_bad, "reason": report.reason})
    return report
