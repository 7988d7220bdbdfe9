"""What reviewers and operators change at runtime (issue 17): lexicon entries merged with the lexicon
files (versioned: each process rebuilds its engine when the version moves) and the image blocklist.
Every change is audited in its transaction."""

from __future__ import annotations

import threading
import time
import unicodedata
from functools import partial

from sqlalchemy import select, update

from passport import errors
from passport.audit import service as audit
from passport.clock import rfc3339
from passport.moderation import images
from passport.moderation.lexicon import CATEGORIES, FIELDS, VERDICTS, Entry
from passport.moderation.models import ImageBlock, LexiconEntry, LexiconState
from passport.runtime import Runtime
from passport.work import unit_of_work

SOURCE = "operator"
TERM_MAX = 64
# How often a process asks the database whether the operators' entries changed (one primary-key read).
VERSION_CHECK_SECONDS = 2.0
_lock = threading.Lock()
_known: dict[str, tuple[str, tuple[Entry, ...], float]] = {}


def _key(rt: Runtime) -> str:
    return str(rt.settings.resolved_database_url)


def operator_lexicon(rt: Runtime) -> tuple[str, tuple[Entry, ...]]:
    """The operators' entries and their version (``""`` while there are none ever added), read again
    when ``VERSION_CHECK_SECONDS`` have passed and the version moved."""
    key, now = _key(rt), time.monotonic()
    known = _known.get(key)
    if known is not None and now - known[2] < VERSION_CHECK_SECONDS:
        return known[0], known[1]
    with rt.db.read() as db:
        number = db.scalar(select(LexiconState.version).where(LexiconState.id == 1)) or 0
        version = f"op{number}" if number else ""
        if known is not None and known[0] == version:
            entries = known[1]
        else:
            entries = tuple(_entry(row) for row in db.scalars(
                select(LexiconEntry).order_by(LexiconEntry.created_at, LexiconEntry.id)).all())
    with _lock:
        _known[key] = (version, entries, now)
    return version, entries


def forget(rt: Runtime) -> None:
    """After a change committed here: this process reads the new version at its next check."""
    with _lock:
        _known.pop(_key(rt), None)


def _entry(row: LexiconEntry) -> Entry:
    fields = row.fields.split(",") if row.fields else list(FIELDS)
    return Entry(row.term, row.category, dict.fromkeys(fields, row.verdict), SOURCE, row.context)


def _view(row: LexiconEntry) -> dict:
    return {"id": row.id, "term": row.term, "category": row.category, "verdict": row.verdict,
            "fields": row.fields.split(",") if row.fields else list(FIELDS), "context": row.context,
            "added_by": row.added_by, "created_at": rfc3339(row.created_at)}


def list_entries(rt: Runtime) -> dict:
    with rt.db.read() as db:
        number = db.scalar(select(LexiconState.version).where(LexiconState.id == 1)) or 0
        rows = db.scalars(select(LexiconEntry).order_by(LexiconEntry.created_at.desc(), LexiconEntry.id)).all()
        return {"version": number, "items": [_view(row) for row in rows]}


def clean_term(raw: str | None) -> str:
    term = unicodedata.normalize("NFC", (raw or "").strip())
    if not term or len(term) > TERM_MAX or any(unicodedata.category(c)[0] == "C" for c in term):
        raise errors.invalid("invalid_term", "A term is 1 to 64 characters without control characters.", "term")
    return term


def _bump(db) -> int:
    db.execute(update(LexiconState).where(LexiconState.id == 1).values(version=LexiconState.version + 1))
    return db.scalar(select(LexiconState.version).where(LexiconState.id == 1))


def add_entry(rt: Runtime, origin: audit.Origin, staff_id: str, *, term: str, category: str, verdict: str,
              fields: list[str] | None = None, context: str | None = None, contexts: tuple[str, ...] = ()) -> dict:
    """``contexts``: the context names the current lexicon knows (a ``context`` must be one of them)."""
    term = clean_term(term)
    if category not in CATEGORIES:
        raise errors.invalid("invalid_category", "Choose one of the categories.", "category")
    if verdict not in VERDICTS:
        raise errors.invalid("invalid_verdict", "The verdict is block, review or allow.", "verdict")
    if any(name not in FIELDS for name in fields or ()):
        raise errors.invalid("invalid_field", "The field is nickname, bio, organization_name or text.", "fields")
    chosen = sorted(set(fields or ()), key=FIELDS.index)
    context = (context or "").strip() or None
    if context is not None and context not in contexts:
        raise errors.invalid("invalid_context", "Choose a context the lexicons define.", "context")
    with unit_of_work(rt, origin, actor=("staff", staff_id)) as work:
        row = LexiconEntry(term=term, category=category, verdict=verdict,
                           fields=",".join(chosen) if chosen and len(chosen) < len(FIELDS) else None,
                           context=context, added_by=staff_id, created_at=work.at)
        work.db.add(row)
        work.db.flush()
        version = _bump(work.db)
        work.audit("moderation.lexicon_added", subject=("lexicon_entry", row.id),
                   details={"term": term, "category": category, "verdict": verdict, "fields": row.fields,
                            "context": context, "version": version})
        shown = _view(row)
        work.after_commit(partial(forget, rt))
    return shown


def remove_entry(rt: Runtime, origin: audit.Origin, staff_id: str, entry_id: str) -> None:
    with unit_of_work(rt, origin, actor=("staff", staff_id)) as work:
        row = work.db.get(LexiconEntry, entry_id)
        if row is None:
            raise errors.not_found("lexicon_entry")
        details = {"term": row.term, "category": row.category, "verdict": row.verdict}
        work.db.delete(row)
        work.db.flush()
        work.audit("moderation.lexicon_removed", subject=("lexicon_entry", entry_id),
                   details=details | {"version": _bump(work.db)})
        work.after_commit(partial(forget, rt))


# --- image blocklist -------------------------------------------------------------------------------------

def _block_view(row: ImageBlock) -> dict:
    return {"id": row.id, "phash": row.phash, "category": row.category, "note": row.note, "added_by": row.added_by,
            "created_at": rfc3339(row.created_at)}


def list_image_blocks(rt: Runtime) -> list[dict]:
    with rt.db.read() as db:
        return [_block_view(row) for row in db.scalars(select(ImageBlock).order_by(ImageBlock.created_at.desc()))]


def block_image(rt: Runtime, origin: audit.Origin, staff_id: str, *, data: bytes | None, phash: str | None,
                category: str, note: str | None) -> dict:
    """Add an image to the blocklist by an uploaded example (hashed as an avatar would be: decoded,
    re-encoded, then ``phash``) or by its hash; the image itself is not kept."""
    settings = rt.settings
    if data:
        value = images.process(data, max_bytes=settings.upload_max_bytes, max_pixels=settings.avatar_max_pixels,
                               size=settings.avatar_size).phash
    else:
        value = images.clean_hash(phash or "")
    with unit_of_work(rt, origin, actor=("staff", staff_id)) as work:
        if work.db.scalar(select(ImageBlock.id).where(ImageBlock.phash == value)) is not None:
            raise errors.DomainError("already_blocked", "This image is already on the blocklist.", 409)
        row = images.add_block(work.db, value, category, note, staff_id, work.at)
        work.audit("moderation.image_blocked", subject=("image_block", row.id),
                   details={"phash": value, "category": category, "from": "upload" if data else "hash"})
        return _block_view(row)


def unblock_image(rt: Runtime, origin: audit.Origin, staff_id: str, block_id: str) -> None:
    with unit_of_work(rt, origin, actor=("staff", staff_id)) as work:
        row = work.db.get(ImageBlock, block_id)
        if row is None:
            raise errors.not_found("image_block")
        details = {"phash": row.phash, "category": row.category}
        work.db.delete(row)
        work.audit("moderation.image_unblocked", subject=("image_block", block_id), details=details)
