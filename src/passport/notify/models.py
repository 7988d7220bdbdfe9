"""Outbox, inbox, announcements, maintenance windows (issue 5)."""

from __future__ import annotations
