"""Uploaded documents (ID photos, business licences): checked by content, stored encrypted, shown only to the
reviewer who claimed them."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy.orm import Session

from passport import errors
from passport.audit import service as audit
from passport.db import new_id
from passport.realname.models import DOCUMENT_FILE, Document
from passport.reviews import service as reviews
from passport.runtime import Runtime
from passport.work import unit_of_work

log = structlog.get_logger("passport.realname")


DOCUMENT_FIELD = DOCUMENT_FILE


# Content types by leading bytes: the type is what the file is, never what its name or the browser say.
SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"%PDF-", "application/pdf"))


ID_DOCUMENT_TYPES = frozenset({"image/png", "image/jpeg"})


LICENSE_TYPES = frozenset({"image/png", "image/jpeg", "application/pdf"})


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str | None = None


def content_type(data: bytes) -> str | None:
    return next((kind for magic, kind in SIGNATURES if data.startswith(magic)), None)


def check_upload(rt: Runtime, upload: Upload | None, allowed: frozenset[str], field: str) -> str:
    if upload is None or not upload.data:
        raise errors.invalid("file_required", "Choose a file to upload.", field)
    if len(upload.data) > rt.settings.upload_max_bytes:
        raise errors.DomainError("file_too_large", "The file must be at most 5 MB.", 422,
                                 [errors.FieldError(field, "file_too_large", "The file must be at most 5 MB.")],
                                 extra={"max_bytes": rt.settings.upload_max_bytes})
    kind = content_type(upload.data)
    if kind not in allowed:
        message = ("The file must be a PNG or JPEG image or a PDF." if "application/pdf" in allowed
                   else "The file must be a PNG or JPEG image.")
        raise errors.DomainError("invalid_file_type", message, 422, [errors.FieldError(field, "invalid_file_type",
                                                                                      message)])
    return kind


def uploads_dir(rt: Runtime) -> Path:
    path = rt.settings.data_dir / "uploads"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Stored:
    path: Path
    document_id: str  # the Document row to come, which the file's ciphertext is bound to
    content_type: str
    size: int
    sha256: str


def write_file(rt: Runtime, upload: Upload, content: str, written: list[Path]) -> Stored:
    """Encrypted (the field cipher, so keys rotate) under a random name, before any transaction opens
    (sealing 5 MB takes tens of milliseconds); the name the user gave is not kept."""
    document_id = new_id()
    sealed = rt.keys.cipher.encrypt(base64.b64encode(upload.data).decode("ascii"), DOCUMENT_FIELD, document_id)
    path = uploads_dir(rt) / secrets.token_hex(24)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        written.append(path)
        out.write(sealed)
    return Stored(path, document_id, content, len(upload.data), hashlib.sha256(upload.data).hexdigest())


def add_document(db: Session, account_id: str, kind: str, stored: Stored, now: datetime) -> Document:
    document = Document(id=stored.document_id, account_id=account_id, kind=kind, content_type=stored.content_type,
                        size=stored.size, sha256=stored.sha256, stored_name=stored.path.name, created_at=now)
    db.add(document)
    db.flush()
    return document


def read_document(rt: Runtime, document: Document) -> bytes:
    sealed = (uploads_dir(rt) / document.stored_name).read_bytes()
    return base64.b64decode(rt.keys.cipher.decrypt(sealed, DOCUMENT_FIELD, document.id))


def remove_files(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def review_document(rt: Runtime, origin: audit.Origin, staff_id: str, review_id: str) -> tuple[bytes, str]:
    """The file a review item points at, for a reviewer; every viewing is audited (PIPL Art. 51)."""
    item = reviews.get_review(rt, review_id)
    document_id = item["payload"].get("document_id")
    if item["queue"] not in ("real_name", "organization") or not document_id:
        raise errors.not_found("document")
    if not may_see_document(item, staff_id):
        raise errors.DomainError("claim_required", "Claim this item before you open its document.", 403)
    now = rt.clock.now()
    with unit_of_work(rt, origin, actor=("staff", staff_id), at=now) as work:
        document = work.db.get(Document, document_id)
        if document is None:
            raise errors.not_found("document")
        # The claimer's viewing is what lets them decide the item (issue 15); the audit event records it.
        opened = reviews.record_opening(work.db, review_id, staff_id, now)
        work.audit("document.viewed", subject=("review", review_id),
                   details={"document": document.id, "kind": document.kind, "for_decision": opened})
        kind = document.content_type
    return read_document(rt, document), kind


# A real-name or organisation decision needs the claimer to have looked at the document (issue 15).
for _queue in ("real_name", "organization"):
    reviews.require_opening(_queue)


def may_see_document(item: dict, staff_id: str) -> bool:
    """The reviewer holding the claim of a pending item, or the one who decided it."""
    return ((item["status"] == "pending" and item["claimed_by"] == staff_id)
            or (item["status"] != "pending" and item["decided_by"] == staff_id))


def document_type(rt: Runtime, document_id: str) -> str | None:
    with rt.db.read() as db:
        document = db.get(Document, document_id)
        return document.content_type if document else None
