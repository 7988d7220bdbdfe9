from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from passport.db import Base, UTCDateTime


class AuditEvent(Base):
    """One attributable action (COMPLIANCE C3, L1): who, what, when, from where, with what result.

    ``seq``, ``prev_hash`` and ``hash`` chain the records (SHA-256 over a canonical encoding);
    ``key_id`` and ``mac`` key the chain (HMAC-SHA256 with the audit key ``key_id`` over the previous
    record's ``mac`` and this record's content, see ``audit.service``). Records written before the
    keys came (migration 0013) have neither: the legacy, hash-only beginning of the chain.
    """

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_type: Mapped[str] = mapped_column(String(16))  # user | staff | system | anonymous
    actor_id: Mapped[str | None] = mapped_column(String(64), index=True)
    subject_type: Mapped[str | None] = mapped_column(String(24))
    subject_id: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(48), index=True)
    result: Mapped[str] = mapped_column(String(16))  # ok | failed | denied
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    details: Mapped[str] = mapped_column(Text, default="{}")  # masked JSON
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(32))
    mac: Mapped[str | None] = mapped_column(String(64))


class AuditChainHead(Base):
    """The newest record's seq and hash (one row, id 1). Appends lock and move it in their transaction,
    which orders them on PostgreSQL in one round trip (``SELECT … FOR UPDATE`` returns the row as the
    previous appender left it), and ``verify`` checks that no record after it is missing: a chain cut
    off at its end would otherwise still verify. ``mac`` is the newest record's link for the next one:
    its MAC, or its hash while the newest record is a legacy one."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str | None] = mapped_column(String(64))
