"""Cancellation with cooling-off, finalisation and export (issue 8)."""

from __future__ import annotations

from passport.runtime import Runtime


def finalise_due(rt: Runtime, limit: int = 50) -> int:
    """Worker job: finalise cancellations whose cooling-off has ended; returns how many."""
    return 0
