"""Cancellation requests and their finalisation state (issue 8)."""

from __future__ import annotations
