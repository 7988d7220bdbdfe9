"""Organisations, their administrators and licence files; verification attempts (issue 7)."""

from __future__ import annotations
