"""What operators add to the engine at runtime (issue 17): lexicon entries (versioned) and the image
blocklist (perceptual hashes of refused avatars)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from passport.db import Base, UTCDateTime, new_id


class ImageBlock(Base):
    """A refused image, by its perceptual hash (``imagehash.phash``, 64 bits as 16 hex digits): an
    avatar within ``PASSPORT_AVATAR_HASH_DISTANCE`` bits of it is refused. The image itself is not kept."""

    __tablename__ = "moderation_image_blocks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    phash: Mapped[str] = mapped_column(String(16), unique=True)
    category: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    added_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LexiconEntry(Base):
    """A lexicon term an operator or reviewer added at runtime, merged with the bundled and file
    lexicons: ``verdict`` (``block`` | ``review`` | ``allow``: an exemption) for ``fields`` (comma-
    separated; NULL: every field), ``context`` (a context name of the lexicon files: the term hits only
    with a word of it in the same text)."""

    __tablename__ = "moderation_lexicon_entries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    term: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(8))
    fields: Mapped[str | None] = mapped_column(String(64))
    context: Mapped[str | None] = mapped_column(String(32))
    added_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LexiconState(Base):
    """One row (id 1): the version of the operators' entries, raised by every change. Each process
    compares it with the version its engine was built from (a primary-key read every few seconds) and
    rebuilds the engine when it moved."""

    __tablename__ = "moderation_lexicon_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer)
