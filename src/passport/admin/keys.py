"""Key rotation (issue 15): re-encrypt every encrypted value to the active encryption key in the
row-bound format, recompute blind indexes under the current blind-index key, and tell how much
is left (``passport keys rotate`` and ``passport keys status``).

What is encrypted is found in the models, not listed here: a column whose ``info`` names a
``crypto.Field`` under ``crypto.SEALED`` holds ciphertexts (a ``(column, {value: Field})`` pair when the
version 1 field name depended on another column, as the outbox's channel), one naming a
``crypto.Indexed`` under ``crypto.INDEXED`` holds a blind index of another column's plaintext, and one
naming a Field under ``realname.models.SEALED_FILE`` holds the name of a sealed file under the uploads
directory.

The rotation walks each table in primary-key order, a batch (default 500 rows) per transaction, and
writes a row only with a compare on every value it read (``UPDATE … WHERE id = :id AND col = :old``):
a request that changed the row meanwhile wins, and the row is read again. Nothing is remembered
between runs: a row already on the active key and format is skipped, so an interrupted run is
simply run again. Files are replaced atomically (written beside, then renamed). One audit event per
run carries the counts, never a value.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import Column, Table, and_, func, select, update
from sqlalchemy.orm import Session

from passport.audit import service as audit
from passport.db import Base, import_models
from passport.realname.documents import uploads_dir
from passport.realname.models import SEALED_FILE
from passport.runtime import Runtime
from passport.security.crypto import INDEXED, SEALED, VERSION, CryptoError, Field, FieldCipher, Indexed
from passport.work import SYSTEM, unit_of_work

BATCH_SIZE = 500
RETRIES = 3  # times a row changed by a request meanwhile is read again within one batch


@dataclass(frozen=True)
class Plan:
    """One table's encrypted columns, blind-index columns and sealed-file columns."""

    table: Table
    key: Column
    sealed: tuple[Column, ...]
    indexed: tuple[Column, ...]
    files: tuple[Column, ...]

    @property
    def read(self) -> list[Column]:
        extra = [self.table.c[spec[0]] for c in self.sealed if isinstance(spec := c.info[SEALED], tuple)]
        return [self.key, *self.sealed, *self.indexed, *self.files,
                *(c for c in dict.fromkeys(extra) if c not in (*self.sealed, *self.indexed, *self.files))]


def plans() -> list[Plan]:
    """Every table holding encrypted values, blind indexes or sealed files, from the models."""
    import_models()
    found = []
    for table in Base.metadata.sorted_tables:
        sealed = tuple(c for c in table.columns if SEALED in c.info)
        indexed = tuple(c for c in table.columns if INDEXED in c.info)
        files = tuple(c for c in table.columns if SEALED_FILE in c.info)
        if not (sealed or indexed or files):
            continue
        if len(table.primary_key.columns) != 1:
            raise RuntimeError(f"{table.name}: encrypted values need a one-column primary key to be bound to")
        found.append(Plan(table, next(iter(table.primary_key.columns)), sealed, indexed, files))
    return found


def field_of(column: Column, row: Any) -> Field:
    spec = column.info[SEALED]
    if isinstance(spec, tuple):
        by, fields = spec
        return fields[getattr(row, by)]
    return spec


@dataclass
class Report:
    """What a run did or what status found: counts only."""

    rewritten: Counter = field(default_factory=Counter)  # table.column -> values re-encrypted or re-indexed
    remaining: Counter = field(default_factory=Counter)  # key id (or "legacy format") -> values not on the active key
    by_key: Counter = field(default_factory=Counter)  # key id -> values
    legacy_format: int = 0
    blind_index: Counter = field(default_factory=Counter)  # current | previous | stale
    busy: int = 0  # rows a request kept changing: left for the next run
    failed: Counter = field(default_factory=Counter)  # table.column -> values that would not decrypt
    missing_files: int = 0

    def as_dict(self, cipher: FieldCipher) -> dict[str, Any]:
        return {
            "active_key": cipher.active_kid,
            "values_by_key": dict(sorted(self.by_key.items())),
            "legacy_format": self.legacy_format,
            "remaining_by_key": dict(sorted(self.remaining.items())),
            "blind_indexes": dict(sorted(self.blind_index.items())),
            "rewritten": dict(sorted(self.rewritten.items())),
            "busy_rows": self.busy,
            "failed": dict(sorted(self.failed.items())),
            "missing_files": self.missing_files,
            "done": not self.remaining and not self.blind_index.get("previous") and not self.blind_index.get("stale")
            and not self.failed and not self.busy,
        }


def _batches(db: Session, plan: Plan, after: Any, size: int, upto: Any = None) -> list[Any]:
    query = select(*plan.read).order_by(plan.key).limit(size)
    if after is not None:
        query = query.where(plan.key > after)
    if upto is not None:
        query = query.where(plan.key <= upto)
    return list(db.execute(query))


def _rows(rt: Runtime, plan: Plan, size: int) -> Iterator[list[Any]]:
    """Read-only walk (status): one short read transaction per batch."""
    after = None
    while True:
        with rt.db.read() as db:
            rows = _batches(db, plan, after, size)
        if not rows:
            return
        yield rows
        after = getattr(rows[-1], plan.key.name)


class _Undecryptable(Exception):
    pass


def _changes(rt: Runtime, plan: Plan, row: Any, report: Report | None) -> dict[str, bytes]:
    """The new values of one row's encrypted and blind-index columns (empty: nothing to do). With a
    report (status), counts what it sees instead of caring what to write."""
    cipher, index = rt.keys.cipher, rt.keys.blind_index
    row_id = getattr(row, plan.key.name)
    plain: dict[str, str] = {}
    new: dict[str, bytes] = {}
    sources = {c.info[INDEXED].source for c in plan.indexed}
    for column in plan.sealed:
        blob = getattr(row, column.name)
        if blob is None:
            continue
        stale = cipher.needs_reencryption(blob)
        if report is not None:
            kid = FieldCipher.key_id(blob)
            report.by_key[kid] += 1
            report.legacy_format += blob[0] != VERSION
            if stale:
                report.remaining[kid if kid != cipher.active_kid else "legacy format"] += 1
        rewrite = stale and report is None
        if not rewrite and column.name not in sources:
            continue
        try:
            plain[column.name] = cipher.decrypt(blob, field_of(column, row), row_id)
        except (CryptoError, InvalidTag, UnicodeDecodeError) as exc:
            raise _Undecryptable(f"{plan.table.name}.{column.name}") from exc
        if rewrite:
            new[column.name] = cipher.encrypt(plain[column.name], field_of(column, row), row_id)
    for column in plan.indexed:
        spec: Indexed = column.info[INDEXED]
        stored = getattr(row, column.name)
        if stored is None or spec.source not in plain:
            continue
        value = spec.of(plain[spec.source])
        current, previous = index.lookup(spec.kind, value)
        if report is not None:
            report.blind_index["current" if stored == current else "previous" if stored == previous else "stale"] += 1
        if stored != current:
            new[column.name] = current
    return new


def _write(db: Session, plan: Plan, row: Any, new: dict[str, bytes]) -> bool:
    """Compare-and-set: only over the values this row had when it was read."""
    compare = [plan.key == getattr(row, plan.key.name)]
    compare += [c.is_not_distinct_from(getattr(row, c.name)) for c in (*plan.sealed, *plan.indexed)]
    return db.execute(update(plan.table).where(and_(*compare)).values(**new)).rowcount == 1


def _reread(db: Session, plan: Plan, row: Any) -> Any | None:
    return db.execute(select(*plan.read).where(plan.key == getattr(row, plan.key.name))).first()


def _rotate_row(rt: Runtime, db: Session, plan: Plan, row: Any, report: Report) -> None:
    for _ in range(RETRIES):
        try:
            new = _changes(rt, plan, row, None)
        except _Undecryptable as exc:
            report.failed[str(exc)] += 1
            return
        if not new:
            return
        if _write(db, plan, row, new):
            for name in new:
                report.rewritten[f"{plan.table.name}.{name}"] += 1
            return
        row = _reread(db, plan, row)  # a request changed it meanwhile: its values win, look again
        if row is None:
            return
    report.busy += 1


def _rotate_file(rt: Runtime, plan: Plan, column: Column, row: Any, report: Report, status: bool) -> None:
    name = getattr(row, column.name)
    if not name:
        return
    path = uploads_dir(rt) / name
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        report.missing_files += 1
        return
    cipher, sealed, row_id = rt.keys.cipher, column.info[SEALED_FILE], getattr(row, plan.key.name)
    stale = cipher.needs_reencryption(blob)
    if status:
        kid = FieldCipher.key_id(blob)
        report.by_key[kid] += 1
        report.legacy_format += blob[0] != VERSION
        if stale:
            report.remaining[kid if kid != cipher.active_kid else "legacy format"] += 1
        return
    if not stale:
        return
    try:
        fresh = cipher.encrypt(cipher.decrypt(blob, sealed, row_id), sealed, row_id)
    except (CryptoError, InvalidTag, UnicodeDecodeError):
        report.failed[f"{plan.table.name}.{column.name} (file)"] += 1
        return
    _replace(path, fresh)
    report.rewritten[f"{plan.table.name}.{column.name} (file)"] += 1


def _replace(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a part (rename is atomic)."""
    tmp = path.with_name(f".{path.name}.rotating")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def status(rt: Runtime, batch_size: int = BATCH_SIZE) -> dict[str, Any]:
    """Counts of encrypted values by key id, those not yet on the active key or the row-bound format,
    and blind indexes by key (current, previous, stale: matching neither, so a look-up misses it)."""
    report = Report()
    for plan in plans():
        for rows in _rows(rt, plan, batch_size):
            for row in rows:
                try:
                    _changes(rt, plan, row, report)
                except _Undecryptable as exc:
                    report.failed[str(exc)] += 1
                for column in plan.files:
                    _rotate_file(rt, plan, column, row, report, status=True)
    return report.as_dict(rt.keys.cipher)


def rotate(rt: Runtime, origin: audit.Origin, *, batch_size: int = BATCH_SIZE,
           on_batch: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Re-encrypt and re-index everything not on the current keys, a batch per transaction; then count
    what is left (``status``). ``on_batch(table, rows)`` is called after each committed batch. One
    audit event ``keys.rotated`` per run, with the counts (``completed`` false when the run stopped
    on an error or an interruption: run it again, it continues)."""
    report = Report()
    completed = False
    try:
        for plan in plans():
            after = None
            # The walk ends at the last row there was when it began: rows inserted since are written
            # under the current keys (a table with increasing ids would otherwise keep the walk going
            # as long as requests add rows); ``status`` below counts anything a straggler wrote.
            with rt.db.read() as db:
                upto = db.scalar(select(func.max(plan.key)))
            while upto is not None:
                with rt.db.write() as db:
                    rows = _batches(db, plan, after, batch_size, upto)
                    for row in rows:
                        _rotate_row(rt, db, plan, row, report)
                if not rows:
                    break
                for row in rows:
                    for column in plan.files:
                        _rotate_file(rt, plan, column, row, report, status=False)
                after = getattr(rows[-1], plan.key.name)
                if on_batch is not None:
                    on_batch(plan.table.name, len(rows))
        completed = True
    finally:
        details = {"completed": completed, "active_key": rt.keys.cipher.active_kid,
                   "rewritten": sum(report.rewritten.values()), "busy_rows": report.busy,
                   "failed": sum(report.failed.values()), "blind_index_rotating": rt.keys.blind_index.rotating}
        with unit_of_work(rt, origin, actor=SYSTEM) as work:
            work.audit("keys.rotated", result="ok" if completed and not report.failed else "failed", details=details)
    left = status(rt, batch_size)
    left["rewritten"] = dict(sorted(report.rewritten.items()))
    left["busy_rows"] = report.busy
    left["failed"] = dict(sorted((Counter(left["failed"]) | report.failed).items()))
    left["done"] = left["done"] and not report.busy and not left["failed"]
    return left
