"""What operators add to the engine at runtime (issue 17): the image blocklist (perceptual hashes of
avatars that are refused)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
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
