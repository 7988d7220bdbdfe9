"""Person verification and organisation accounts (issue 7)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from passport.runtime import Runtime


def export_account(rt: Runtime, db: Session, account_id: str) -> dict[str, Any]:
    """Issue 8's export: real-name status and data (decrypted for the owner), organisations administered."""
    return {}


def erase_account(rt: Runtime, db: Session, account_id: str) -> None:
    """Issue 8's finalisation: delete verification attempts, uploaded documents and administrator rows of
    the account (an organisation itself stays with the platform's records)."""


def cancellation_blockers(rt: Runtime, db: Session, account_id: str) -> list[dict[str, Any]]:
    """Issue 8: verified organisations of which this account is the last administrator
    ``[{"organization_id", "name"}]``; cancellation asks to hand over or dissolve them first."""
    return []
